"""What the distributed job is doing now: queue depths, pending work, dead letters, workers.

Read-only; imports neither torch nor Scrapy, so ``reputation workers status`` answers at once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from reputation.distributed import streams

#: A worker whose last heartbeat is older than this is shown as "silent" (probably dead).
SILENT_AFTER = 60.0


@dataclass
class StreamStatus:
    """One stream: messages in it, and for its consumer group the pending and not-yet-read counts."""

    stream: str
    length: int
    group: str | None = None
    pending: int = 0  # delivered to a consumer, not acknowledged yet
    lag: int | None = None  # not delivered to any consumer yet (Redis >= 7)
    pending_by_consumer: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkerStatus:
    name: str
    kind: str
    state: str
    processed: int
    failed: int
    rate: float  # per second, over the last minute (streams.RATE_WINDOW)
    overall_rate: float  # per second since the worker started
    heartbeat_age: float  # seconds since the last heartbeat
    silent: bool
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Status:
    frontier: dict[str, int]
    streams: list[StreamStatus]
    dead_letters: dict[str, dict[str, int]]  # stream -> reason -> count
    dead_letter_length: int
    score_queued: int  # reviews sent to scoring and not stored yet
    workers: list[WorkerStatus]
    # The crawl round the writer has not closed: sources enqueued, its crawl_runs id once opened.
    crawl_round: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(client: redis.Redis, *, now: float | None = None) -> Status:
    """The current status from Redis (a few round trips)."""
    now = time.time() if now is None else now
    stream_rows = [_stream_status(client, stream, group) for stream, group in streams.GROUPS.items()]
    stream_rows.append(StreamStatus(streams.PAGES_STREAM, _xlen(client, streams.PAGES_STREAM)))
    dead: dict[str, dict[str, int]] = {}
    for (stream, reason), count in sorted(streams.dead_letter_counts(client).items()):
        dead.setdefault(stream, {})[reason] = count
    workers = []
    for name, data in streams.workers(client).items():
        started = _float(data.get("started"))
        beat = _float(data.get("heartbeat"))
        processed = int(_float(data.get("processed")))
        known = {"kind", "state", "processed", "failed", "rate", "started", "heartbeat"}
        workers.append(
            WorkerStatus(
                name=name,
                kind=data.get("kind", "?"),
                state=data.get("state", "?"),
                processed=processed,
                failed=int(_float(data.get("failed"))),
                rate=_float(data.get("rate")),
                overall_rate=round(processed / max(beat - started, 1e-6), 3) if beat > started else 0.0,
                heartbeat_age=round(max(now - beat, 0.0), 1),
                silent=data.get("state") != "stopped" and now - beat > SILENT_AFTER,
                extra={k: v for k, v in data.items() if k not in known},
            )
        )
    return Status(
        frontier=_frontier(client),
        streams=stream_rows,
        dead_letters=dead,
        dead_letter_length=_xlen(client, streams.DEAD_LETTER_STREAM),
        score_queued=int(client.scard(streams.SCORE_QUEUED_SET) or 0),
        workers=workers,
        crawl_round=_crawl_round(client),
    )


def render(status: Status) -> str:
    """The status as a few aligned lines for a terminal."""
    lines = ["frontier: " + (", ".join(f"{k} {v}" for k, v in status.frontier.items()) or "none")]
    lines.append("streams:")
    for s in status.streams:
        line = f"  {s.stream:<24} length {s.length:>8}"
        if s.group:
            lag = "?" if s.lag is None else str(s.lag)
            line += f"  group {s.group:<8} unread {lag:>8}  pending {s.pending:>6}"
            if s.pending_by_consumer:
                line += " (" + ", ".join(f"{c} {n}" for c, n in s.pending_by_consumer.items()) + ")"
        lines.append(line)
    cr = status.crawl_round
    if cr.get("sources"):
        run = f"crawl_runs id {cr['run_id']}" if cr.get("run_id") else "no run opened yet"
        lines.append(f"crawl round: {cr['sources']} sources enqueued, not closed by the writer ({run})")
    else:
        lines.append("crawl round: none open")
    lines.append(f"scoring: {status.score_queued} reviews sent and not stored yet")
    total_dead = sum(sum(r.values()) for r in status.dead_letters.values())
    lines.append(f"dead letters: {total_dead}" + ("" if total_dead else " (none)"))
    for stream, reasons in status.dead_letters.items():
        for reason, count in reasons.items():
            lines.append(f"  {stream:<24} {reason:<22} {count:>6}")
    lines.append(f"workers: {len(status.workers)}")
    for w in status.workers:
        flag = "  SILENT" if w.silent else ""
        extra = " ".join(f"{k}={v}" for k, v in w.extra.items())
        lines.append(
            f"  {w.kind:<6} {w.name:<32} {w.state:<8} processed {w.processed:>8}  failed {w.failed:>5}  "
            f"{w.rate:>8.2f}/s last min  {w.overall_rate:>8.2f}/s overall  beat {w.heartbeat_age:>6.1f}s ago{flag}"
            + (f"  {extra}" if extra else "")
        )
    return "\n".join(lines)


def _stream_status(client: redis.Redis, stream: str, group: str) -> StreamStatus:
    row = StreamStatus(stream, _xlen(client, stream), group)
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:  # no such stream yet
        return row
    for info in groups:
        if info.get("name") != group:
            continue
        row.pending = int(info.get("pending") or 0)
        lag = info.get("lag")
        row.lag = None if lag is None else int(lag)
        if row.pending:
            summary: Any = client.xpending(stream, group)
            row.pending_by_consumer = {c["name"]: int(c["pending"]) for c in summary.get("consumers") or []}
    return row


def _crawl_round(client: redis.Redis) -> dict[str, Any]:
    """Sources of the open crawl round and its run id (reputation.distributed.rounds)."""
    from reputation.distributed.enqueue import ROUND_KEY, ROUND_RUN_KEY  # imports Scrapy: only here

    run = client.get(ROUND_RUN_KEY)
    return {"sources": int(client.hlen(ROUND_KEY) or 0), "run_id": int(run) if run else None}


def _frontier(client: redis.Redis) -> dict[str, int]:
    """Requests queued, leased and start entries waiting in the crawl frontier (the crawl side's keys)."""
    from crawler.redis_frontier import frontier_depth  # imports Scrapy: only when status is asked

    return frontier_depth(client)


def _xlen(client: redis.Redis, stream: str) -> int:
    return int(client.xlen(stream) or 0)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
