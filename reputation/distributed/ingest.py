"""The single writer: review items and scores from Redis into SQLite, then scoring work back out.

``reputation ingest --redis URL`` runs this beside the SQLite file, under the database's writer
lock (storage.lock), so a second writer started by mistake refuses the way a second ``run`` does.
Each round moves one batch of items (crawl side: reputation.distributed.items_ingest) and one batch
of scores (score_ingest) in their own transactions, acknowledging each batch after its commit, and
then enqueues the reviews that the models announced by live scoring workers have not scored yet
(new items become scoring work without another command). ``drain`` stops when both streams are
empty (``--once``); ``follow`` keeps going until stopped (``--follow``).

Items of a crawl round are stored with the round's run (reputation.distributed.rounds), and once
the round is over the writer records it as a single-machine crawl records itself: each source's
status, last crawl and so its next-due time, and the run's counts. Stored and acknowledged
messages are trimmed from the streams (streams.trim_done), so Redis holds only work in hand.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis
import sqlite_utils

from reputation.distributed import rounds, streams
from reputation.distributed.enqueue import ROUND_RUN_KEY
from reputation.distributed.rounds import RoundResult
from reputation.distributed.score_ingest import (
    ScoreIngestSummary,
    announced_models,
    enqueue_unscored,
    ingest_scores,
)
from storage.runlog import RunStatus, finish_run, start_run, update_run


@dataclass
class IngestSummary:
    """What the writer moved."""

    items: int = 0  # item messages handled (stored or dead-lettered) by the items ingest
    item_outcomes: Counter[str] = field(default_factory=Counter)  # new / updated / unchanged / dead reasons
    scores: ScoreIngestSummary = field(default_factory=ScoreIngestSummary)
    enqueued: dict[str, int] = field(default_factory=dict)  # "model@revision" -> reviews sent to score
    rounds: int = 0
    crawl_rounds: list[RoundResult] = field(default_factory=list)  # crawl rounds this writer closed

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "item_outcomes": dict(self.item_outcomes),
            "scores_stored": self.scores.stored,
            "scores_unchanged": self.scores.unchanged,
            "dead_lettered": dict(self.scores.dead_lettered),
            "enqueued": dict(self.enqueued),
            "crawl_rounds": [
                {"run_id": r.run_id, "status": r.status, "pages": r.pages, "sources": r.by_status}
                for r in self.crawl_rounds
            ],
        }


@dataclass
class _RoundRun:
    """The current crawl round's run id, looked up again only when the round changed."""

    run_id: int | None = None

    def current(self, client: redis.Redis, db: sqlite_utils.Database) -> int | None:
        if self.run_id is not None and client.get(ROUND_RUN_KEY) == str(self.run_id):
            return self.run_id
        self.run_id = rounds.round_run(client, db)
        return self.run_id


@dataclass
class _ScoreRun:
    """The writer's ``score`` row in the run log: opened when it first stores scores, kept up to date,
    closed when it stops, so scoring over Redis shows in crawl_runs as ``reputation score`` does."""

    run_id: int | None = None

    def note(self, db: sqlite_utils.Database, summary: IngestSummary, status: RunStatus = "running") -> None:
        scores = summary.scores
        if self.run_id is None:
            if not scores.handled:
                return
            self.run_id = start_run(db, "score", detail={"mode": "redis"})
        counts: dict[str, Any] = {
            "items_new": scores.stored,
            "items_unchanged": scores.unchanged,
            "dropped_by_reason": dict(scores.dead_lettered),
            "detail": {"mode": "redis", "enqueued": dict(summary.enqueued)},
        }
        if status == "running":
            update_run(db, self.run_id, **counts)
        else:
            finish_run(db, self.run_id, status, **counts)


def _ingest_items(
    client: redis.Redis, db: sqlite_utils.Database, *, consumer: str, count: int, summary: IngestSummary,
    run_id: int | None = None,
) -> int:
    """One batch of review items through the crawl side's ingest (the same writer code as a
    single-machine crawl); returns the messages handled. ``min_idle`` 0: the writer lock means no
    other writer is alive, so what a killed writer left pending is taken over at once."""
    from reputation.distributed.items_ingest import ingest_items  # imports the crawl pipelines: only here

    return int(
        ingest_items(
            client, db, consumer=consumer, count=count, block=0.0, min_idle=0.0, run_id=run_id,
            counts=summary.item_outcomes,
        )
    )


