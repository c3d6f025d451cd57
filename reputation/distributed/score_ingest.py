"""Scoring over Redis, the writer's side: enqueue reviews to score, store the scores that come back.

``enqueue_unscored`` selects the reviews a model revision still has to score with the same query
as the single-machine job (reputation.scoring.job: no row for this revision, text changed since,
or the last attempt failed) and appends one work message per review. A review already sent and
not yet stored (its "review_id|body_hash" in SCORE_QUEUED_SET) is not sent again, so running the
enqueue twice scores nothing twice.

``ingest_scores`` reads SCORES_STREAM in the writer group, stores one batch in one transaction
and acknowledges it after the commit: a writer killed before the ack gets the same messages again,
and storing them again changes nothing (a row for the same review, model revision and text is kept
as it is; a stale or failed row is replaced). Messages that are not score rows, and scores for
reviews deleted meanwhile, are dead-lettered with their reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis
import sqlite_utils

from reputation.distributed import streams
from reputation.scoring.job import _PK, ERROR_FLAG, pending_chunks  # the single-machine job's selection
from storage.database import transaction

#: A model announced by a worker within this many seconds counts as current.
ANNOUNCE_TTL = 15 * 60
REASON_BAD_SCORE = "invalid_score"
REASON_UNKNOWN_REVIEW = "unknown_review"

# Columns of review_sentiment a result message must carry, with their JSON types.
_SCORE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "review_id": str,
    "model_id": str,
    "model_revision": str,
    "body_hash": str,
    "label": (str, type(None)),
    "probabilities": (str, type(None)),
    "score": (float, int, type(None)),
    "cs_relevance": (float, int, type(None)),
    "cs_label": (str, type(None)),
    "cs_score": (float, int, type(None)),
    "cs_sentences": (str, type(None)),
    "other_score": (float, int, type(None)),
    "language": (str, type(None)),
    "flags": str,
    "scored_at": str,
}


@dataclass
class ScoreIngestSummary:
    """What the writer did with score messages."""

    stored: int = 0  # rows written (new, or replacing a stale / failed row)
    unchanged: int = 0  # duplicates of a row already stored: nothing changed
    dead_lettered: dict[str, int] = field(default_factory=dict)  # reason -> messages

    def add(self, other: ScoreIngestSummary) -> None:
        self.stored += other.stored
        self.unchanged += other.unchanged
        for reason, n in other.dead_lettered.items():
            self.dead_lettered[reason] = self.dead_lettered.get(reason, 0) + n

    @property
    def handled(self) -> int:
        return self.stored + self.unchanged + sum(self.dead_lettered.values())


def announced_models(client: redis.Redis, *, max_age: float = ANNOUNCE_TTL) -> list[tuple[str, str]]:
    """(model_id, revision) of every model a scoring worker announced within ``max_age`` seconds."""
    import time

    raw: Any = client.hgetall(streams.SCORE_MODELS_KEY) or {}
    out = []
    for value in raw.values():
        try:
            info = json.loads(value)
            if time.time() - float(info["at"]) <= max_age:
                out.append((str(info["model_id"]), str(info["revision"])))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(set(out))


def enqueue_unscored(
    client: redis.Redis,
    db: sqlite_utils.Database,
    model_id: str,
    revision: str,
    *,
    limit: int | None = None,
    chunk: int = 1000,
) -> int:
    """Append a work message for each review ``model_id@revision`` has not scored; returns how many.

    ``limit`` bounds the reviews looked at (those already on their way to a worker included).
    """
    sent = 0
    columns = "r.id, r.title, r.body, r.body_hash, r.language"
    for rows in pending_chunks(db, model_id, revision, columns, chunk=chunk, limit=limit):
        members = [f"{row[0]}|{row[3]}" for row in rows]
        pipe = client.pipeline(transaction=False)
        for member in members:
            pipe.sadd(streams.SCORE_QUEUED_SET, member)
        fresh = pipe.execute()
        pipe = client.pipeline(transaction=True)
        for row, member, new in zip(rows, members, fresh, strict=True):
            if not new:
                continue  # already on its way to a worker
            payload = {
                "review_id": row[0],
                "title": row[1],
                "body": row[2],
                "body_hash": row[3],
                "language": row[4],
                "model_id": model_id,
                "model_revision": revision,
                "queued": member,
            }
            pipe.xadd(streams.SCORE_WORK_STREAM, streams.encode(payload))  # type: ignore[arg-type]
            sent += 1
        pipe.execute()
    return sent


def ingest_scores(
    client: redis.Redis,
    db: sqlite_utils.Database,
    *,
    consumer: str,
    count: int = 500,
    block: float = 0.0,
    min_idle: float = 0.0,
) -> ScoreIngestSummary:
    """Store one batch of score messages in one transaction, then acknowledge it.

    ``min_idle`` 0: the writer lock guarantees no other writer is alive, so whatever an earlier
    (killed) writer left pending is taken over at once.
    """
    summary = ScoreIngestSummary()
    messages = streams.read_batch(
        client,
        streams.SCORES_STREAM,
        streams.WRITER_GROUP,
        consumer,
        count=count,
        block=max(block, 0.001),
        min_idle=min_idle,
    )
    if not messages:
        return summary
    valid: list[tuple[streams.Message, dict[str, Any]]] = []
    for message in messages:
        try:
            payload = message.payload()
            streams.require(payload, **_SCORE_FIELDS)
            json.loads(payload["flags"])
        except (streams.MalformedMessage, ValueError) as exc:
            _dead(client, message, REASON_BAD_SCORE, str(exc), summary)
            continue
        valid.append((message, payload))
    records: dict[tuple[str, str, str], dict[str, Any]] = {}
    gone: list[tuple[streams.Message, dict[str, Any]]] = []
    with transaction(db):
        ids = sorted({p["review_id"] for _, p in valid})
        marks = ",".join("?" * len(ids))
        known = {r[0] for r in db.execute(f"SELECT id FROM reviews WHERE id IN ({marks})", ids)}
        stored = {
            (r[0], r[1], r[2]): (r[3], r[4])
            for r in db.execute(
                "SELECT review_id, model_id, model_revision, body_hash, flags FROM review_sentiment "
                f"WHERE review_id IN ({marks})",
                ids,
            )
        }
        for message, payload in valid:
            key = (payload["review_id"], payload["model_id"], payload["model_revision"])
            if key[0] not in known:
                gone.append((message, payload))
                continue
            current = stored.get(key)
            same = (
                current is not None
                and current[0] == payload["body_hash"]
                and f'"{ERROR_FLAG}"' not in (current[1] or "")
            )
            if same or key in records:
                summary.unchanged += 1
                continue
            records[key] = {name: payload[name] for name in _SCORE_FIELDS}
        if records:
            db.table("review_sentiment").upsert_all(list(records.values()), pk=_PK)
        summary.stored += len(records)
    # Committed: now the messages may go (scores for deleted reviews go to the dead letters below).
    gone_ids = {m.id for m, _ in gone}
    done = [(m, p) for m, p in valid if m.id not in gone_ids]
    if done:
        pipe = client.pipeline(transaction=True)
        pipe.xack(streams.SCORES_STREAM, streams.WRITER_GROUP, *[m.id for m, _ in done])
        pipe.srem(
            streams.SCORE_QUEUED_SET,
            *[str(p.get("queued") or f"{p['review_id']}|{p['body_hash']}") for _, p in done],
        )
        pipe.execute()
        streams.trim_done(client, streams.SCORES_STREAM)  # stored and acknowledged: Redis need not keep them
    for message, payload in gone:
        _dead(
            client,
            message,
            REASON_UNKNOWN_REVIEW,
            f"review {payload['review_id']} is not in the database",
            summary,
        )
    return summary


def _dead(
    client: redis.Redis, message: streams.Message, reason: str, detail: str, summary: ScoreIngestSummary
) -> None:
    streams.dead_letter(client, streams.WRITER_GROUP, message, reason, detail)
    summary.dead_lettered[reason] = summary.dead_lettered.get(reason, 0) + 1
    queued = streams.queued_member(message.fields)
    if queued:
        client.srem(streams.SCORE_QUEUED_SET, queued)
