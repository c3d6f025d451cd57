"""SIGKILL at random points, then resume: the database ends as an uninterrupted run leaves it.

Every stage (crawl, score, roll-up, and the scheduled run of all three) is started as a real
process against the small demo world on loopback and killed after a seeded random delay,
alternately as a whole process group (a scheduler's timeout, a terminal's Ctrl-\\) and as the
parent alone (the OOM killer, ``kill -9 PID``). After each kill no process of the stage is
left, the writer lock is free and the file passes ``PRAGMA integrity_check``; after the resume
the reviews, scores and roll-up rows equal those of an uninterrupted run and no run-log row is
left ``running``. Loops are bounded in kills and in seconds.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from small_world import (
    FAST,
    World,
    copy_db,
    descendants,
    differences,
    inflate,
    integrity,
    rows,
    run_to_end,
    small_world,
    snapshot,
    stage_argv,
    start,
    wait_gone,
)
from tiny_models import build_classifier

from storage.errors import LockedError
from storage.lock import lock_file, lock_path_for
from storage.runlog import pid_alive

SEED = 20261129
KILLS = {"crawl": 4, "score": 4, "rollup": 8, "run": 4}
ROLLUP_COPIES = 100  # the roll-up gets ~21,000 reviews, so kills also land inside its transaction
TIME_BOUND_S = 240.0  # per stage: the loop stops killing after this, whatever the count
TABLES = {
    "crawl": ("reviews",),
    "score": ("reviews", "review_sentiment"),
    "rollup": ("reviews", "review_sentiment", "brand_reputation", "vendor_reputation", "vendor_monthly",
               "vendor_switches", "rollup_meta", "review_duplicates", "attribution_periods"),
}
TABLES["run"] = TABLES["rollup"]


@dataclass
class Reference:
    """The uninterrupted run: the database after each stage and how long each stage took."""

    after: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("kill-world")
    model = build_classifier(workdir / "tiny-bert", layers=1, model_id="test/tiny-bert")
    with small_world(workdir, model) as built:
        yield built


@pytest.fixture(scope="module")
def reference(world: World, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    workdir = tmp_path_factory.mktemp("reference")
    ref = Reference()
    db = world.fresh_db(workdir / "reference.db")
    for stage in ("crawl", "score", "rollup"):
        ref.seconds[stage], _ = run_to_end(stage_argv(world, db, stage))
        ref.after[stage] = copy_db(db, workdir / f"after-{stage}.db")
    ref.seconds["run"] = sum(ref.seconds.values())
    return ref


def lock_is_free(db: Path, timeout: float = 60) -> bool:
    """Whether another writer could take the database's lock now (waiting up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with lock_file(lock_path_for(db)):
                return True
        except LockedError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def kill(proc: subprocess.Popen[str], how: str) -> None:
    if how == "group":
        os.killpg(proc.pid, signal.SIGKILL)  # the child was started in its own session: pgid == pid
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)


def running_rows(db: Path) -> list[dict[str, object]]:
    return rows(db, "SELECT id, stage, pid FROM crawl_runs WHERE status = 'running'")


def input_for(stage: str, world: World, reference: Reference, db: Path) -> Path:
    """What each stage starts from: the registry for crawl and run, the reference's scored
    reviews copied ROLLUP_COPIES times for the roll-up, and its crawl for the score."""
    if stage == "rollup":
        if "rollup-input" not in reference.after:
            reference.after["rollup-input"] = world.fresh_db(db.with_name("rollup-input.db"), reference.after["score"])
            inflate(reference.after["rollup-input"], ROLLUP_COPIES)
        return world.fresh_db(db, reference.after["rollup-input"])
    earlier = {"crawl": None, "run": None, "score": "crawl"}[stage]
    return world.fresh_db(db, reference.after[earlier] if earlier else None)


def check_resumed(db: Path, stage: str, expected: Path, kills: list[tuple[str, float]]) -> None:
    """A database resumed after kills: whole, no run left 'running', the same rows as ``expected``."""
    assert integrity(db) == "ok"
    assert running_rows(db) == []
    problems = differences(snapshot(db), snapshot(expected), TABLES[stage])
    assert problems == [], f"after kills {kills} and a resume, {stage} differs: {problems}"