def ingest_round(
    client: redis.Redis,
    db: sqlite_utils.Database,
    *,
    consumer: str,
    batch: int = 500,
    items: bool = True,
    summary: IngestSummary,
    run_id: int | None = None,
) -> int:
    """One batch of items (stored with the crawl round's ``run_id``) and one of scores; returns how
    many messages were handled. Scoring work the scorers acknowledged is trimmed here too."""
    handled = 0
    if items:
        n = _ingest_items(client, db, consumer=consumer, count=batch, summary=summary, run_id=run_id)
        summary.items += n
        handled += n
    scores = ingest_scores(client, db, consumer=consumer, count=batch)
    summary.scores.add(scores)
    streams.trim_done(client, streams.SCORE_WORK_STREAM)
    summary.rounds += 1
    return handled + scores.handled


def enqueue_for_announced(client: redis.Redis, db: sqlite_utils.Database, summary: IngestSummary) -> int:
    """Send every review the announced models have not scored to the scoring workers."""
    sent = 0
    for model_id, revision in announced_models(client):
        n = enqueue_unscored(client, db, model_id, revision)
        if n:
            key = f"{model_id}@{revision}"
            summary.enqueued[key] = summary.enqueued.get(key, 0) + n
        sent += n
    return sent


def drain(
    client: redis.Redis,
    db: sqlite_utils.Database,
    *,
    consumer: str | None = None,
    batch: int = 500,
    enqueue: bool = True,
    items: bool = True,
    max_share: float = rounds.REMOVAL_MAX_SHARE,
) -> IngestSummary:
    """Move everything waiting now, then enqueue scoring work; the caller holds the writer lock.
    ``max_share``: the removal guard of a round it closes (rounds.removal_max_share)."""
    consumer = consumer or streams.consumer_name("ingest")
    streams.ensure_groups(client)
    summary = IngestSummary()
    run = _RoundRun()
    while ingest_round(client, db, consumer=consumer, batch=batch, items=items, summary=summary,
                       run_id=run.current(client, db) if items else None):  # fmt: skip
        pass
    # A first poll: only a round whose every source recorded a page is over.
    watch = rounds.RoundWatch(max_share=max_share)
    if items and watch.over(client):
        closed = watch.finish(client, db)
        if closed is not None:
            summary.crawl_rounds.append(closed)
    if enqueue:
        enqueue_for_announced(client, db, summary)
    _ScoreRun().note(db, summary, "ok")
    return summary


def follow(
    client: redis.Redis,
    db: sqlite_utils.Database,
    *,
    stop: threading.Event,
    consumer: str | None = None,
    batch: int = 500,
    enqueue: bool = True,
    items: bool = True,
    idle_sleep: float = 1.0,
    enqueue_every: float = 10.0,
    max_share: float = rounds.REMOVAL_MAX_SHARE,
) -> IngestSummary:
    """Keep moving items and scores until ``stop`` is set; enqueue scoring work every few seconds.
    ``max_share``: the removal guard of the rounds it closes (rounds.removal_max_share)."""
    consumer = consumer or streams.consumer_name("ingest")
    streams.ensure_groups(client)
    summary = IngestSummary()
    beat = streams.Heartbeat(client, consumer, "ingest")
    beat.start()
    last_enqueue = 0.0
    run = _RoundRun()
    score_run = _ScoreRun()
    watch = rounds.RoundWatch(max_share=max_share)
    while not stop.is_set():
        before, items_before = summary.items + summary.scores.handled, summary.items
        handled = ingest_round(client, db, consumer=consumer, batch=batch, items=items, summary=summary,
                               run_id=run.current(client, db) if items else None)  # fmt: skip
        if items and watch.over(client, progress=summary.items > items_before):
            closed = watch.finish(client, db)
            if closed is not None:
                summary.crawl_rounds.append(closed)
        if enqueue and time.monotonic() - last_enqueue >= enqueue_every:
            enqueue_for_announced(client, db, summary)
            last_enqueue = time.monotonic()
            score_run.note(db, summary)
        beat.beat(
            processed=summary.items + summary.scores.handled - before, state="running" if handled else "idle"
        )
        if not handled:
            stop.wait(idle_sleep)
    beat.beat(state="stopped")
    score_run.note(db, summary, "ok")
    return summary
