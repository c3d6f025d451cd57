"""Helpers shared by the subcommands."""

from __future__ import annotations

import csv as csv_mod
import dataclasses
import io
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlite_utils

from reputation import logs
from reputation import settings as settings_mod
from reputation.progress import CrawlProgress, choose_mode
from storage.database import connect
from storage.errors import BadValueError

# "Today" where the user is may already be tomorrow in UTC; one day of slack, as for review dates.
AS_OF_TOLERANCE = timedelta(days=1)
F = TypeVar("F", bound=Callable[..., Any])


def open_db(ctx: click.Context, *, create: bool = True) -> sqlite_utils.Database:
    """The database named by --db / $REPUTATION_DB, upgraded to the current schema."""
    path = ctx.find_root().obj["db_path"]
    try:
        return connect(path, create=create)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc


def check_as_of(day: date | datetime | None, *, today: date | None = None) -> date | None:
    """The --as-of day as a date; a day after today (UTC) is refused, since no review exists yet then.

    Roll-ups and scorecards "as of" a future day would silently age every review and decay its
    weight; the analyst almost always mistyped the year.
    """
    if day is None:
        return None
    as_date = day.date() if isinstance(day, datetime) else day
    now = today or datetime.now(UTC).date()
    if as_date > now + AS_OF_TOLERANCE:
        raise BadValueError(f"--as-of {as_date.isoformat()} is in the future (today is {now.isoformat()}, UTC)")
    return as_date


# The same --model option wherever a command loads a sentiment model.
model_option = click.option(
    "--model",
    "model",
    default=None,
    metavar="NAME_OR_DIR",
    help="Model directory or cached Hugging Face id (default: the bundled model).",
)


# --- options every command takes (reputation.cli adds them to each command as it loads it) ---


def _root_obj(ctx: click.Context) -> dict[str, Any]:
    root = ctx.find_root()
    obj: dict[str, Any] = root.ensure_object(dict)
    return obj


def chosen_level(ctx: click.Context) -> int | None:
    """The stderr log level -v/-q/--log-level chose (reputation.logs.level_for), None when none."""
    obj = _root_obj(ctx)
    return logs.level_for(obj.get("verbose", 0), obj.get("quiet", False), obj.get("log_level"))


def _apply_verbosity(ctx: click.Context) -> None:
    logs.configure(chosen_level(ctx))


def _verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    obj = _root_obj(ctx)
    obj["verbose"] = obj.get("verbose", 0) + (value or 0)
    _apply_verbosity(ctx)


def _quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    obj = _root_obj(ctx)
    obj["quiet"] = bool(obj.get("quiet") or value)
    _apply_verbosity(ctx)


def _log_level(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        _root_obj(ctx)["log_level"] = value.upper()
    _apply_verbosity(ctx)


def verbosity_options() -> list[click.Option]:
    """-v/-q/--log-level, accepted before the subcommand (on the root group) and after it."""
    return [
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_verbose,
                     help="More detail on stderr: -v progress and info, -vv debug."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_quiet,
                     help="Print only errors (and data asked for with --json/--csv)."),
        click.Option(["--log-level"], type=click.Choice(logs.LEVELS, case_sensitive=False), default=None,
                     expose_value=False, callback=_log_level, metavar="LEVEL",
                     help="Level of what reaches stderr: DEBUG, INFO, WARNING (default), ERROR."),
    ]


def add_verbosity(command: click.Command) -> click.Command:
    """Give a command (and, for a group, each of its subcommands) the verbosity options once."""
    names = {p.name for p in command.params}
    if "verbose" not in names:
        command.params.extend(verbosity_options())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity(sub)
    return command


def is_quiet(ctx: click.Context) -> bool:
    return bool(_root_obj(ctx).get("quiet")) or _root_obj(ctx).get("log_level") in ("ERROR", "CRITICAL")


def is_verbose(ctx: click.Context) -> bool:
    obj = _root_obj(ctx)
    return obj.get("verbose", 0) > 0 or obj.get("log_level") in ("DEBUG", "INFO")


def say(ctx: click.Context, text: str = "") -> None:
    """A human summary line on stdout; -q silences it (errors and requested data still print)."""
    if not is_quiet(ctx):
        click.echo(text)


def crawl_progress(ctx: click.Context, *, machine_output: bool = False) -> CrawlProgress:
    """The crawl progress display that fits the terminal and the verbosity (reputation.progress)."""
    return CrawlProgress(choose_mode(quiet=is_quiet(ctx), verbose=is_verbose(ctx), machine_output=machine_output))


# --- settings: config file and stored choices (reputation.settings) ---


def config(ctx: click.Context) -> tuple[Path | None, dict[str, dict[str, Any]]]:
    """(the configuration file in use, its checked content), read once per invocation.

    Read on first use, not in the root group: `reputation run --help` works beside a broken file.
    """
    obj = _root_obj(ctx)
    if "config" not in obj:
        path = settings_mod.config_path(obj.get("config_path"))
        obj["config"] = (path, settings_mod.load_config(path))
    found: tuple[Path | None, dict[str, dict[str, Any]]] = obj["config"]
    return found


def resolve_settings(
    ctx: click.Context, section: str, db: sqlite_utils.Database | None, cli: dict[str, Any]
) -> settings_mod.Resolved:
    """Command line > config file > stored in the database > default, for one section."""
    path, content = config(ctx)
    stored = settings_mod.stored_settings(db) if db is not None else {}
    return settings_mod.resolve(section, cli=cli, config=content, config_file=path, stored=stored)


# --- machine-readable output ---


def output_options(*, csv: bool) -> Callable[[F], F]:
    """--json (and --csv for tabular output): data on stdout for scripts, nothing else there."""

    def decorate(func: F) -> F:
        if csv:
            func = click.option("--csv", "as_csv", is_flag=True, help="Print CSV (with a header row).")(func)
        return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)

    return decorate


def jsonable(value: Any) -> Any:
    """Dataclasses, dates and paths as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


def echo_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def echo_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv_mod.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
    click.echo(buffer.getvalue(), nl=False)


def _csv_cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def one_format(as_json: bool, as_csv: bool = False) -> None:
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
