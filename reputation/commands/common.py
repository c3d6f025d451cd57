"""Helpers shared by the subcommands."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import click
import sqlite_utils

from storage.database import connect
from storage.errors import BadValueError

# "Today" where the user is may already be tomorrow in UTC; one day of slack, as for review dates.
AS_OF_TOLERANCE = timedelta(days=1)


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
