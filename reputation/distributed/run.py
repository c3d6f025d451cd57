"""``reputation run --redis URL``: the scheduled job with the crawl spread over crawl workers.

The crawl stage enqueues the due sources on the shared frontier (reputation.distributed.enqueue),
then, as the writer, moves review items from the stream into SQLite until the round is over
and records it (reputation.distributed.rounds: the sources' status and last crawl, the crawl_runs
row), as ``reputation ingest`` does. Score and roll-up then run as in a single-machine ``run`` (reputation.scheduler with the
crawl skipped), so the printed stages, exit codes and run log look the same.

It holds the database's writer lock while it ingests: do not keep ``reputation ingest
--follow`` running beside it (the second writer refuses). Crawl workers must be running
(``reputation worker crawl --redis URL``); with none, the stage waits until ``crawl_timeout``.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from crawler.redis_frontier import frontier_depth
from reputation.distributed import rounds, streams
from reputation.distributed.enqueue import enqueue_due
from reputation.distributed.items_ingest import drain_items
from reputation.scheduler import RunResult, StageResult, run_scheduled
from storage.database import connect, utcnow
from storage.lock import writer_lock
from storage.runlog import finish_run

#: Seconds the crawl stage waits for the frontier to drain (a day of crawling), unless told otherwise.
DEFAULT_CRAWL_TIMEOUT = 24 * 3600.0


def distributed_crawl(
    db_path: str | os.PathLike[str],
    redis_url: str,
    *,
    full: bool = False,
    crawl_timeout: float = DEFAULT_CRAWL_TIMEOUT,
    poll: float = 0.5,
    settings: Mapping[str, Any] | None = None,
) -> StageResult:
    """Enqueue due sources, ingest items until the round is over; the crawl stage's result (never raises).

    ``settings``: the crawl's Scrapy settings (``[crawl] settings``); the writer reads the removal
    guard from them (rounds.removal_max_share), as a single-machine crawl's store pipeline does."""
    started, began = utcnow(), time.monotonic()
    stage = StageResult("crawl", "ok", started_at=started)
    counts: Counter[str] = Counter()
    run_id: int | None = None
    try:
        max_share = rounds.removal_max_share(settings)  # a bad value: the stage fails, nothing enqueued
        with writer_lock(db_path, purpose="reputation run --redis"):
            db = connect(db_path)
            try:
                enqueued = enqueue_due(db, redis_url, due_only=True, full=full)
                client = streams.connect(redis_url, wait=True)
                run_id = rounds.round_run(client, db, selection={"redis": streams.safe_url(redis_url)})
                deadline = began + crawl_timeout
                watch = rounds.RoundWatch(max_share=max_share)
                while True:
                    stored = drain_items(client, db, run_id=run_id)
                    counts.update(stored)
                    if run_id is None:  # nothing due and no round open: nothing to wait for
                        break
                    if watch.over(client, progress=bool(stored.total())):
                        break
                    if time.monotonic() > deadline:
                        depth = frontier_depth(client)
                        raise TimeoutError(f"the frontier did not drain within {crawl_timeout:.0f} s ({depth}); "
                                           "are crawl workers running?")  # fmt: skip
                    time.sleep(poll)
                closed = watch.finish(client, db)
                sources = len(closed.sources) if closed else 0
            except BaseException:
                if run_id is not None:
                    finish_run(db, run_id, "failed", detail={"mode": "redis", "counts": dict(counts)})
                raise
            finally:
                db.close()
    except Exception as exc:  # noqa: BLE001 - a stage failure is reported, never raised (as run_scheduled)
        stage.status, stage.error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
        stage.traceback = traceback.format_exc()
    else:
        stage.counts = {"sources": sources, "enqueued": enqueued.sources, **dict(counts)}
        stage.summary = (f"redis: {enqueued.sources} sources enqueued; reviews new {counts['new']}, "
                         f"updated {counts['updated']}, unchanged {counts['unchanged']}")  # fmt: skip
    stage.run_id = run_id
    stage.finished_at, stage.seconds = utcnow(), round(time.monotonic() - began, 1)
    return stage


def run_distributed(
    db_path: str | os.PathLike[str],
    redis_url: str,
    *,
    crawl_timeout: float = DEFAULT_CRAWL_TIMEOUT,
    on_stage: Callable[[StageResult], None] | None = None,
    full: bool = False,
    **scheduled: Any,
) -> RunResult:
    """Crawl through the workers (``distributed_crawl``), then score and roll up as ``run_scheduled`` does.

    ``scheduled`` takes run_scheduled's keywords (model, lock_path, prior_strength, ...).
    """
    if scheduled.get("skip_crawl"):  # nothing to crawl: the single-machine score and roll-up
        return run_scheduled(db_path, on_stage=on_stage, full=full, **scheduled)
    crawl = distributed_crawl(db_path, redis_url, full=full, crawl_timeout=crawl_timeout,
                              settings=scheduled.get("crawl_settings"))  # fmt: skip
    if on_stage is not None:
        on_stage(crawl)
    if crawl.status == "failed":
        skipped = [StageResult(n, "skipped", summary="an earlier stage failed", finished_at=utcnow())
                   for n in ("score", "rollup")]  # fmt: skip
        for stage in skipped:
            if on_stage is not None:
                on_stage(stage)
        return RunResult(crawl.run_id or 0, [crawl, *skipped])

    def later_stages(stage: StageResult) -> None:
        if stage.name != "crawl" and on_stage is not None:  # the crawl was reported above
            on_stage(stage)

    scheduled.pop("skip_crawl", None)
    scheduled.pop("crawl_settings", None)
    result = run_scheduled(db_path, skip_crawl=True, on_stage=later_stages, **scheduled)
    result.stages = [crawl if s.name == "crawl" else s for s in result.stages]
    return result
