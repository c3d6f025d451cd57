"""`reputation run`: the scheduled job (crawl due sources -> score -> roll up) under a lock."""

from __future__ import annotations

import click

from reputation.scheduler import run_scheduled


@click.command()
@click.option("--model", default=None, help="Sentiment model to score with (default: the configured one).")
@click.option("--skip-crawl", is_flag=True, help="Only score and roll up what is already stored.")
@click.option(
    "--lock-file",
    "lock_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Lock file (default: the database path + '.lock', the lock every writing command takes).",
)
@click.pass_context
def run(ctx: click.Context, model: str | None, skip_crawl: bool, lock_path: str | None) -> None:
    """Crawl due sources, score new reviews and rebuild roll-ups; exit 75 if another run holds the lock."""
    db_path = ctx.find_root().obj["db_path"]
    result = run_scheduled(db_path, model=model, skip_crawl=skip_crawl, lock_path=lock_path)
    for stage in result.stages:
        click.echo(f"{stage.name}: {stage.status}" + (f" ({stage.error})" if stage.error else ""))
    failed = result.failed_stage
    if failed is not None:
        click.echo(f"Error: stage {failed.name!r} failed: {failed.error}; later stages skipped "
                   f"(run log: crawl_runs id {result.run_id})", err=True)
        ctx.exit(result.exit_code)
    click.echo(f"run {result.run_id} finished")
