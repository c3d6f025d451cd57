"""The `reputation` command: parses arguments, calls the library, maps errors to messages.

Subcommands live in reputation/commands/ and are imported only when used, so
`reputation crawl` never pays for importing torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

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


@click.group(cls=AppGroup)
@click.option(
    "--db",
    "db_path",
    envvar=DB_ENV,
    default=DEFAULT_DB,
    show_default=True,
    type=click.Path(dir_okay=False),
    help=f"SQLite file (also ${DB_ENV}).",
)
@click.version_option(__version__, prog_name="reputation")
@click.pass_context
def cli(ctx: click.Context, db_path: str) -> None:
    """Judge customer-service vendors by the public reviews of the brands they serve."""
    ctx.ensure_object(dict)
    ctx.obj["db_path"] = db_path


def main() -> None:
    cli(obj={}, prog_name="reputation")


if __name__ == "__main__":  # pragma: no cover
    main()
