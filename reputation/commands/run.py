"""`reputation run`: the scheduled job (crawl due sources -> score -> roll up) under a lock.

For cron: one timestamped line per stage on stdout, nothing at all with ``-q`` unless
something fails, then one line on stderr naming the log file that holds the traceback and
the crawl's Scrapy log, and exit 1 (75 while another writer holds the lock).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import click

from reputation import logs
from reputation.commands.common import (
    config,
    crawl_progress,
    echo_csv,
    echo_json,
    is_quiet,
    jsonable,
    one_format,
    open_db,
    output_options,
    resolve_settings,
)
from reputation.scheduler import RunResult, StageResult, run_scheduled, stage_line
from reputation.settings import store_settings

STAGE_COLUMNS = ("name", "status", "started_at", "finished_at", "seconds", "summary", "error", "run_id")


@click.command()
@click.option("--model", default=None, help="Sentiment model to score with (default: the configured one).")
@click.option("--skip-crawl", is_flag=True, help="Only score and roll up what is already stored.")
@click.option(
    "--prior-strength",
    type=click.FloatRange(min=0),
    default=None,
    help="Roll-up shrinkage in pseudo-reviews (remembered in the database) [default: stored, else 20].",
)
@click.option(
    "--half-life",
    "half_life_days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Roll-up recency half-life in days (remembered) [default: stored, else 180].",
)
@click.option(
    "--lock-file",
    "lock_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Lock file (default: the database path + '.lock', the lock every writing command takes).",
)
@click.option(
    "--log-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Append tracebacks and the crawl's log here, and keep it [default: reputation-logs/run-<UTC time>.log "
    "beside the database, kept only when a stage fails].",
)
@click.option(
    "--redis", "redis_url", default=None, metavar="URL",
    help="Crawl through `reputation worker crawl` workers on this Redis (redis://HOST:PORT/DB), then score and roll up.",
)
@output_options(csv=True)
@click.pass_context
def run(
    ctx: click.Context,
    model: str | None,
    skip_crawl: bool,
    prior_strength: float | None,
    half_life_days: float | None,
    lock_path: str | None,
    log_file: str | None,
    redis_url: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Crawl due sources, score new reviews and rebuild roll-ups; exit 75 if another run holds the lock.

    Prints one line per stage (UTC time, stage, status, counts, seconds); when no source is due
    the crawl stage says "0 sources due" and starts no crawl process. Settings not given here
    come from the config file, then from the database (what was last given to `rollup`, `score`
    or `run`), then the defaults. On failure: one line naming the log file, exit 1.

    \b
    Examples:
      reputation run
      reputation -q run                   # cron: silent unless a stage fails
      reputation run --skip-crawl --prior-strength 50 --half-life 90
      reputation run --json | jq '.stages[] | {name, status, seconds}'
      reputation --config /etc/reputation.toml run --log-file /var/log/reputation/run.log
    """
    one_format(as_json, as_csv)
    db_path = ctx.find_root().obj["db_path"]
    config_file, _ = config(ctx)
    given = {"model": model}
    score = resolve_settings(ctx, "score", None, given)
    rollup = resolve_settings(ctx, "rollup", None, {"prior_strength": prior_strength, "half_life_days": half_life_days})
    crawl = resolve_settings(ctx, "crawl", None, {})
    run_settings = resolve_settings(ctx, "run", None, {})

    def explicit(resolved: Any, key: str) -> Any:
        """A value from the command line or config file; None leaves the stored one (or default) to the run."""
        return None if resolved.origins[key] == "default" else resolved[key]

    keep_log = log_file is not None
    log_path = logs.open_log_file(
        Path(log_file) if log_file else logs.default_log_file(db_path, "run", explicit(run_settings, "log_dir"))
    )
    logs.append(log_path, f"{logs.utc_stamp()} reputation run --db {db_path}"
                          + (f" --config {config_file}" if config_file else ""))
    machine = as_json or as_csv
    progress = crawl_progress(ctx, machine_output=machine)

    def on_stage(stage: StageResult) -> None:
        if stage.name == "crawl":
            progress.__exit__(None, None, None)  # the table ends where the crawl ends
        line = stage_line(stage)
        logs.append(log_path, line)
        if stage.traceback:
            logs.append(log_path, stage.traceback)
        if not machine and not is_quiet(ctx):
            click.echo(line)

    try:
        with progress:
            if redis_url:  # distributed crawl: enqueue, let the workers fetch, ingest; then score, roll up
                from reputation.distributed.run import run_distributed  # loads redis, scrapy-redis

                scheduler: Any = partial(run_distributed, redis_url=redis_url)
            else:
                scheduler = run_scheduled
            result = scheduler(
                db_path,
                model=explicit(score, "model"),
                skip_crawl=skip_crawl,
                lock_path=lock_path,
                crawl_settings=crawl["settings"],
                full=bool(crawl["full"]),
                prior_strength=explicit(rollup, "prior_strength"),
                half_life_days=explicit(rollup, "half_life_days"),
                crawl_log=log_path,
                crawl_progress=progress,
                on_stage=on_stage,
            )
    except BaseException:  # refused before any stage ran (lock held, bad layout file): no log to keep
        if not keep_log:
            logs.discard(log_path)
        raise
    failed = result.failed_stage
    if failed is None:
        _remember(ctx, model, prior_strength, half_life_days)
        if not keep_log:
            logs.discard(log_path)
    _print(result, log_path if (keep_log or failed) else None, as_json, as_csv)
    if failed is not None:
        click.echo(
            f"Error: stage {failed.name!r} failed: {failed.error}; later stages skipped; "
            f"details in {log_path} (run log: crawl_runs id {result.run_id})",
            err=True,
        )
        ctx.exit(result.exit_code)
    if not (as_json or as_csv) and not is_quiet(ctx):
        click.echo(f"{logs.utc_stamp()} run    ok  run {result.run_id} finished")


def _remember(ctx: click.Context, model: str | None, prior_strength: float | None, half_life: float | None) -> None:
    """Store what was given on the command line, so the next run without it does the same."""
    given = {"score.model": model, "rollup.prior_strength": prior_strength, "rollup.half_life_days": half_life}
    if any(v is not None for v in given.values()):
        db = open_db(ctx)
        try:
            store_settings(db, given)
        finally:
            db.close()


def _print(result: RunResult, log_path: Path | None, as_json: bool, as_csv: bool) -> None:
    stages = [
        {k: v for k, v in jsonable(s).items() if k not in ("detail", "traceback")} for s in result.stages
    ]
    if as_json:
        echo_json({"run_id": result.run_id, "ok": result.ok, "exit_code": result.exit_code,
                   "log_file": str(log_path) if log_path else None, "stages": stages})
    elif as_csv:
        echo_csv(stages, STAGE_COLUMNS)
