"""The `reputation` command: parses arguments, calls the library, maps errors to messages.

Subcommands live in reputation/commands/ and are imported only when used, so
`reputation crawl` never pays for importing torch. Every command, however deep, takes
``-h``/``--help``, ``-v``/``-q``/``--log-level`` (before or after its name) and shows examples
in its help; settings come from the command line, then ``--config``/``$REPUTATION_CONFIG``/
``./reputation.toml``, then the database, then defaults (reputation.settings).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from reputation.commands.common import add_verbosity, verbosity_options
from reputation.settings import CONFIG_ENV, CONFIG_NAME
from storage.database import DB_ENV, DEFAULT_DB
from storage.errors import ReputationError
from storage.version import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("reputation.commands.registry", "init"),
    "vendors": ("reputation.commands.registry", "vendors"),
    "sources": ("reputation.commands.sources", "sources"),
    "crawl": ("reputation.commands.crawl", "crawl"),
    "score": ("reputation.commands.score", "score"),
    "evaluate": ("reputation.commands.evaluate", "evaluate"),
    "model": ("reputation.commands.model", "model"),
    "rollup": ("reputation.commands.rollup", "rollup"),
    "scorecard": ("reputation.commands.scorecard", "scorecard"),
    "run": ("reputation.commands.run", "run"),
    "demo": ("reputation.commands.demo", "demo"),
    "purge": ("reputation.commands.purge", "purge"),
    "table": ("reputation.commands.table", "table"),
    "settings": ("reputation.commands.settings", "settings"),
    "worker": ("reputation.commands.worker", "worker"),
    "workers": ("reputation.commands.workers", "workers"),
    "ingest": ("reputation.commands.ingest", "ingest"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _) in COMMANDS.items() if _available(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[cmd_name]
        if not _available(module_name):
            return None
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return _with_examples(add_verbosity(command), cmd_name)


# Examples for commands whose own help has none (every command's --help shows some).
FALLBACK_EXAMPLES: dict[str, list[str]] = {
    "init": ["reputation --db reputation.db init"],
    "vendors": ["reputation vendors load datasets/vendors.example.yaml", "reputation vendors list --json"],
    "vendors load": ["reputation vendors load datasets/vendors.example.yaml"],
    "sources": ["reputation sources suggest example.com"],
    "model": ["reputation model path", "reputation model train --limit 2000"],
    "model path": ["reputation model path"],
    "model train": ["reputation model train", "reputation model train --limit 2000 --epochs 1 --device cpu"],
}


def _with_examples(command: click.Command, path: str) -> click.Command:
    """Add an Examples block to the help of a command (and its subcommands) that has none."""
    text = f"{command.help or ''}\n{command.epilog or ''}"
    if "Examples:" not in text:
        lines = FALLBACK_EXAMPLES.get(path) or [f"reputation {path} --help", f"reputation -v {path}"]
        block = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
        command.epilog = f"{command.epilog}\n\n{block}" if command.epilog else block
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _with_examples(sub, f"{path} {name}")
    return command


def _available(module_name: str) -> bool:
    return importlib.util.find_spec(module_name) is not None


class AppGroup(LazyGroup):
    """Turns library errors into one clear line and a meaningful exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ReputationError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=AppGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_path",
    envvar=DB_ENV,
    default=DEFAULT_DB,
    show_default=True,
    type=click.Path(dir_okay=False),
    help=f"SQLite file (also ${DB_ENV}).",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False),
    help=f"Settings file (also ${CONFIG_ENV}; default ./{CONFIG_NAME} when present).",
)
@click.version_option(__version__, "-V", "--version", prog_name="reputation")
@click.pass_context
def cli(ctx: click.Context, db_path: str, config_path: str | None) -> None:
    """Judge customer-service vendors by the public reviews of the brands they serve.

    \b
    Examples:
      reputation vendors load datasets/vendors.example.yaml
      reputation crawl --vendor brightline
      reputation run                      # crawl due sources, score, roll up (for cron)
      reputation -q run --json            # only errors, and the run as JSON
      reputation table                    # the vendor ranking
      reputation --config ops.toml run -v
    """
    ctx.ensure_object(dict)
    ctx.obj["db_path"] = db_path
    ctx.obj["config_path"] = config_path


cli.params.extend(verbosity_options())


def main() -> None:
    cli(obj={}, prog_name="reputation")


if __name__ == "__main__":  # pragma: no cover
    main()
