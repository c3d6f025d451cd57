"""`reputation purge`: remove the text and author pseudonym of old reviews (retention)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import click

from reputation.commands.common import open_db, say
from reputation.purge import purge_reviews
from storage.errors import BadValueError
from storage.lock import writer_lock


def cutoff_day(before: str | None, older_than: str | None, *, today: date | None = None) -> date:
    """The first day to keep, from exactly one of --before DATE and --older-than DAYS."""
    now = today or datetime.now(UTC).date()
    if (before is None) == (older_than is None):
        raise BadValueError("give exactly one of --before YYYY-MM-DD and --older-than DAYS")
    if before is not None:
        try:
            day = date.fromisoformat(before.strip())
        except ValueError:
            raise BadValueError(f"--before {before!r} is not a date (expected YYYY-MM-DD)") from None
        if day > now + timedelta(days=1):
            raise BadValueError(
                f"--before {day.isoformat()} is in the future (today is {now.isoformat()}, UTC)"
            )
        return day
    assert older_than is not None
    try:
        days = int(older_than.strip())
    except ValueError:
        raise BadValueError(f"--older-than {older_than!r} is not a whole number of days") from None
    if days < 0:
        raise BadValueError(f"--older-than {days} is negative; give a number of days, 0 or more")
    return now - timedelta(days=days)


@click.command()
@click.option("--before", "before", metavar="YYYY-MM-DD", help="Purge reviews published before this day.")
@click.option(
    "--older-than", "older_than", metavar="DAYS", help="Purge reviews published more than DAYS ago."
)
@click.pass_context
def purge(ctx: click.Context, before: str | None, older_than: str | None) -> None:
    """Delete the text (body, title, owner reply) and author pseudonym of old reviews.

    Rows, ids, dates, ratings and sentiment scores stay, so roll-ups over them are unchanged;
    purged rows are marked in reviews.purged_at and are never refilled by later crawls.
    Undated reviews count from the day they were first seen.

    \b
    Examples:
      reputation purge --older-than 730
      reputation purge --before 2024-01-01
    """
    day = cutoff_day(before, older_than)
    db = open_db(ctx, create=False)  # first: a missing database is refused before a lock file appears
    try:
        with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation purge"):
            result = purge_reviews(db, day)
    finally:
        db.close()
    say(
        ctx,
        f"purged {result.reviews} reviews published before {result.before.isoformat()}: text, title, reply and "
        f"author removed; ids, dates, ratings and scores kept ({result.scores_cleaned} quoted-sentence lists "
        f"cleared, {result.copy_links} syndicated-copy links kept)"
    )