@pytest.mark.parametrize(
    "stage",
    ["crawl", "rollup", pytest.param("score", marks=pytest.mark.slow), pytest.param("run", marks=pytest.mark.slow)],
)
def test_killed_at_random_points_and_resumed_equals_an_uninterrupted_run(
    stage: str, world: World, reference: Reference, tmp_path: Path
) -> None:
    rng = random.Random(f"{SEED}:{stage}")
    db = tmp_path / f"{stage}.db"
    argv = stage_argv(world, db, stage)
    if stage in ("run", "rollup"):  # an uninterrupted run of its own: the reference, and how long it takes
        expected = input_for(stage, world, reference, tmp_path / "uninterrupted.db")
        typical, _ = run_to_end(stage_argv(world, expected, stage))
    else:  # the uninterrupted reference run
        expected, typical = reference.after["rollup"], reference.seconds[stage]
    input_for(stage, world, reference, db)
    kills: list[tuple[str, float]] = []
    round_kills: list[tuple[str, float]] = []
    rounds = 0
    deadline = time.monotonic() + TIME_BOUND_S
    for _attempt in range(3 * KILLS[stage]):  # attempts that finish before their kill do not count as kills
        if len(kills) >= KILLS[stage] or time.monotonic() > deadline:
            break
        how = ("group", "parent")[len(kills) % 2]
        delay = rng.uniform(0.05, 0.9) * typical
        proc = start(argv)
        try:
            out, _ = proc.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            family = descendants(proc.pid)
            kill(proc, how)
        else:  # it finished first: that attempt was the resume of this round's kills
            assert proc.returncode == 0, out[-3000:]
            check_resumed(db, stage, expected, round_kills)
            rounds += 1 if round_kills else 0
            round_kills = []
            input_for(stage, world, reference, db)  # a new round from the stage's input
            continue
        assert wait_gone(family) == [], f"{how} kill after {delay:.2f}s left processes of {stage} running"
        assert lock_is_free(db), f"the lock stayed held after a {how} kill of {stage}"
        assert integrity(db) == "ok"
        kills.append((how, round(delay, 2)))
        round_kills.append(kills[-1])
    assert kills, f"every {stage} attempt finished before its kill; no kill was tested"

    if round_kills:
        run_to_end(argv)  # the resume
        check_resumed(db, stage, expected, round_kills)
        rounds += 1
    print(f"{stage}: survived {len(kills)} kills {kills} in {rounds} resumed rounds")


@pytest.mark.parametrize("how", ["parent", "group"])
def test_a_killed_crawl_takes_its_scrapy_child_down_and_keeps_the_lock_until_then(
    how: str, world: World, reference: Reference, tmp_path: Path
) -> None:
    """The Scrapy child dies with its parent (PR_SET_PDEATHSIG) and holds the writer lock until it
    has (it inherits the lock's descriptor): no second writer ever runs beside an orphan crawl."""
    db = world.fresh_db(tmp_path / "crawl.db")
    slow = {**FAST, "CONCURRENT_REQUESTS_PER_DOMAIN": "1", "DOWNLOAD_DELAY": "0.5"}  # ~25 s if left alone
    cli = stage_argv(world, db, "crawl")[:5]  # python -m reputation.cli --db DB
    parent = start([*cli, "crawl", *(a for k, v in slow.items() for a in ("-s", f"{k}={v}"))])
    deadline = time.monotonic() + 300  # Python, then Scrapy, starting on a loaded machine
    crawling: list[dict[str, Any]] = []
    while not crawling:
        assert parent.poll() is None and time.monotonic() < deadline, "the crawl never started"
        # The crawl is frozen (SIGSTOP) while we look and stays frozen once its child runs: it cannot
        # finish, however long the checks below take, and the kill lands on a crawl mid-way.
        os.killpg(parent.pid, signal.SIGSTOP)
        try:
            crawling = rows(db, "SELECT pid FROM crawl_runs WHERE status = 'running'")
        except sqlite3.OperationalError:  # frozen in the one moment a WAL reader must wait: look again
            crawling = []
        if not crawling:
            os.killpg(parent.pid, signal.SIGCONT)
            time.sleep(0.1)
    child = int(crawling[0]["pid"])
    try:
        assert child in descendants(parent.pid)
        os.kill(child, signal.SIGSTOP)  # frozen too, should it have a process group of its own

        second = subprocess.run([*cli, "rollup"], capture_output=True, text=True, timeout=300)
        assert second.returncode == 75, second.stderr
        assert second.stderr.count("\n") == 1 and "another run holds the lock" in second.stderr
        assert "reputation crawl" in second.stderr  # the holder, as the lock file names it

        kill(parent, how)  # SIGKILL ends stopped processes too
        # Frozen, the child can only go by dying with its parent: any bound here is about load, not luck.
        assert wait_gone([child]) == [], f"the crawl child outlived its parent ({how} kill)"
        assert lock_is_free(db)
    finally:  # nothing frozen outlives a failed check
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait(timeout=120)
        if pid_alive(child):
            os.kill(child, signal.SIGKILL)

    run_to_end(stage_argv(world, db, "crawl"))  # the next crawl starts, sweeps up and completes
    statuses = [r["status"] for r in rows(db, "SELECT status FROM crawl_runs ORDER BY id")]
    assert statuses == ["interrupted", "ok"]
    assert integrity(db) == "ok"
    assert differences(snapshot(db), snapshot(reference.after["crawl"]), TABLES["crawl"]) == []
