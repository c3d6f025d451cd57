"""`reputation score`: sentiment for every stored review the chosen model has not scored yet."""

from __future__ import annotations

import click

from reputation.commands.common import model_option, open_db
from storage.lock import writer_lock


@click.command()
@model_option
@click.option(
    "--batch-size", default=64, show_default=True, type=click.IntRange(min=1), help="Texts per forward pass."
)
@click.option(
    "--chunk-size",
    default=512,
    show_default=True,
    type=click.IntRange(min=1),
    help="Reviews per database transaction (at most this much work is lost if killed).",
)
@click.option("--limit", default=None, type=click.IntRange(min=0), help="Score at most N reviews.")
@click.option("--device", default=None, help="torch device, e.g. cpu or cuda (default: CUDA when present).")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.pass_context
def score(
    ctx: click.Context,
    model: str | None,
    batch_size: int,
    chunk_size: int,
    limit: int | None,
    device: str | None,
    no_progress: bool,
) -> None:
    """Score reviews without a sentiment row for this model revision; safe to stop and re-run."""
    from reputation.scoring.job import score_reviews  # imports torch: only when scoring

    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation score"):
        db = open_db(ctx)
        summary = score_reviews(
            db,
            model=model,
            batch_size=batch_size,
            chunk_size=chunk_size,
            progress=not no_progress,
            limit=limit,
            device=device,
        )
    click.echo(f"model {summary.model_id} @ {summary.model_revision}")
    click.echo(
        f"scored {summary.scored} (re-scored {summary.rescored}), skipped {summary.skipped} already scored, "
        f"flagged {summary.flagged}, failed {summary.failed}"
    )
    if summary.flags:
        click.echo("flags: " + ", ".join(f"{name} {count}" for name, count in summary.flags.items()))
