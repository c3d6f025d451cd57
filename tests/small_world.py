"""A small demo world on loopback and the real CLI run against it in separate processes.

Shared by the kill-and-resume and the concurrent-reader tests: a few hundred reviews on ~40
pages (the demo world with fewer reviews per brand, as bench.crawling scales it), so one
crawl, score or roll-up takes seconds. Commands run
as real processes in their own process group, so a test can SIGKILL the group or the parent
alone, as a scheduler's timeout or the OOM killer would.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.identity import author_key
from demo_world import serve_directory, write_demo_registry
from demo_world.generator import generate_scaled_site
from reputation.registry.loader import load_registry
from reputation.rollups.views import PRIMARY_KEYS
from storage.database import connect
from storage.runlog import pid_alive

ROOT = Path(__file__).resolve().parents[1]
REVIEWS_PER_BRAND = 12
PAGE_SIZE = 6
# The demo server is ours on loopback: no politeness delays (as in reputation.demo), short timeouts.
FAST = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "8",
    "DOWNLOAD_TIMEOUT": "10",
    "LOG_LEVEL": "INFO",
}
# Columns that depend on when a stage ran, not on what it computed.
TIME_COLUMNS = {"first_seen", "last_seen", "first_crawl_run_id", "last_crawl_run_id", "scored_at"}
ROLLUP_TABLES = ("brand_reputation", "vendor_reputation", "vendor_monthly", "vendor_switches",
                 "rollup_meta", "review_duplicates", "attribution_periods")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


@dataclass
class World:
    site: Path
    base_url: str
    reviews: int
    template: Path  # a database holding the registry only
    model: Path  # sentiment model directory for `score` and `run`

    def fresh_db(self, target: Path, source: Path | None = None) -> Path:
        """A copy of ``source`` (default: the registry-only template) and its author key at ``target``."""
        return copy_db(source or self.template, target)


@contextmanager
def small_world(workdir: Path, model: Path) -> Iterator[World]:
    """Generate the site, serve it on 127.0.0.1 and write a registry-only template database."""
    site, manifest = generate_scaled_site(
        workdir, reviews_min=REVIEWS_PER_BRAND, reviews_max=REVIEWS_PER_BRAND, page_size=PAGE_SIZE
    )
    with serve_directory(site) as base_url:
        template = workdir / "template.db"
        db = connect(template)
        load_registry(db, write_demo_registry(manifest, base_url, workdir / "vendors.yaml"))
        author_key(db)  # one key file, copied with every database: the same authors hash alike in all
        checkpoint(db.conn)
        db.conn.close()
        yield World(site, base_url, manifest.total_reviews, template, model)


def checkpoint(conn: sqlite3.Connection) -> None:
    """Fold the WAL into the file, so a plain copy of the file is the whole database."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def copy_db(source: Path, target: Path) -> Path:
    """A consistent copy of a WAL database (SQLite's backup API) and its author key file."""
    for suffix in ("", "-wal", "-shm", ".lock", ".key"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copy(str(source) + ".key", str(target) + ".key")
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


def stage_argv(world: World, db: Path, stage: str) -> list[str]:
    """The command line of one stage: the real CLI, or for `run` its library call with fast crawl
    settings (`reputation run` crawls with the polite defaults, seconds per page)."""
    cli = [sys.executable, "-m", "reputation.cli", "--db", str(db)]
    if stage == "crawl":
        return [*cli, "crawl", *(arg for k, v in FAST.items() for arg in ("-s", f"{k}={v}"))]
    if stage == "score":
        return [*cli, "score", "--model", str(world.model), "--chunk-size", "16", "--batch-size", "16",
                "--no-progress"]
    if stage == "rollup":
        return [*cli, "rollup"]
    if stage == "run":
        code = ("import sys; from reputation.scheduler import run_scheduled; "
                f"r = run_scheduled({str(db)!r}, model={str(world.model)!r}, crawl_settings={FAST!r}); "
                "print([(s.name, s.status, s.error) for s in r.stages]); sys.exit(r.exit_code)")
        return [sys.executable, "-c", code]
    raise ValueError(stage)


def start(argv: Sequence[str]) -> subprocess.Popen[str]:
    """A command in its own session (process group), output kept for the failure message."""
    return subprocess.Popen(list(argv), cwd=ROOT, env=ENV, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def run_to_end(argv: Sequence[str], timeout: float = 900) -> tuple[float, str]:
    """Run a command to completion; (seconds, output). Fails the test on a non-zero exit."""
    began = time.monotonic()
    proc = start(argv)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}:\n{out[-3000:]}"
    return time.monotonic() - began, out


def children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children(child)
    return out


def wait_gone(pids: Sequence[int], timeout: float = 60) -> list[int]:
    """Wait until none of ``pids`` is alive; return those still alive at the deadline (a bound for
    a loaded machine: the wait ends as soon as they are gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if pid_alive(p)]


def rows(db: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def integrity(db: Path) -> str:
    return str(rows(db, "PRAGMA integrity_check")[0]["integrity_check"])


def _table(db: Path, table: str, key: str) -> list[dict[str, Any]]:
    found = rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
    if not found:
        return []
    return [{k: v for k, v in r.items() if k not in TIME_COLUMNS}
            for r in rows(db, f"SELECT * FROM {table} ORDER BY {key}")]


def snapshot(db: Path) -> dict[str, list[dict[str, Any]]]:
    """What a stage computed: reviews, scores and roll-up rows, without run times."""
    snap = {
        "reviews": _table(db, "reviews", "id"),
        "review_sentiment": _table(db, "review_sentiment", "review_id, model_id, model_revision"),
    }
    for table in ROLLUP_TABLES:
        snap[table] = _table(db, table, ", ".join(PRIMARY_KEYS[table]))
    snap["rollup_meta"] = [r for r in snap["rollup_meta"] if r["key"] != "built_at"]
    return snap


def same_value(a: Any, b: Any, tolerance: float = 1e-6) -> bool:
    """Equal, floats within ``tolerance`` (a resumed score batches reviews differently, and
    float sums over differently padded batches may differ in the last bits)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(a, str) and isinstance(b, str) and a != b and a[:1] in "[{" and b[:1] in "[{":
        try:  # JSON columns (probabilities): compare the numbers inside, not their text
            return same_value(json.loads(a), json.loads(b), tolerance)
        except ValueError:
            return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y, tolerance) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def differences(got: dict[str, list[dict[str, Any]]], want: dict[str, list[dict[str, Any]]],
                tables: Sequence[str]) -> list[str]:
    """Human-readable differences between two snapshots, table by table (empty when equal)."""
    found: list[str] = []
    for table in tables:
        g, w = got[table], want[table]
        if len(g) != len(w):
            found.append(f"{table}: {len(g)} rows, expected {len(w)}")
            continue
        for row_g, row_w in zip(g, w, strict=True):
            bad = [k for k in row_w if not same_value(row_g.get(k), row_w[k])]
            if bad:
                found.append(f"{table}: {[(k, row_g.get(k), row_w[k]) for k in bad][:3]}")
                break
    return found


def inflate(db: Path, copies: int) -> int:
    """Add ``copies`` copies of every scored review (new ids, authors and text hashes), so a
    roll-up has enough to do to be killed, or read beside, inside its transaction; the review count."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for table, changed in (
            ("reviews", {"id": "id || :tag", "author_hash": "author_hash || :tag", "body_hash": "body_hash || :tag",
                         "content_key": "content_key || :tag"}),
            ("review_sentiment", {"review_id": "review_id || :tag", "body_hash": "body_hash || :tag"}),
        ):
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            values = ", ".join(changed.get(c, c) for c in columns)
            original = "id" if table == "reviews" else "review_id"
            for k in range(1, copies + 1):
                conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM {table} "
                             f"WHERE {original} NOT LIKE '%#copy%'", {"tag": f"#copy{k}"})
        conn.execute("COMMIT")
        checkpoint(conn)
        return int(conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0])
    finally:
        conn.close()
