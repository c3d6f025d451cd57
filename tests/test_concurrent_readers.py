"""Analysts read while the job writes: no reader ever sees "database is locked".

Reader processes loop over analyst queries (Python's sqlite3 with a busy timeout, and the
``sqlite3`` shell with ``-cmd '.timeout 5000'`` as the README shows) for as long as real
``reputation`` commands crawl, score and rebuild the roll-ups of the small demo world. WAL
lets readers read the last committed state while one writer writes; the roll-up rebuild runs
in one ordinary (IMMEDIATE) write transaction, which blocks other writers, never readers.
Every query is counted: done, locked (must stay 0), table not there yet (before the first
roll-up), or any other error (must stay none).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from small_world import World, inflate, run_to_end, small_world, stage_argv
from tiny_models import build_classifier

QUERIES = [
    "SELECT COUNT(*) FROM reviews",
    "SELECT brand_id, COUNT(*), AVG(rating) FROM reviews GROUP BY brand_id",
    "SELECT status, COUNT(*) FROM crawl_runs GROUP BY status",
    "SELECT label, COUNT(*), AVG(cs_score) FROM review_sentiment GROUP BY label",
    "SELECT * FROM latest_vendor_reputation",
    "SELECT vendor_id, COUNT(*) FROM vendor_monthly GROUP BY vendor_id",
    "SELECT COUNT(*) FROM reviews_fts WHERE reviews_fts MATCH 'refund'",
]
ROLLUP_COPIES = 100  # ~21,000 reviews: the roll-up's transaction lasts long enough to read beside
READY_S = 300  # how long the readers may take to start on a loaded machine
# A reader that runs until the stop file appears, then prints its counts as JSON; it creates its
# ready file once it has been through the queries once. Python readers reconnect each round, as
# notebooks and scripts do; the sqlite3 reader starts the shell per query.
READER = r"""
import json, sqlite3, subprocess, sys, time
from pathlib import Path
kind, db, stop, queries = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
ready = Path(sys.argv[5])
announced = False
counts = {"queries": 0, "locked": 0, "missing": 0, "errors": [], "seconds": 0.0}
began = time.monotonic()

def record(message):
    if "locked" in message or "busy" in message:
        counts["locked"] += 1
        counts["errors"].append(message)
    elif "no such table" in message:
        counts["missing"] += 1
    else:
        counts["errors"].append(message)

while not stop.exists():
    if kind == "python":
        conn = sqlite3.connect(db, timeout=5)
        for query in queries:
            counts["queries"] += 1
            try:
                conn.execute(query).fetchall()
            except sqlite3.Error as exc:
                record(str(exc))
        conn.close()
        time.sleep(0.002)  # a tight loop, yet one that leaves the writer some CPU
    else:
        for query in queries:
            counts["queries"] += 1
            done = subprocess.run(["sqlite3", "-cmd", ".timeout 5000", db, query],
                                  capture_output=True, text=True, timeout=60)
            if done.returncode != 0 or done.stderr.strip():
                record(done.stderr.strip() or f"exit {done.returncode}")
    if not announced:
        ready.touch()
        announced = True
counts["seconds"] = round(time.monotonic() - began, 1)
print(json.dumps(counts))
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("reader-world")
    model = build_classifier(workdir / "tiny-bert", layers=1, model_id="test/tiny-bert")
    with small_world(workdir, model) as built:
        yield built


def read_while(world: World, db: Path, stages: list[str], workdir: Path) -> dict[str, dict[str, Any]]:
    """Run the stages one after the other while readers of each kind loop; the readers' counts."""
    script = workdir / "reader.py"
    script.write_text(READER, encoding="utf-8")
    stop = workdir / "stop"
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 shell is missing; `make sqlite3-cli` installs Debian's package")
    kinds = ["python", "python", "sqlite3"]
    ready = [workdir / f"ready-{i}" for i in range(len(kinds))]
    readers = [
        subprocess.Popen([sys.executable, str(script), kind, str(db), str(stop), json.dumps(QUERIES), str(flag)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for kind, flag in zip(kinds, ready, strict=True)
    ]
    try:
        # Every reader is reading (it has been through the queries once) before the first write.
        deadline = time.monotonic() + READY_S
        while not all(flag.exists() for flag in ready):
            assert all(r.poll() is None for r in readers), "a reader stopped before the writes began"
            assert time.monotonic() < deadline, f"the readers did not start reading within {READY_S} s"
            time.sleep(0.05)
        for stage in stages:
            if stage == "inflate":  # one long write transaction of our own, then bigger roll-ups
                inflate(db, ROLLUP_COPIES)
            else:
                run_to_end(stage_argv(world, db, stage))
    finally:
        stop.touch()
    counts: dict[str, dict[str, Any]] = {}
    for i, (kind, reader) in enumerate(zip(kinds, readers, strict=True)):
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err[-2000:]
        counts[f"{kind}-{i}"] = json.loads(out)
    return counts


def check(counts: dict[str, dict[str, Any]], stages: list[str]) -> None:
    for name, seen in counts.items():
        assert seen["locked"] == 0, f"{name} was locked out {seen['locked']} times: {seen['errors'][:3]}"
        assert seen["errors"] == [], f"{name}: {seen['errors'][:3]}"
        assert seen["queries"] >= 2 * len(QUERIES), f"{name} hardly read: {seen}"
    total = sum(c["queries"] for c in counts.values())
    missing = sum(c["missing"] for c in counts.values())
    locked = sum(c["locked"] for c in counts.values())
    per_reader = ", ".join(f"{name} {seen['queries']}" for name, seen in counts.items())
    print(f"readers during {'+'.join(stages)}: {total} queries ({per_reader}; {missing} before the roll-up "
          f"tables existed), {locked} locked")


def test_readers_are_never_locked_out_by_a_crawl(world: World, tmp_path: Path) -> None:
    """A crawl and a re-crawl (new rows, then updates of every row) under a loop of readers."""
    db = world.fresh_db(tmp_path / "readers.db")
    stages = ["crawl", "crawl"]
    check(read_while(world, db, stages, tmp_path), stages)


@pytest.mark.slow
def test_readers_are_never_locked_out_by_crawl_score_and_rollup(world: World, tmp_path: Path) -> None:
    """The whole job, then roll-ups of ~21,000 reviews rebuilding the tables readers are querying."""
    db = world.fresh_db(tmp_path / "readers.db")
    stages = ["crawl", "score", "rollup", "inflate", "rollup", "rollup"]
    check(read_while(world, db, stages, tmp_path), stages)
