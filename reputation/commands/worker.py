"""`reputation worker crawl|score --redis URL`: the worker processes of the distributed mode.

Start any number of each on any machine that reaches Redis; they need no database. Libraries:
reputation.distributed.crawl_worker and reputation.distributed.score_worker.
"""

from __future__ import annotations

import logging

import click

from reputation.commands.common import chosen_level, model_option, say

REDIS_ENV = "REPUTATION_REDIS"

# The same --redis option on every distributed command.
redis_option = click.option(
    "--redis",
    "redis_url",
    envvar=REDIS_ENV,
    required=True,
    metavar="URL",
    help=f"Redis server, redis://HOST:PORT/DB (also ${REDIS_ENV}).",
)


@click.group()
def worker() -> None:
    """Run a crawl or scoring worker of the distributed (Redis) mode.

    \b
    Examples:
      reputation worker crawl --redis redis://10.0.0.5:6379/0
      reputation worker score --redis redis://10.0.0.5:6379/0 --device cuda
    """


@worker.command("crawl")
@redis_option
@click.option("--name", default=None, help="Worker name in `workers status` (default: crawl@HOST:PID).")
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Scrapy setting over the polite defaults (repeatable), e.g. -s CONCURRENT_REQUESTS=8.",
)
@click.option(
    "--lease-ttl",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds before a dead worker's page is re-queued.",
)
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=0),
    default=None,
    help="Exit after the frontier stayed empty this many seconds (default: run until stopped).",
)
@click.pass_context
def crawl(
    ctx: click.Context,
    redis_url: str,
    name: str | None,
    overrides: tuple[str, ...],
    lease_ttl: float | None,
    idle_exit: float | None,
) -> None:
    """Crawl pages from the shared frontier; reviews go to the items stream for `reputation ingest`.

    Stops on SIGTERM/SIGINT; a killed worker's pages are fetched again by another.

    \b
    Examples:
      reputation worker crawl --redis redis://10.0.0.5:6379/0
      reputation worker crawl --redis redis://10.0.0.5:6379/0 -s CONCURRENT_REQUESTS=8 --idle-exit 60
    """
    from reputation.distributed.crawl_worker import run_crawl_worker  # imports Scrapy: only here

    settings: dict[str, str] = {}
    for pair in overrides:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-s")
        settings[key] = value
    level = _chosen_level(ctx)
    if level is not None and "LOG_LEVEL" not in settings:  # -q / -v / --log-level reach Scrapy's log too
        settings["LOG_LEVEL"] = level
    stats = run_crawl_worker(
        redis_url, settings=settings or None, worker=name, lease_ttl=lease_ttl, idle_exit=idle_exit
    )
    say(
        ctx, f"pages {stats.get('reputation/pages', 0)}, items streamed {stats.get('reputation/streamed', 0)}"
    )


def _chosen_level(ctx: click.Context) -> str | None:
    """The stderr level the user chose with -v/-q/--log-level (logging's name for it), None when none."""
    level = chosen_level(ctx)
    return None if level is None else logging.getLevelName(level)


@worker.command("score")
@redis_option
@model_option
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where the model runs (auto: CUDA when present).",
)
@click.option(
    "--batch",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Reviews taken from Redis at a time (a larger batch sorts by length better: less padding).",
)
@click.option(
    "--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="Texts per forward pass."
)
@click.option(
    "--claim-idle",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds a batch may stay unacknowledged with a worker before another takes it over.",
)
@click.option("--name", default=None, help="Worker name in `workers status` (default: score@HOST:PID).")
@click.option(
    "--exit-when-idle", is_flag=True, help="Exit once no work is waiting (default: run until stopped)."
)
@click.pass_context
def score(
    ctx: click.Context,
    redis_url: str,
    model: str | None,
    device: str,
    batch: int,
    batch_size: int,
    claim_idle: float,
    name: str | None,
    exit_when_idle: bool,
) -> None:
    """Score reviews from the work stream with the same model and outputs as `reputation score`.

    Loads the model once; results go to the scores stream for `reputation ingest`. Work appears
    when `reputation ingest` runs while this worker is up (it enqueues what this model revision
    has not scored). Stops on SIGTERM/SIGINT after the batch in hand; a killed worker's batch is
    taken over by another after --claim-idle seconds.

    \b
    Examples:
      reputation worker score --redis redis://10.0.0.5:6379/0 --device cuda --batch 256
      reputation worker score --redis redis://127.0.0.1:6379/0 --device cpu --exit-when-idle
    """
    from reputation.distributed.score_worker import run_score_worker  # imports torch: only here

    summary = run_score_worker(
        redis_url,
        model=model,
        device=None if device == "auto" else device,
        batch=batch,
        batch_size=batch_size,
        claim_idle=claim_idle,
        exit_when_idle=exit_when_idle,
        name=name,
    )
    say(ctx, f"{summary.name}: model {summary.model_id} @ {summary.model_revision}: scored {summary.scored}, "
             f"failed {summary.failed}, taken over by others {summary.superseded}, "
             f"dead-lettered {summary.dead_lettered}")  # fmt: skip
