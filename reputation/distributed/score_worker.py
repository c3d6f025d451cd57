"""A scoring worker: review texts from Redis in, the same sentiment rows as ``reputation score`` out.

Run on any machine with the model (``reputation worker score --redis URL --device cuda``). The
worker loads the model and the customer-service detector once, announces its model revision
(so the writer enqueues the reviews that revision has not scored), then loops: take a batch from
SCORE_WORK_STREAM in the ``scorers`` group (re-claiming batches a dead worker left pending), score
it with reputation.scoring.job's code, and append each result to SCORES_STREAM and acknowledge its
work in one atomic step (streams.append_and_ack). A worker killed at any point loses nothing and
stores nothing twice: unacknowledged work is re-claimed by another worker after ``claim_idle``
seconds, and a result is appended only by the worker that still owns the work.

Connection loss: every Redis command waits and retries (streams.connect(wait=True)); the batch in
hand is kept and its results appended once Redis is back. SIGTERM/SIGINT finish the batch, then exit;
a second signal exits at once (the unacknowledged batch stays in Redis for another worker).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import redis

from reputation.distributed import streams
from reputation.scoring.job import (  # the single-machine job's own code, so values are identical
    _load_detector,
    _score_rows,
    load_model,
)
from sentiment.model import SentimentModel

log = logging.getLogger(__name__)

#: Fields every work message carries (score_ingest.enqueue_unscored writes them).
WORK_FIELDS: dict[str, type | tuple[type, ...]] = {
    "review_id": str,
    "body_hash": str,
    "title": (str, type(None)),
    "body": (str, type(None)),
    "language": (str, type(None)),
}
REASON_BAD_WORK = "invalid_work"


@dataclass
class WorkerSummary:
    """What one worker did before it stopped."""

    name: str
    model_id: str
    model_revision: str
    scored: int = 0  # results appended
    failed: int = 0  # of those, rows flagged score_error (kept: the writer stores them, as the job does)
    superseded: int = 0  # work re-claimed by another worker before this one finished it
    dead_lettered: int = 0  # malformed work messages


def announce(client: redis.Redis, model: SentimentModel, worker: str) -> None:
    """Record that a worker runs ``model`` now (the writer enqueues work for announced models)."""
    client.hset(
        streams.SCORE_MODELS_KEY,
        f"{model.model_id}@{model.revision}",
        json.dumps(
            {"model_id": model.model_id, "revision": model.revision, "worker": worker, "at": time.time()}
        ),
    )


def run_score_worker(
    url: str,
    *,
    model: SentimentModel | str | None = None,
    device: str | None = None,
    batch: int = 64,
    batch_size: int = 32,
    claim_idle: float = streams.DEFAULT_MIN_IDLE,
    max_deliveries: int = streams.DEFAULT_MAX_DELIVERIES,
    stop: threading.Event | None = None,
    exit_when_idle: bool = False,
    name: str | None = None,
) -> WorkerSummary:
    """Score work from Redis until stopped (SIGTERM/SIGINT or ``stop``), or until the queue is empty
    when ``exit_when_idle``. Loads the model once; ``device`` None picks CUDA when present."""
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    try:
        classifier = load_model(model, device=device)
        detector = _load_detector(classifier)
        client = streams.connect(url, wait=True, socket_timeout=max(30.0, claim_idle))
        consumer = name or streams.consumer_name("score")
        summary = WorkerSummary(consumer, classifier.model_id, classifier.revision)
        streams.ensure_group(client, streams.SCORE_WORK_STREAM, streams.SCORERS_GROUP)
        announce(client, classifier, consumer)
        beat = streams.Heartbeat(
            client,
            consumer,
            "score",
            extra={"model": f"{classifier.model_id}@{classifier.revision}", "device": str(classifier.device)},
        )
        beat.start()
        last_announce = time.monotonic()
        while not stop.is_set():
            messages = streams.read_batch(
                client,
                streams.SCORE_WORK_STREAM,
                streams.SCORERS_GROUP,
                consumer,
                count=batch,
                block=1.0,
                min_idle=claim_idle,
                max_deliveries=max_deliveries,
            )
            if time.monotonic() - last_announce > 60:
                announce(client, classifier, consumer)
                last_announce = time.monotonic()
            if not messages:
                beat.beat(state="idle")
                if exit_when_idle:
                    break
                continue
            with _KeepAlive(
                client, consumer, beat, [m.id for m in messages], interval=min(5.0, claim_idle / 3)
            ):
                appended, failed = _score_messages(
                    client, consumer, messages, classifier, detector, batch_size, summary
                )
            beat.beat(processed=appended, failed=failed)
        beat.beat(state="stopped")
        return summary
    finally:
        restore()


def _score_messages(
    client: redis.Redis,
    consumer: str,
    messages: list[streams.Message],
    classifier: SentimentModel,
    detector: Any,
    batch_size: int,
    summary: WorkerSummary,
) -> tuple[int, int]:
    """Score one batch and hand the results over; returns (appended, flagged score_error)."""
    rows: list[tuple[Any, ...]] = []
    kept: list[tuple[streams.Message, str]] = []
    for message in messages:
        try:
            payload = message.payload()
            streams.require(payload, **WORK_FIELDS)
        except streams.MalformedMessage as exc:
            streams.dead_letter(client, streams.SCORERS_GROUP, message, REASON_BAD_WORK, str(exc))
            summary.dead_lettered += 1
            member = streams.queued_member(message.fields)
            if member:  # let a later enqueue send the review again
                client.srem(streams.SCORE_QUEUED_SET, member)
            continue
        rows.append(
            (
                payload["review_id"],
                payload["title"],
                payload["body"],
                payload["body_hash"],
                payload["language"],
                0,
            )
        )
        kept.append((message, str(payload.get("queued") or f"{payload['review_id']}|{payload['body_hash']}")))
    if not rows:
        return 0, 0
    records = _score_rows(rows, classifier, detector, batch_size)
    results = [
        (message.id, {**record, "queued": member})
        for (message, member), record in zip(kept, records, strict=True)
    ]
    appended = streams.append_and_ack(
        client, streams.SCORE_WORK_STREAM, streams.SCORERS_GROUP, consumer, streams.SCORES_STREAM, results
    )
    failed = sum(1 for _, r in results if '"score_error"' in r["flags"])
    summary.scored += appended
    summary.failed += failed
    summary.superseded += len(results) - appended
    return appended, failed


class _KeepAlive:
    """While a batch is scored: a heartbeat every ``interval`` seconds, and the batch's messages
    kept fresh (streams.touch) so a slow batch is not taken over from a live worker. A killed
    worker stops touching, and its batch is taken over ``claim_idle`` seconds later."""

    def __init__(
        self, client: redis.Redis, consumer: str, beat: streams.Heartbeat, ids: list[str], *, interval: float
    ) -> None:
        self.client, self.consumer, self.beat, self.ids, self.interval = client, consumer, beat, ids, interval
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="keep-alive", daemon=True)

    def _run(self) -> None:
        while not self.done.wait(self.interval):
            try:
                streams.touch(
                    self.client, streams.SCORE_WORK_STREAM, streams.SCORERS_GROUP, self.consumer, self.ids
                )
                self.beat.beat(state="running")
            except Exception as exc:  # Redis away: the main thread's commands wait for it
                log.warning("keep-alive: %s", exc)

    def __enter__(self) -> _KeepAlive:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def _stop_on_signals(stop: threading.Event) -> Any:
    """SIGTERM/SIGINT set ``stop`` (the batch in hand is finished first); returns a restorer."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # a second signal: leave now; the batch in hand is taken over by another worker
            raise SystemExit(128 + signum)
        log.warning("signal %d: finishing the batch in hand, then stopping (again to stop at once)", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
