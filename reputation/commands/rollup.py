"""`reputation rollup`: rebuild the per-brand, per-vendor and monthly roll-up tables."""

from __future__ import annotations

from datetime import datetime

import click

from reputation.commands.common import (
    check_as_of,
    echo_json,
    is_quiet,
    jsonable,
    open_db,
    output_options,
    resolve_settings,
)
from reputation.rollups.build import build_rollups
from reputation.settings import store_settings
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
    help="Half-life in days of the recency-weighted score; remembered [default: stored, else 180].",
)
@click.option(
    "--prior-strength",
    "prior_strength",
    type=click.FloatRange(min=0),
    default=None,
    help="Pseudo-reviews pulling the shrunk score toward the all-vendor mean; remembered "
    "[default: stored, else 20].",
)
@output_options(csv=False)
@click.pass_context
def rollup(
    ctx: click.Context,
    as_of: datetime | None,
    model_id: str | None,
    half_life_days: float | None,
    prior_strength: float | None,
    as_json: bool,
) -> None:
    """Rebuild the roll-up tables in one transaction; running it twice gives the same rows.

    --prior-strength and --half-life given here are stored in the database, so later
    `rollup` and `run` use them too (a [rollup] table in the config file overrides stored values).

    \b
    Examples:
      reputation rollup
      reputation rollup --prior-strength 50 --half-life 90    # remembered for `reputation run`
      reputation rollup --as-of 2025-06-30 --json
      reputation rollup --model minilm-sentiment-3c
    """
    day = check_as_of(as_of)
    given = {"prior_strength": prior_strength, "half_life_days": half_life_days}
    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation rollup"):
        db = open_db(ctx)
        chosen = resolve_settings(ctx, "rollup", db, given)
        summary = build_rollups(
            db,
            as_of=day,
            model_id=model_id,
            half_life_days=float(chosen["half_life_days"]),
            prior_strength=float(chosen["prior_strength"]),
        )
        store_settings(db, {f"rollup.{k}": v for k, v in given.items()})
    if as_json:
        echo_json({**jsonable(summary), "prior_strength": chosen["prior_strength"],
                   "half_life_days": chosen["half_life_days"],
                   "settings_from": {k: chosen.origins[k] for k in given}})
        return
    if is_quiet(ctx):
        return
    click.echo(f"roll-ups as of {summary.as_of} with model {summary.model_id} @ {summary.model_revision}")
    click.echo(
        f"{summary.n_reviews} reviews ({summary.n_duplicates} copies, {summary.n_non_english} not English, "
        f"{summary.n_undated} undated); {summary.n_brands} brands, {summary.n_vendors} vendors "
        f"({summary.n_vendors_ranked} ranked), {summary.n_switches} vendor switches "
        f"in {summary.seconds:.2f}s"
    )
    click.echo(
        f"prior strength {chosen['prior_strength']:g} ({chosen.origins['prior_strength']}), "
        f"half-life {chosen['half_life_days']:g} days ({chosen.origins['half_life_days']})"
    )
