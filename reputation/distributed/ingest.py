"""The single writer: review items and scores from Redis into SQLite, then scoring work back out.

``reputation ingest --redis URL`` runs this beside the SQLite file, under the database's writer
lock (storage.lock), so a second writer started by mistake refuses the way a second ``run`` does.
Each round moves one batch of items (crawl side: reputation.distributed.items_ingest) and one batch
of scores (score_ingest) in their own transactions, acknowledging each batch after its commit, and
then enqueues the reviews that the models announced by live scoring workers have not scored yet
(new items become scoring work without another command). ``drain`` stops when both streams are
empty (``--once``); ``follow`` keeps going until stopped (``--follow``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis
import sqlite_utils

from reputation.distributed import streams
from reputation.distributed.score_ingest import (
    ScoreIngestSummary,
    announced_models,
    enqueue_unscored,
    ingest_scores,
)


@dataclass
class IngestSummary:
    """What the writer moved."""

    items: int = 0  # item messages handled (stored or dead-lettered) by the items ingest
    item_outcomes: Counter[str] = field(default_factory=Counter)  # new / updated / unchanged / dead reasons
    scores: ScoreIngestSummary = field(default_factory=ScoreIngestSummary)
    enqueued: dict[str, int] = field(default_factory=dict)  # "model@revision" -> reviews sent to score
    rounds: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "item_outcomes": dict(self.item_outcomes),
            "scores_stored": self.scores.stored,
            "scores_unchanged": self.scores.unchanged,
            "dead_lettered": dict(self.scores.dead_lettered),
            "enqueued": dict(self.enqueued),
        }


def _ingest_items(
    client: redis.Redis, db: sqlite_utils.Database, *, consumer: str, count: int, summary: IngestSummary
) -> int:
    """One batch of review items through the crawl side's ingest (the same writer code as a
    single-machine crawl); returns the messages handled. ``min_idle`` 0: the writer lock means no
    other writer is alive, so what a killed writer left pending is taken over at once."""
    from reputation.distributed.items_ingest import ingest_items  # imports the crawl pipelines: only here

    return int(
        ingest_items(
            client, db, consumer=consumer, count=count, block=0.0, min_idle=0.0, counts=summary.item_outcomes
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
) -> int:
    """One batch of items and one of scores; returns how many messages were handled."""
    handled = 0
    if items:
        n = _ingest_items(client, db, consumer=consumer, count=batch, summary=summary)
        summary.items += n
        handled += n
    scores = ingest_scores(client, db, consumer=consumer, count=batch)
    summary.scores.add(scores)
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
) -> IngestSummary:
    """Move everything waiting now, then enqueue scoring work; the caller holds the writer lock."""
    consumer = consumer or streams.consumer_name("ingest")
    streams.ensure_groups(client)
    summary = IngestSummary()
    while ingest_round(client, db, consumer=consumer, batch=batch, items=items, summary=summary):
        pass
    if enqueue:
        enqueue_for_announced(client, db, summary)
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
) -> IngestSummary:
    """Keep moving items and scores until ``stop`` is set; enqueue scoring work every few seconds."""
    consumer = consumer or streams.consumer_name("ingest")
    streams.ensure_groups(client)
    summary = IngestSummary()
    beat = streams.Heartbeat(client, consumer, "ingest")
    beat.start()
    last_enqueue = 0.0
    while not stop.is_set():
        before = summary.items + summary.scores.handled
        handled = ingest_round(client, db, consumer=consumer, batch=batch, items=items, summary=summary)
        if enqueue and time.monotonic() - last_enqueue >= enqueue_every:
            enqueue_for_announced(client, db, summary)
            last_enqueue = time.monotonic()
        beat.beat(
            processed=summary.items + summary.scores.handled - before, state="running" if handled else "idle"
        )
        if not handled:
            stop.wait(idle_sleep)
    beat.beat(state="stopped")
    return summary
