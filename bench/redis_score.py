"""Scoring over Redis: reviews/s with 1 and 2 `reputation worker score` processes on this machine.

Same reviews (the demo composer's texts), same model (the default when present), same outputs
(sentiment plus the customer-service part) as the single-machine `reputation score`, which is
the baseline, timed in this process on the same reviews. A distributed run is timed from the
writer's enqueue to the last score committed into SQLite by the writer (reputation.distributed.
ingest.drain), with the workers already started and their model loaded (a worker loads it once
and then runs for days). Redis is Debian's redis-server on 127.0.0.1, started here.

On the 2-core reference machine two workers share the same two cores (and the writer runs
beside them), so the 2-worker figure shows contention, not scaling: a second machine adds its
own cores. The figures per worker are what one CPU worker of this size delivers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from bench.report import Figure
from bench.synth import review_texts
from reputation.distributed import streams
from reputation.distributed.ingest import drain
from reputation.distributed.score_ingest import announced_models
from reputation.scoring.job import score_reviews
from storage.database import connect, utcnow

ROOT = Path(__file__).resolve().parent.parent
N_REVIEWS = 400
N_QUICK = 80
WORKER_COUNTS = (1, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not installed (apt-get install redis-server)")
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            streams.connect(url, wait=False).ping()
            return process, url
        except Exception:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("redis-server did not start")


def _database(path: Path, texts: list[str]) -> sqlite_utils.Database:
    db = connect(path)
    now = utcnow()
    db.table("brands").insert({"id": "b", "name": "Brand"})
    db.table("sources").insert({"id": "s", "brand_id": "b", "url": "http://127.0.0.1/r/"})
    with db.conn:
        db.table("reviews").insert_all(
            {
                "id": f"r{i:06d}",
                "source_id": "s",
                "brand_id": "b",
                "body": text,
                "body_hash": hashlib.sha256(text.encode()).hexdigest(),
                "language": "en",
                "first_seen": now,
                "last_seen": now,
            }
            for i, text in enumerate(texts)
        )
    return db


def _distributed(workdir: Path, url: str, texts: list[str], model_dir: Path, workers: int) -> float:
    """Seconds from enqueue to the last score stored, with ``workers`` worker processes."""
    client = streams.connect(url, wait=False)
    client.flushdb()
    db = _database(workdir / f"workers-{workers}.db", texts)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reputation.cli",
                "worker",
                "score",
                "--redis",
                url,
                "--model",
                str(model_dir),
                "--device",
                "cpu",
                "--batch",
                "32",
                "--name",
                f"bench-{i}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + 300
        while len(client.smembers(streams.WORKERS_SET)) < workers or not announced_models(client):
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError("scoring workers did not start")
            time.sleep(0.2)
        start = time.perf_counter()
        drain(client, db)
        while db.execute("SELECT COUNT(*) FROM review_sentiment").fetchone()[0] < len(texts):
            if time.monotonic() > deadline + 1800:
                raise RuntimeError("scoring over Redis did not finish")
            drain(client, db, enqueue=False)
            time.sleep(0.25)  # the writer polls; it must not take the workers' CPU
        return time.perf_counter() - start
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()


def _writer_rate(workdir: Path, url: str, n: int) -> float:
    """Scores per second the single writer moves from the scores stream into SQLite (no model)."""
    client = streams.connect(url, wait=False)
    client.flushdb()
    texts = [f"review {i}" for i in range(n)]
    db = _database(workdir / "writer.db", texts)
    payloads = [
        {
            "review_id": f"r{i:06d}",
            "model_id": "m",
            "model_revision": "r1",
            "body_hash": hashlib.sha256(text.encode()).hexdigest(),
            "label": "positive",
            "probabilities": '{"negative": 0.1, "neutral": 0.1, "positive": 0.8}',
            "score": 0.7,
            "cs_relevance": 0.5,
            "cs_label": "positive",
            "cs_score": 0.6,
            "cs_sentences": '["s"]',
            "other_score": 0.7,
            "language": "en",
            "flags": "[]",
            "scored_at": utcnow(),
            "queued": "",
        }  # fmt: skip
        for i, text in enumerate(texts)
    ]
    for start in range(0, n, 1000):
        streams.append_many(client, streams.SCORES_STREAM, payloads[start : start + 1000])
    began = time.perf_counter()
    summary = drain(client, db, enqueue=False)
    elapsed = time.perf_counter() - began
    if summary.scores.stored != n:
        raise RuntimeError(f"writer stored {summary.scores.stored} of {n} scores")
    return n / elapsed


def run(
    workdir: Path, *, quick: bool, model_dir: Path, is_default: bool, say: Callable[[str], None] = print
) -> list[Figure]:
    workdir.mkdir(parents=True, exist_ok=True)
    texts = review_texts(N_QUICK if quick else N_REVIEWS)
    n = len(texts)
    cores = len(os.sched_getaffinity(0))
    model = "default model" if is_default else "stand-in model"
    say(f"[redis-score] single-machine baseline on {n} reviews")
    reference = _database(workdir / "single.db", texts)
    start = time.perf_counter()
    score_reviews(reference, model=str(model_dir), progress=False)
    single = n / (time.perf_counter() - start)
    redis, url = _start_redis(workdir)
    figures: list[Figure] = []
    try:
        for workers in WORKER_COUNTS:
            say(f"[redis-score] {workers} scoring worker(s)")
            rate = n / _distributed(workdir, url, texts, model_dir, workers)
            figures.append(
                Figure(
                    "redis-score",
                    f"{workers} scoring worker{'s' if workers > 1 else ''} over Redis, end to end",
                    round(rate, 1),
                    "reviews/s",
                    baseline=round(single, 1),
                    baseline_name="single-machine reputation score",
                    note=f"{n} reviews, {model}, CPU; {workers} worker process(es) and the writer on "
                    f"{cores} shared cores; {rate / workers:.1f} reviews/s per worker",
                )
            )
        writes = 2_000 if quick else 20_000
        say(f"[redis-score] the writer alone, {writes} scores")
        rate = _writer_rate(workdir, url, writes)
        figures.append(
            Figure(
                "redis-score",
                "writer: scores from Redis into SQLite",
                round(rate),
                "scores/s",
                note=f"{writes} scores, batches of 500, one transaction each; not the limit of the scoring path",
            )
        )
    finally:
        redis.terminate()
        redis.wait(timeout=30)
    return figures
