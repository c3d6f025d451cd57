"""`reputation score`: sentiment for every stored review the chosen model has not scored yet."""

from __future__ import annotations

import click

from reputation.commands.common import (
    echo_json,
    is_quiet,
    model_option,
    open_db,
    output_options,
    resolve_settings,
)
from reputation.settings import store_settings
from storage.lock import writer_lock


@click.command()
@model_option
@click.option(
    "--batch-size", default=None, type=click.IntRange(min=1), help="Texts per forward pass [default: 64]."
)
@click.option(
    "--chunk-size",
    default=None,
    type=click.IntRange(min=1),
    help="Reviews per database transaction (at most this much work is lost if killed) [default: 512].",
)
@click.option("--limit", default=None, type=click.IntRange(min=0), help="Score at most N reviews.")
@click.option("--device", default=None, help="torch device, e.g. cpu or cuda (default: CUDA when present).")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@output_options(csv=False)
@click.pass_context
def score(
    ctx: click.Context,
    model: str | None,
    batch_size: int | None,
    chunk_size: int | None,
    limit: int | None,
    device: str | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Score reviews without a sentiment row for this model revision; safe to stop and re-run.

    A --model given here is remembered in the database: the next `reputation run` scores with it.

    \b
    Examples:
      reputation score
      reputation score --model ./my-model      # remembered for later runs
      reputation score --limit 500 --device cpu --json
      reputation -q score --no-progress
    """
    from reputation.scoring.job import score_reviews  # imports torch: only when scoring

    given = {"model": model, "batch_size": batch_size, "chunk_size": chunk_size, "device": device}
    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation score"):
        db = open_db(ctx)
        chosen = resolve_settings(ctx, "score", db, given)
        summary = score_reviews(
            db,
            model=chosen["model"],
            batch_size=chosen["batch_size"],
            chunk_size=chosen["chunk_size"],
            progress=not (no_progress or is_quiet(ctx)),
            limit=limit,
            device=chosen["device"],
        )
        store_settings(db, {"score.model": model})
    if as_json:
        echo_json(summary)
        return
    if is_quiet(ctx):
        return
    click.echo(f"model {summary.model_id} @ {summary.model_revision}")
    click.echo(
        f"scored {summary.scored} (re-scored {summary.rescored}), skipped {summary.skipped} already scored, "
        f"flagged {summary.flagged}, failed {summary.failed}"
    )
    if summary.flags:
        click.echo("flags: " + ", ".join(f"{name} {count}" for name, count in summary.flags.items()))
