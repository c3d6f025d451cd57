"""The Redis streams library and the writer's score ingest against a real redis-server.

Covers: a dead consumer's messages re-claimed by another, a message that is never acknowledged
dead-lettered after too many deliveries, malformed messages dead-lettered with a counted reason
while good ones are stored, one result per piece of work even when two workers score it, the
same score stored twice changes nothing, a worker blocked on Redis survives a Redis restart and
a data loss, `workers status`, a second writer refused, an unreachable Redis as one line, and
acknowledged messages trimmed while a dead consumer's pending ones stay to be re-claimed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from redis_server import RedisServer

from reputation.cli import cli
from reputation.distributed import streams
from reputation.distributed.ingest import drain
from reputation.distributed.score_ingest import REASON_BAD_SCORE, REASON_UNKNOWN_REVIEW, ingest_scores
from reputation.distributed.status import collect, render
from storage.database import connect, utcnow
from storage.lock import writer_lock

WORK, SCORERS = streams.SCORE_WORK_STREAM, streams.SCORERS_GROUP


@pytest.fixture
def client(redis_server: RedisServer) -> Any:
    c = streams.connect(redis_server.url, wait=True, socket_timeout=10)
    streams.ensure_groups(c)
    return c


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    database = connect(tmp_path / "reputation.db")
    now = utcnow()
    database.table("brands").insert({"id": "northwind", "name": "Northwind"})
    database.table("sources").insert({"id": "src1", "brand_id": "northwind", "url": "http://127.0.0.1/r/"})
    database.table("reviews").insert_all(
        {
            "id": f"r{i}",
            "source_id": "src1",
            "brand_id": "northwind",
            "body": f"review {i}",
            "body_hash": hashlib.sha256(f"review {i}".encode()).hexdigest(),
            "language": "en",
            "first_seen": now,
            "last_seen": now,
        }
        for i in range(3)
    )
    return database


def score_payload(review_id: str, db: sqlite_utils.Database, score: float = 0.5) -> dict[str, object]:
    body_hash = db.execute("SELECT body_hash FROM reviews WHERE id = ?", (review_id,)).fetchone()
    return {
        "review_id": review_id,
        "model_id": "m",
        "model_revision": "r1",
        "body_hash": body_hash[0] if body_hash else "x",
        "label": "positive",
        "probabilities": json.dumps({"negative": 0.1, "neutral": 0.1, "positive": 0.8}),
        "score": score,
        "cs_relevance": 0.0,
        "cs_label": None,
        "cs_score": None,
        "cs_sentences": None,
        "other_score": score,
        "language": "en",
        "flags": "[]",
        "scored_at": "2026-01-01T00:00:00Z",
        "queued": f"{review_id}|x",
    }


def test_dead_consumer_messages_are_reclaimed_with_their_delivery_count(client: Any) -> None:
    ids = streams.append_many(client, WORK, [{"n": i} for i in range(4)])
    taken = streams.read_batch(client, WORK, SCORERS, "dies", count=4, block=0.1)
    assert [m.id for m in taken] == ids
    # Not yet idle long enough (an hour: no pause of a loaded machine comes near): the other consumer gets nothing.
    assert streams.read_batch(client, WORK, SCORERS, "lives", count=4, block=0.1, min_idle=3600) == []
    time.sleep(0.3)
    claimed = streams.read_batch(client, WORK, SCORERS, "lives", count=4, block=0.1, min_idle=0.2)
    assert [m.id for m in claimed] == ids
    assert {m.deliveries for m in claimed} == {2}
    assert [m.payload()["n"] for m in claimed] == [0, 1, 2, 3]
    assert streams.ack(client, WORK, SCORERS, ids) == 4
    assert client.xpending(WORK, SCORERS)["pending"] == 0


def test_message_never_acknowledged_is_dead_lettered_with_reason(client: Any) -> None:
    (poison,) = streams.append_many(client, WORK, [{"crashes": "every worker"}])
    streams.read_batch(client, WORK, SCORERS, "w1", count=1, block=0.1)  # delivery 1, worker dies
    assert streams.read_batch(client, WORK, SCORERS, "w2", count=1, min_idle=0, max_deliveries=2)  # 2, dies
    # A third delivery would exceed the limit: it goes to the dead letters, nobody gets it.
    assert (
        streams.read_batch(client, WORK, SCORERS, "w3", count=1, block=0.1, min_idle=0, max_deliveries=2)
        == []
    )
    assert client.xpending(WORK, SCORERS)["pending"] == 0
    assert streams.dead_letter_counts(client) == {(WORK, streams.REASON_TOO_MANY_DELIVERIES): 1}
    ((_, fields),) = client.xrange(streams.DEAD_LETTER_STREAM)
    assert (fields["stream"], fields["id"], fields["reason"], fields["deliveries"]) == (
        WORK,
        poison,
        streams.REASON_TOO_MANY_DELIVERIES,
        "3",
    )
    assert json.loads(json.loads(fields["fields"])["data"]) == {"crashes": "every worker"}


def test_malformed_and_unknown_scores_are_dead_lettered_good_ones_stored(
    client: Any, db: sqlite_utils.Database
) -> None:
    client.xadd(streams.SCORES_STREAM, {"junk": "no data field"})
    client.xadd(streams.SCORES_STREAM, {"v": "1", "data": "{not json"})
    bad_type = score_payload("r0", db)
    bad_type["score"] = "high"
    streams.append(client, streams.SCORES_STREAM, bad_type)
    streams.append(client, streams.SCORES_STREAM, score_payload("r9-deleted", db))
    streams.append(client, streams.SCORES_STREAM, score_payload("r1", db, 0.25))
    summary = ingest_scores(client, db, consumer="writer")
    assert summary.stored == 1
    assert summary.dead_lettered == {REASON_BAD_SCORE: 3, REASON_UNKNOWN_REVIEW: 1}
    assert [tuple(r) for r in db.execute("SELECT review_id, score FROM review_sentiment")] == [("r1", 0.25)]
    counts = streams.dead_letter_counts(client)
    assert counts == {
        (streams.SCORES_STREAM, REASON_BAD_SCORE): 3,
        (streams.SCORES_STREAM, REASON_UNKNOWN_REVIEW): 1,
    }
    assert client.xpending(streams.SCORES_STREAM, streams.WRITER_GROUP)["pending"] == 0
    reasons = [f["detail"] for _, f in client.xrange(streams.DEAD_LETTER_STREAM)]
    assert any("format version" in r for r in reasons) and any("not JSON" in r for r in reasons)
    assert any("'score' is str" in r for r in reasons) and any("r9-deleted" in r for r in reasons)


def test_same_score_twice_changes_nothing(client: Any, db: sqlite_utils.Database) -> None:
    streams.append(client, streams.SCORES_STREAM, score_payload("r0", db, 0.5))
    assert ingest_scores(client, db, consumer="writer").stored == 1
    before = [tuple(r) for r in db.execute("SELECT * FROM review_sentiment")]
    # The same review scored again (a duplicate delivery): the row stays as it was.
    streams.append(client, streams.SCORES_STREAM, score_payload("r0", db, 0.9))
    streams.append(client, streams.SCORES_STREAM, score_payload("r0", db, 0.5))
    second = ingest_scores(client, db, consumer="writer")
    assert (second.stored, second.unchanged) == (0, 2)
    assert [tuple(r) for r in db.execute("SELECT * FROM review_sentiment")] == before


def test_one_result_per_work_message_when_a_slow_worker_is_overtaken(client: Any) -> None:
    ids = streams.append_many(client, WORK, [{"n": 1}, {"n": 2}])
    slow = streams.read_batch(client, WORK, SCORERS, "slow", count=2, block=0.1)
    fast = streams.read_batch(client, WORK, SCORERS, "fast", count=2, block=0.1, min_idle=0)
    assert [m.id for m in fast] == ids
    # The slow worker's keep-alive no longer holds them: touching never takes work back.
    assert streams.touch(client, WORK, SCORERS, "slow", ids) == 0
    assert streams.touch(client, WORK, SCORERS, "fast", ids) == 2
    owners = {r["message_id"]: r["consumer"] for r in client.xpending_range(WORK, SCORERS, "-", "+", 10)}
    assert owners == dict.fromkeys(ids, "fast")
    assert (
        streams.append_and_ack(
            client, WORK, SCORERS, "fast", streams.SCORES_STREAM, [(m.id, {"r": 1}) for m in fast]
        )
        == 2
    )
    # The slow worker finishes later: it no longer owns the work, so nothing is appended twice.
    assert (
        streams.append_and_ack(
            client, WORK, SCORERS, "slow", streams.SCORES_STREAM, [(m.id, {"r": 2}) for m in slow]
        )
        == 0
    )
    assert [streams.decode(f) for _, f in client.xrange(streams.SCORES_STREAM)] == [{"r": 1}, {"r": 1}]
    assert client.xpending(WORK, SCORERS)["pending"] == 0


def test_reader_waiting_on_redis_survives_a_restart(redis_server: RedisServer, client: Any) -> None:
    got: list[streams.Message] = []
    reader = streams.connect(redis_server.url, wait=True, socket_timeout=5)

    def wait_for_work() -> None:
        deadline = time.monotonic() + 600
        while not got and time.monotonic() < deadline:
            got.extend(streams.read_batch(reader, WORK, SCORERS, "waiter", count=1, block=0.5))

    thread = threading.Thread(target=wait_for_work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not blocked_in_xreadgroup(client):  # the reader is waiting on Redis now
        assert thread.is_alive() and time.monotonic() < deadline, "the reader never blocked in XREADGROUP"
        time.sleep(0.01)
    redis_server.restart(kill=True, down_for=2.0)  # killed mid-wait, down for two seconds
    streams.append(client, WORK, {"after": "restart"})
    thread.join(timeout=600)
    assert [m.payload() for m in got] == [{"after": "restart"}]

    # Redis back without its data (no append-only file): the group is recreated, not an error.
    client.flushall()
    streams.append(client, WORK, {"after": "data loss"})
    again = streams.read_batch(reader, WORK, SCORERS, "waiter", count=5, block=0.5)
    assert [m.payload() for m in again] == [{"after": "data loss"}]  # the new group reads from the start


def blocked_in_xreadgroup(client: Any) -> bool:
    """Whether a client connection is blocked (flag b) in XREADGROUP right now (CLIENT LIST)."""
    return any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in client.client_list())


def test_status_shows_depths_pending_dead_letters_and_workers(redis_server: RedisServer, client: Any) -> None:
    streams.append_many(client, WORK, [{"n": i} for i in range(5)])
    streams.read_batch(client, WORK, SCORERS, "score@a:1", count=2, block=0.1)
    client.xadd(WORK, {"bad": "1"})
    beat = streams.Heartbeat(client, "score@a:1", "score", extra={"model": "m@r1"})
    beat.start()
    beat.beat(processed=7, failed=1)
    status = collect(client)
    work = next(s for s in status.streams if s.stream == WORK)
    assert (work.length, work.pending, work.lag, work.pending_by_consumer) == (6, 2, 4, {"score@a:1": 2})
    (worker,) = status.workers
    assert (worker.name, worker.kind, worker.processed, worker.failed, worker.extra) == (
        "score@a:1",
        "score",
        7,
        1,
        {"model": "m@r1"},
    )
    assert worker.heartbeat_age < 5 and not worker.silent
    text = render(status)
    assert "score@a:1" in text and "pending      2" in text
    assert "crawl round: none open" in text and status.crawl_round == {"sources": 0, "run_id": None}

    msgs = streams.read_batch(client, WORK, SCORERS, "score@a:1", count=10, block=0.1)
    bad = next(m for m in msgs if "bad" in m.fields)
    streams.dead_letter(client, SCORERS, bad, streams.REASON_MALFORMED, "no data field")
    result = CliRunner().invoke(cli, ["workers", "status", "--redis", redis_server.url, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dead_letters"] == {WORK: {streams.REASON_MALFORMED: 1}}
    assert data["workers"][0]["processed"] == 7
    assert set(data["frontier"]) >= {"queued", "leased", "start"}


def test_second_writer_refuses_and_unreachable_redis_is_one_line(
    tmp_path: Path, redis_server: RedisServer, db: sqlite_utils.Database
) -> None:
    path = tmp_path / "reputation.db"
    runner = CliRunner()
    with writer_lock(path, purpose="reputation ingest"):
        result = runner.invoke(cli, ["--db", str(path), "ingest", "--redis", redis_server.url, "--once"])
    assert result.exit_code == 75
    assert "another run holds the lock" in result.output and "reputation ingest" in result.output

    result = runner.invoke(
        cli, ["--db", str(path), "ingest", "--redis", redis_server.url, "--once", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["items"] == 0

    closed = RedisServer(tmp_path / "never-started").port
    result = runner.invoke(cli, ["workers", "status", "--redis", f"redis://127.0.0.1:{closed}/0"])
    assert result.exit_code == 69
    assert result.output.count("\n") == 1 and "unreachable" in result.output


def test_drain_moves_scores_and_leaves_nothing_pending(client: Any, db: sqlite_utils.Database) -> None:
    for rid in ("r0", "r1", "r2"):
        streams.append(client, streams.SCORES_STREAM, score_payload(rid, db))
    summary = drain(client, db, batch=2)
    assert (summary.scores.stored, summary.items) == (3, 0)
    assert db.execute("SELECT COUNT(*) FROM review_sentiment").fetchone()[0] == 3
    assert client.xpending(streams.SCORES_STREAM, streams.WRITER_GROUP)["pending"] == 0
    assert client.xlen(streams.SCORES_STREAM) == 0  # stored and acknowledged: trimmed
    # The run log has the writer's score stage, as `reputation score` leaves one.
    run = db.execute("SELECT stage, status, items_new, items_unchanged, detail FROM crawl_runs").fetchall()
    assert [tuple(r[:4]) for r in run] == [("score", "ok", 3, 0)] and json.loads(run[0][4])["mode"] == "redis"
    assert drain(client, db).scores.handled == 0
    assert db.execute("SELECT COUNT(*) FROM crawl_runs").fetchone()[0] == 1  # nothing moved: no row


def test_trim_removes_acknowledged_messages_never_pending_or_unread_ones(client: Any) -> None:
    """A consumer killed mid-batch loses nothing to trimming: its pending messages stay until re-claimed."""
    ids = streams.append_many(client, WORK, [{"n": i} for i in range(6)])
    done = streams.read_batch(client, WORK, SCORERS, "lives", count=2, block=0.1)
    streams.ack(client, WORK, SCORERS, [m.id for m in done])
    held = streams.read_batch(client, WORK, SCORERS, "killed", count=2, block=0.1)  # never acknowledged
    assert streams.trim_done(client, WORK) == 2
    assert [mid for mid, _ in client.xrange(WORK)] == ids[2:]  # held and unread stay
    assert streams.trim_done(client, WORK) == 0

    taken = streams.read_batch(client, WORK, SCORERS, "lives", count=2, block=0.1, min_idle=0)
    assert [(m.id, m.payload()) for m in taken] == [(m.id, m.payload()) for m in held] == [
        (ids[2], {"n": 2}),
        (ids[3], {"n": 3}),
    ]
    streams.ack(client, WORK, SCORERS, [m.id for m in taken])
    assert streams.trim_done(client, WORK) == 2 and client.xlen(WORK) == 2  # the unread two
    rest = streams.read_batch(client, WORK, SCORERS, "lives", count=5, block=0.1)
    assert [m.payload()["n"] for m in rest] == [4, 5]
    streams.ack(client, WORK, SCORERS, [m.id for m in rest])
    assert streams.trim_done(client, WORK) == 2 and client.xlen(WORK) == 0
    status = next(s for s in collect(client).streams if s.stream == WORK)
    assert (status.length, status.pending, status.lag) == (0, 0, 0)  # Redis still counts what is unread


def test_writer_trims_what_it_stored_and_keeps_what_it_holds(client: Any, db: sqlite_utils.Database) -> None:
    """After ingest the scores stream is empty; a batch a killed writer left pending is stored, not trimmed."""
    for rid in ("r0", "r1", "r2"):
        streams.append(client, streams.SCORES_STREAM, score_payload(rid, db))
    # A writer killed after reading (its messages pending with it), then the next writer.
    held = streams.read_batch(client, streams.SCORES_STREAM, streams.WRITER_GROUP, "killed-writer", count=2)
    assert streams.trim_done(client, streams.SCORES_STREAM) == 0
    summary = drain(client, db, batch=1)
    assert (summary.scores.stored, summary.scores.unchanged) == (3, 0)
    assert {r[0] for r in db.execute("SELECT review_id FROM review_sentiment")} == {"r0", "r1", "r2"}
    assert len(held) == 2 and client.xlen(streams.SCORES_STREAM) == 0
    assert client.xpending(streams.SCORES_STREAM, streams.WRITER_GROUP)["pending"] == 0
