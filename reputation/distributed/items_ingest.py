"""Review items from the items stream into SQLite: the crawl half of the single writer.

``reputation ingest`` (reputation.distributed.ingest) calls ``ingest_items`` in its loop. Each
batch goes through crawler.pipelines.review_writer.write_batch, the code a single-machine crawl
stores with, inside one write transaction; the messages are acknowledged only after the commit.
So a writer killed at any point loses nothing (unacknowledged messages are delivered again) and
stores nothing twice (the same item again matches its stored row by id: "unchanged").

Aggregate ratings of listings (``kind=aggregate``) are stored in ``source_aggregates`` with the
batch when a crawl run is given (the round's, reputation.distributed.rounds); without one they are
counted (``aggregate_without_run``) and acknowledged. Stored and acknowledged messages are trimmed
from the stream (streams.trim_done). A message that is not a review item (bad JSON, missing or mistyped fields) is dead-lettered with
reason ``malformed``; an item SQLite refuses (an unknown source, say) is dead-lettered with
reason ``store_failed`` after the rest of its batch is stored. Each reason is counted in Redis
(streams.DEAD_LETTER_COUNTS) and in the returned counts.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import sqlite_utils

from crawler.aggregates import SourceAggregate
from crawler.extractors.result import Aggregate
from crawler.items import TRANSIENT_FIELDS, ReviewItem
from crawler.pipelines.review_writer import write_batch
from crawler.redis_frontier import frontier_empty
from reputation.distributed import streams
from storage.database import transaction, utcnow

logger = logging.getLogger(__name__)

REASON_STORE_FAILED = "store_failed"
#: Aggregate ratings ingested outside a crawl run (``reputation ingest`` alone): counted, not stored.
REASON_AGGREGATE_WITHOUT_RUN = "aggregate_without_run"
_FIELDS = {f.name: f for f in dataclasses.fields(ReviewItem) if f.name not in TRANSIENT_FIELDS}
_REQUIRED_TEXT = ("id", "source_id", "brand_id", "body", "body_hash")
_TEXT = (str, type(None))
_NUMBER = (int, float, type(None))
_TYPES: dict[str, tuple[type, ...]] = {
    **{name: _TEXT for name, f in _FIELDS.items()},
    "rating_value": _NUMBER, "rating_min": _NUMBER, "rating_max": _NUMBER, "rating": _NUMBER,
    "truncated": (bool,), "extra": (dict,), "date_precision": (str,),
}  # fmt: skip


def item_from_payload(payload: Mapping[str, Any]) -> ReviewItem:
    """The ReviewItem a message carries; streams.MalformedMessage says what is wrong with it."""
    unknown = sorted(set(payload) - set(_FIELDS))
    if unknown:
        raise streams.MalformedMessage(f"unknown field(s) {', '.join(unknown)}")
    for name in _REQUIRED_TEXT:
        value = payload.get(name)
        if not isinstance(value, str) or not value:
            raise streams.MalformedMessage(f"field {name!r} missing or not a non-empty string")
    for name, value in payload.items():
        if not isinstance(value, _TYPES[name]) or (isinstance(value, bool) and bool not in _TYPES[name]):
            raise streams.MalformedMessage(f"field {name!r} is {type(value).__name__}")
    return ReviewItem(**payload)


def aggregate_from_payload(payload: Mapping[str, Any]) -> SourceAggregate:
    """The SourceAggregate an ``aggregate`` message carries; MalformedMessage says what is wrong."""
    fields = {f.name for f in dataclasses.fields(Aggregate)}
    unknown = sorted(set(payload) - fields - {"source_id", "seen_at"})
    if unknown:
        raise streams.MalformedMessage(f"unknown field(s) {', '.join(unknown)}")
    for name in ("source_id", "seen_at"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise streams.MalformedMessage(f"field {name!r} missing or not a non-empty string")
    for name in fields:
        if not isinstance(payload.get(name), _NUMBER) or isinstance(payload.get(name), bool):
            raise streams.MalformedMessage(f"field {name!r} is {type(payload.get(name)).__name__}")
    return SourceAggregate(
        str(payload["source_id"]), Aggregate(**{k: payload.get(k) for k in fields}), str(payload["seen_at"])
    )


def _store(
    db: sqlite_utils.Database, items: list[ReviewItem], run_id: int | None, aggregates: Sequence[SourceAggregate] = ()
) -> Counter[str]:
    """Write one batch; with a run, add its counts to the run's row in the same transaction (so
    they hold across writer processes, and a batch delivered again adds only "unchanged")."""
    with transaction(db) as conn:
        counts = write_batch(conn, items, run_id=run_id, now=utcnow(), aggregates=aggregates)
        if run_id is not None:
            conn.execute(
                "UPDATE crawl_runs SET items_new = items_new + ?, items_updated = items_updated + ?, "
                "items_unchanged = items_unchanged + ? WHERE id = ?",
                (counts["new"], counts["updated"], counts["unchanged"], run_id),
            )
        return counts


def ingest_batch(
    client: redis.Redis,
    db: sqlite_utils.Database,
    messages: list[streams.Message],
    *,
    run_id: int | None = None,
    group: str = streams.WRITER_GROUP,
) -> Counter[str]:
    """Store one batch of item messages, then acknowledge them; dead-letter the unusable ones."""
    counts: Counter[str] = Counter()
    good: list[tuple[streams.Message, ReviewItem]] = []
    aggregates: list[tuple[streams.Message, SourceAggregate]] = []
    for message in messages:
        try:
            payload = message.payload()
            kind = message.fields.get("kind", "review")
            if kind == "aggregate":
                aggregates.append((message, aggregate_from_payload(payload)))
            elif kind == "review":
                good.append((message, item_from_payload(payload)))
            else:
                raise streams.MalformedMessage(f"kind {kind!r} is neither 'review' nor 'aggregate'")
        except (streams.MalformedMessage, TypeError) as exc:
            streams.dead_letter(client, group, message, streams.REASON_MALFORMED, str(exc))
            counts[streams.REASON_MALFORMED] += 1
    if aggregates and run_id is None:  # source_aggregates rows belong to a crawl run; this ingest has none
        counts[REASON_AGGREGATE_WITHOUT_RUN] += len(aggregates)
        streams.ack(client, streams.ITEMS_STREAM, group, [m.id for m, _ in aggregates])
        aggregates = []
    if not (good or aggregates):
        return counts
    try:
        counts.update(_store(db, [item for _, item in good], run_id, [a for _, a in aggregates]))
        counts["aggregates"] += len(aggregates)
        streams.ack(client, streams.ITEMS_STREAM, group, [m.id for m, _ in good] + [m.id for m, _ in aggregates])
        return counts
    except sqlite3.IntegrityError as exc:
        logger.warning("a batch of %d items failed (%s); storing them one by one", len(good), exc)
    if aggregates:  # an aggregate of an unknown source: keep them apart from the items
        try:
            _store(db, [], run_id, [a for _, a in aggregates])
            counts["aggregates"] += len(aggregates)
        except sqlite3.IntegrityError as exc:
            for message, _ in aggregates:
                streams.dead_letter(client, group, message, REASON_STORE_FAILED, str(exc))
                counts[REASON_STORE_FAILED] += 1
        else:
            streams.ack(client, streams.ITEMS_STREAM, group, [m.id for m, _ in aggregates])
    for message, item in good:  # rare: find the item(s) SQLite refuses, store the rest
        try:
            counts.update(_store(db, [item], run_id))
        except sqlite3.IntegrityError as exc:
            streams.dead_letter(client, group, message, REASON_STORE_FAILED, f"{item.id}: {exc}")
            counts[REASON_STORE_FAILED] += 1
            continue
        streams.ack(client, streams.ITEMS_STREAM, group, [message.id])
    return counts


def ingest_items(
    client: redis.Redis,
    db: sqlite_utils.Database,
    *,
    consumer: str,
    count: int = 500,
    block: float = 0.0,
    min_idle: float = 0.0,
    run_id: int | None = None,
    counts: Counter[str] | None = None,
) -> int:
    """One batch: read up to ``count`` item messages, store them in one transaction, acknowledge them.

    Re-claimed messages come first; ``min_idle=0`` because the writer lock means no other writer
    is alive, so a killed writer's pending items are taken over at once. Returns how many
    messages were handled (stored or dead-lettered); 0 means none were waiting (after ``block``
    seconds). Outcomes (new, updated, unchanged, merged, malformed, store_failed) are added to
    ``counts``. The caller holds the writer lock.
    """
    messages = streams.read_batch(
        client, streams.ITEMS_STREAM, streams.WRITER_GROUP, consumer, count=count, block=block, min_idle=min_idle
    )
    if not messages:
        return 0
    done = ingest_batch(client, db, messages, run_id=run_id)
    streams.trim_done(client, streams.ITEMS_STREAM)  # stored and acknowledged: Redis need not keep them
    if counts is not None:
        counts.update(done)
    return len(messages)


def drain_items(
    client: redis.Redis,
    db: sqlite_utils.Database,
    *,
    consumer: str | None = None,
    count: int = 500,
    run_id: int | None = None,
) -> Counter[str]:
    """``ingest_items`` until no item message is waiting; returns the outcomes counted."""
    name = consumer or streams.consumer_name("writer")
    streams.ensure_group(client, streams.ITEMS_STREAM, streams.WRITER_GROUP)
    counts: Counter[str] = Counter()
    while ingest_items(client, db, consumer=name, count=count, block=0.05, run_id=run_id, counts=counts):
        pass
    return counts


def items_pending(client: redis.Redis) -> int:
    """Item messages not yet stored: delivered and not acknowledged, plus not yet delivered to the writer."""
    streams.ensure_group(client, streams.ITEMS_STREAM, streams.WRITER_GROUP)
    info = {str(g["name"]): g for g in client.xinfo_groups(streams.ITEMS_STREAM)}
    group = info[streams.WRITER_GROUP]
    lag = group.get("lag")
    if lag is None:  # Redis cannot tell (entries were trimmed or deleted): is anything after the last delivered?
        lag = len(client.xrange(streams.ITEMS_STREAM, min=f"({group['last-delivered-id']}", count=1) or [])
    return int(group.get("pending", 0)) + int(lag)


def round_done(client: redis.Redis) -> bool:
    """The frontier is empty and every item is stored (reputation.distributed.rounds adds its checks)."""
    return frontier_empty(client) and items_pending(client) == 0
