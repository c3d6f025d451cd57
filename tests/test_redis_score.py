"""Scoring across workers on a real redis-server: two worker processes, one killed mid-batch.

The writer (reputation.distributed.ingest.drain) enqueues the reviews the workers' model has not
scored; two `reputation worker score` processes score them; one is killed with SIGKILL while it
holds a batch. Afterwards every review has exactly one row for the model revision, the scores
stream holds exactly one result per review (the killed worker's batch was taken over, not scored
twice), and the values equal the single-machine `reputation score` on the same reviews.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from redis_server import RedisServer
from tiny_models import build_classifier

from reputation.cli import cli
from reputation.distributed import streams
from reputation.distributed.ingest import drain
from reputation.distributed.score_ingest import announced_models, enqueue_unscored
from reputation.distributed.score_worker import REASON_BAD_WORK, run_score_worker
from reputation.scoring.job import score_reviews
from storage.database import connect, utcnow

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "The agent on the phone was rude and hung up on me.",
    "Delivery was quick and the box was intact.",
    "I waited two hours on hold before anyone answered.",
    "The jacket fits well and the colour is nice.",
    "Customer support refunded me within a day, very kind staff.",
    "Price is a bit high for what you get.",
]
COLUMNS = (
    "review_id, model_id, model_revision, body_hash, label, probabilities, score, cs_relevance, "
    "cs_label, cs_score, cs_sentences, other_score, language, flags"
)
FLOATS = (6, 7, 9, 11)  # positions of score, cs_relevance, cs_score, other_score in COLUMNS


def add_reviews(db: sqlite_utils.Database, n: int) -> None:
    now = utcnow()
    db.table("brands").insert({"id": "northwind", "name": "Northwind"})
    db.table("sources").insert({"id": "src1", "brand_id": "northwind", "url": "http://127.0.0.1/r/"})
    rows = []
    for i in range(n):
        body = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 3)) + f" Order {i}."
        rows.append(
            {
                "id": f"r{i:05d}",
                "source_id": "src1",
                "brand_id": "northwind",
                "title": "Awful wait" if i % 4 == 0 else None,
                "body": body,
                "body_hash": hashlib.sha256(body.encode()).hexdigest(),
                "language": "de" if i % 10 == 9 else "en",
                "first_seen": now,
                "last_seen": now,
            }
        )
    with db.conn:
        db.table("reviews").insert_all(rows)


def start_worker(url: str, model_dir: Path, name: str, *extra: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "reputation.cli", "worker", "score", "--redis", url, "--model", str(model_dir),
        "--device", "cpu", "--batch", "8", "--batch-size", "8", "--claim-idle", "2", "--name", name, *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def wait_for_workers(client: Any, started: list[subprocess.Popen[bytes]], count: int) -> None:
    """Wait until `count` workers have registered; a worker that dies first fails with its stderr."""
    deadline = time.monotonic() + 180
    while client.scard(streams.WORKERS_SET) < count:
        assert time.monotonic() < deadline, "workers did not start"
        for process in started:
            assert process.poll() is None, process.communicate()[1].decode()[-3000:]
        time.sleep(0.2)


def kill_while_holding(client: Any, victim: subprocess.Popen[bytes], name: str) -> list[dict[str, Any]]:
    """SIGKILL `victim` at a moment it holds unacknowledged work, and return that work."""
    deadline = time.monotonic() + 180
    while True:
        assert time.monotonic() < deadline, "the worker never took a batch"
        assert victim.poll() is None, victim.communicate()[1].decode()[-3000:]
        victim.send_signal(signal.SIGSTOP)
        held: list[dict[str, Any]] = client.xpending_range(
            streams.SCORE_WORK_STREAM, streams.SCORERS_GROUP, min="-", max="+", count=100, consumername=name
        )
        if held:
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            return held
        group = next(g for g in client.xinfo_groups(streams.SCORE_WORK_STREAM) if g["name"] == streams.SCORERS_GROUP)
        assert group["lag"] != 0, "the worker finished every batch before it could be caught holding one"
        victim.send_signal(signal.SIGCONT)
        time.sleep(0.01)


def rows(db: sqlite_utils.Database) -> list[tuple[object, ...]]:
    return [tuple(r) for r in db.execute(f"SELECT {COLUMNS} FROM review_sentiment ORDER BY review_id")]


def assert_same_scores(got: Sequence[tuple[object, ...]], want: Sequence[tuple[object, ...]]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if i in FLOATS and x is not None and y is not None:
                assert x == pytest.approx(y, abs=1e-5), (a[0], i)
            elif i == 5:  # probabilities JSON: compare numbers, not their last digits
                px, py = json.loads(str(x)), json.loads(str(y))
                assert px.keys() == py.keys() and all(px[k] == pytest.approx(py[k], abs=1e-5) for k in px)
            else:
                assert x == y, (a[0], i, x, y)


def test_worker_in_process_gives_the_single_machine_scores(tmp_path: Path, redis_server: RedisServer) -> None:
    n = 30
    model_dir = build_classifier(tmp_path / "model", model_id="tiny-redis")
    reference = connect(tmp_path / "single.db")
    add_reviews(reference, n)
    score_reviews(reference, model=str(model_dir), batch_size=8, progress=False)
    db = connect(tmp_path / "distributed.db")
    add_reviews(db, n)
    client: Any = streams.connect(redis_server.url, wait=False)
    assert enqueue_unscored(client, db, "tiny-redis", "t1") == n
    assert enqueue_unscored(client, db, "tiny-redis", "t1") == 0  # already on its way
    client.xadd(streams.SCORE_WORK_STREAM, {"v": "1", "data": '{"review_id": 5}'})  # malformed work
    summary = run_score_worker(
        redis_server.url, model=str(model_dir), device="cpu", batch=7, exit_when_idle=True, name="w-1"
    )
    assert (summary.scored, summary.dead_lettered, summary.superseded) == (n, 1, 0)
    assert streams.dead_letter_counts(client) == {(streams.SCORE_WORK_STREAM, REASON_BAD_WORK): 1}
    moved = drain(client, db, enqueue=False)
    assert (moved.scores.stored, moved.scores.unchanged) == (n, 0)
    assert_same_scores(rows(db), rows(reference))
    assert client.scard(streams.SCORE_QUEUED_SET) == 0
    assert enqueue_unscored(client, db, "tiny-redis", "t1") == 0  # all scored now
    assert enqueue_unscored(client, db, "tiny-redis", "t2") == n  # a new revision has everything to do


@pytest.mark.slow
def test_two_workers_one_killed_mid_batch_every_review_scored_once(
    tmp_path: Path, redis_server: RedisServer, workers: list[subprocess.Popen[bytes]]
) -> None:
    n = 120
    model_dir = build_classifier(tmp_path / "model", model_id="tiny-redis")
    reference = connect(tmp_path / "single.db")
    add_reviews(reference, n)
    single = score_reviews(reference, model=str(model_dir), batch_size=8, progress=False)
    assert single.scored == n
    db = connect(tmp_path / "distributed.db")
    add_reviews(db, n)

    client: Any = streams.connect(redis_server.url, wait=False)
    victim = start_worker(redis_server.url, model_dir, "w-killed")
    workers.append(victim)
    wait_for_workers(client, workers, 1)
    assert announced_models(client) == [("tiny-redis", "t1")]
    # Frozen until kill_while_holding lets it run in short steps: on a loaded machine it could
    # otherwise score every batch while the writer enqueues, and never be caught holding one.
    victim.send_signal(signal.SIGSTOP)

    first = drain(client, db)
    assert first.enqueued == {"tiny-redis@t1": n}
    # A second enqueue while the work is in flight sends nothing twice.
    second = drain(client, db)
    assert second.enqueued == {}
    results = [first.scores, second.scores]  # every score message the writer handled

    # Kill the worker while it holds a batch (read, not acknowledged). It is frozen with SIGSTOP
    # before each look, so the batch seen pending is still pending when SIGKILL lands.
    held = kill_while_holding(client, victim, "w-killed")
    orphaned = {str(m["message_id"]) for m in held}

    workers.append(start_worker(redis_server.url, model_dir, "w-survivor"))
    wait_for_workers(client, workers[1:], 2)

    # The writer keeps moving scores until every review has its row.
    deadline = time.monotonic() + 240
    while db.execute("SELECT COUNT(*) FROM review_sentiment").fetchone()[0] < n:
        assert time.monotonic() < deadline, "scoring did not finish"
        assert workers[1].poll() is None, workers[1].communicate()[1].decode()[-3000:]
        results.append(drain(client, db, enqueue=False).scores)  # trims what it stored, as each drain does
        time.sleep(0.2)
    results.append(drain(client, db).scores)

    # Every review scored exactly once for this model revision, none lost...
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT review_id) FROM review_sentiment").fetchone() == (n, n)
    # One result per review (the orphaned batch was not doubled: a second result would be "unchanged")...
    assert sum(r.stored for r in results) == n and sum(r.unchanged for r in results) == 0
    # ...and Redis keeps none of it: work and results were trimmed once acknowledged, the orphaned
    # batch only after the survivor finished it (it was pending through every trim before).
    assert client.xlen(streams.SCORE_WORK_STREAM) == 0 and client.xlen(streams.SCORES_STREAM) == 0
    assert client.xpending(streams.SCORE_WORK_STREAM, streams.SCORERS_GROUP)["pending"] == 0
    assert client.xpending(streams.SCORES_STREAM, streams.WRITER_GROUP)["pending"] == 0
    assert client.scard(streams.SCORE_QUEUED_SET) == 0
    assert streams.dead_letter_counts(client) == {}
    # ...the killed worker's batch (never acknowledged by it) was taken over and finished by the survivor...
    assert orphaned
    # ...and the values are those of the single-machine `reputation score`.
    assert_same_scores(rows(db), rows(reference))

    # Nothing left to do: a further ingest changes nothing and sends nothing.
    result = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "distributed.db"), "ingest", "--redis", redis_server.url]
    )
    assert result.exit_code == 0, result.output
    assert "scores stored 0, unchanged 0" in result.output and "sent to scoring" not in result.output

    workers[1].send_signal(signal.SIGTERM)
    out, err = workers[1].communicate(timeout=60)
    assert workers[1].returncode == 0, err.decode()[-3000:]
    assert "w-survivor: model tiny-redis @ t1: scored" in out.decode()
    status = {w["name"]: w for w in _status_workers(redis_server.url)}
    assert status["w-survivor"]["state"] == "stopped"
    assert status["w-killed"]["state"] != "stopped"  # killed: never said goodbye
    assert int(str(status["w-survivor"]["processed"])) >= len(orphaned)


def _status_workers(url: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["workers", "status", "--redis", url, "--json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output)["workers"])


@pytest.mark.slow
def test_default_model_over_redis_matches_single_machine(tmp_path: Path, redis_server: RedisServer) -> None:
    """The real default model: the worker's rows equal `reputation score`'s (torch on CPU both)."""
    n = 24
    reference = connect(tmp_path / "single.db")
    add_reviews(reference, n)
    single = score_reviews(reference, progress=False, device="cpu")
    db = connect(tmp_path / "distributed.db")
    add_reviews(db, n)
    client: Any = streams.connect(redis_server.url, wait=False)
    assert enqueue_unscored(client, db, single.model_id, single.model_revision) == n
    summary = run_score_worker(
        redis_server.url, device="cpu", batch=10, exit_when_idle=True, name="w-default"
    )
    assert (summary.model_id, summary.model_revision, summary.scored) == (
        single.model_id,
        single.model_revision,
        n,
    )
    assert drain(client, db, enqueue=False).scores.stored == n
    assert_same_scores(rows(db), rows(reference))
