"""`reputation rollup`: rebuild the per-brand, per-vendor and monthly roll-up tables."""

from __future__ import annotations

from datetime import datetime

import click

from reputation.commands.common import check_as_of, open_db
from reputation.rollups.build import DEFAULT_HALF_LIFE_DAYS, DEFAULT_PRIOR_STRENGTH, build_rollups
from storage.lock import writer_lock


@click.command()
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Compute the tables as they would have been on this date (default: today, UTC).",
)
@click.option(
    "--model",
    "model_id",
    default=None,
    metavar="ID[@REVISION]",
    help="Sentiment model to use (default: the one with the most scored reviews).",
)
@click.option(
    "--half-life",
    "half_life_days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Half-life in days of the recency-weighted score [default: 180].",
)
@click.option(
    "--prior-strength",
    "prior_strength",
    type=click.FloatRange(min=0),
    default=None,
    help="Pseudo-reviews pulling the shrunk score toward the all-vendor mean [default: 20].",
)
@click.pass_context
def rollup(
    ctx: click.Context,
    as_of: datetime | None,
    model_id: str | None,
    half_life_days: float | None,
    prior_strength: float | None,
) -> None:
    """Rebuild the roll-up tables in one transaction; running it twice gives the same rows."""
    day = check_as_of(as_of)
    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation rollup"):
        db = open_db(ctx)
        summary = build_rollups(
            db,
            as_of=day,
            model_id=model_id,
            half_life_days=half_life_days if half_life_days is not None else DEFAULT_HALF_LIFE_DAYS,
            prior_strength=prior_strength if prior_strength is not None else DEFAULT_PRIOR_STRENGTH,
        )
    click.echo(f"roll-ups as of {summary.as_of} with model {summary.model_id} @ {summary.model_revision}")
    click.echo(
        f"{summary.n_reviews} reviews ({summary.n_duplicates} copies, {summary.n_non_english} not English, "
        f"{summary.n_undated} undated); {summary.n_brands} brands, {summary.n_vendors} vendors "
        f"({summary.n_vendors_ranked} ranked), {summary.n_switches} vendor switches "
        f"in {summary.seconds:.2f}s"
    )
