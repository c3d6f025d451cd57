"""Distributed crawl speed: pages/s with 1, 2 and 3 crawl workers on the Redis frontier.

Each configuration crawls the same generated demo site (served on loopback) from a fresh Redis
(Debian's redis-server, started here) and a fresh copy of the registry: ``reputation crawl
--redis``'s enqueue, N ``reputation worker crawl`` processes (reputation.distributed.crawl_worker)
and the single writer moving items into SQLite (reputation.distributed.items_ingest) in this
process. Time runs from the workers' start to the last page a worker recorded; pages are the
pages-stream entries, reviews those the writer stored new.

On one machine every worker, the writer, Redis and the site server share its cores, so past
the core count more workers cannot help: the figures say how many cores there were. Delays and
AutoThrottle are off (as in bench/crawling.py): this measures what a worker can process, not a
polite crawl of a real site (which the per-host delay bounds, whatever the number of workers).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.crawling import SETTINGS, _template_db, scaled_site
from bench.report import Figure

WORKERS = (1, 2, 3)
ROOT = Path(__file__).resolve().parent.parent
REVIEWS_10M = 10_000_000


def _redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on a free loopback port (no persistence: a benchmark)."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    from reputation.distributed import streams

    streams.connect(url, wait=True).close()
    return proc, url


def _worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    code = ("from reputation.distributed.crawl_worker import run_crawl_worker; "
            f"run_crawl_worker({url!r}, settings={dict(SETTINGS)!r}, idle_exit=2.0)")  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip


def one_run(url: str, template: Path, workdir: Path, workers: int) -> tuple[float, float, int, int]:
    """(seconds from the workers' start, seconds from the first page, pages, reviews stored) of one
    distributed crawl with ``workers`` workers, each to the last page recorded."""
    from reputation.distributed import streams
    from reputation.distributed.enqueue import enqueue_due_at
    from reputation.distributed.items_ingest import drain_items, round_done
    from storage.database import connect

    client = streams.connect(url)
    client.flushdb()
    db_path = workdir / f"redis-crawl-{workers}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    shutil.copy(template, db_path)
    shutil.copy(str(template) + ".key", str(db_path) + ".key")
    enqueue_due_at(str(db_path), url, due_only=True)
    start_ms = time.time() * 1000
    procs = [_worker(url, workdir / f"worker-{workers}-{i}.log") for i in range(workers)]
    db = connect(db_path)
    stored = 0
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            stored += drain_items(client, db)["new"]
            if round_done(client) and all(p.poll() is not None for p in procs):
                stored += drain_items(client, db)["new"]
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{workers} workers did not finish in 900 s")
    finally:
        db.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
    ends: list[Any] = [client.xrange(streams.PAGES_STREAM, count=1), client.xrevrange(streams.PAGES_STREAM, count=1)]
    pages = int(client.xlen(streams.PAGES_STREAM))
    client.close()
    if not pages:
        raise RuntimeError(f"{workers} workers fetched no page")
    first_ms, end_ms = (int(str(entry[0][0]).split("-")[0]) for entry in ends)
    return (end_ms - start_ms) / 1000, max(end_ms - first_ms, 1) / 1000, pages, stored


def run(workdir: Path, *, quick: bool, say: Callable[[str], None]) -> list[Figure]:
    from demo_world import serve_directory

    cores = len(os.sched_getaffinity(0))
    per_brand, page_size = (150, 10) if quick else (600, 10)
    site, manifest = scaled_site(workdir, per_brand, page_size)
    say(f"  demo site: {manifest.total_reviews:,} reviews on {manifest.pages:,} pages; {cores} cores")
    redis_proc, url = _redis(workdir / "redis")
    figures: list[Figure] = []
    rates: dict[int, tuple[float, float, float]] = {}
    loads: dict[int, float] = {}  # other work on the machine skews the figures: say how busy it was
    try:
        with serve_directory(site) as base_url:
            template = _template_db(workdir, manifest, base_url)
            from crawler.identity import author_key
            from storage.database import connect

            db = connect(template)
            author_key(db)  # the key file the copies share
            db.close()
            for n in WORKERS:
                seconds, crawling, pages, stored = one_run(url, template, workdir, n)
                rates[n] = (pages / crawling, stored / crawling, pages / seconds)
                loads[n] = os.getloadavg()[0]
                say(f"  {n} worker(s): {pages} pages, {stored} reviews; {seconds:.1f} s from start, "
                    f"{crawling:.1f} s first to last page")
    finally:
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
    one = rates[1][0]
    for n, (pages_s, reviews_s, with_start) in rates.items():
        note = (f"measured, first to last page ({with_start:.1f} pages/s counting the workers' start-up); "
                f"{cores} cores shared by {n} worker(s), the writer, Redis and the site server "
                f"(load average {loads[n]:.1f} after the run); "
                f"{reviews_s:.0f} reviews/s stored; x{pages_s / one:.2f} the rate of 1 worker")  # fmt: skip
        figures.append(Figure("redis-crawl", f"crawl pages/s, {n} worker(s)", round(pages_s, 1), "pages/s",
                              note=note, samples=[pages_s]))  # fmt: skip
    per_worker = rates[1][1]
    for n in (1, 3, 10):
        hours = REVIEWS_10M / (per_worker * n) / 3600
        figures.append(Figure("redis-crawl", f"10M reviews with {n} crawl worker(s)", round(hours, 1), "h",
                              note=f"computed: 10M / ({per_worker:.0f} reviews/s per worker x {n}), one worker per "
                                   "machine of this kind, sites not rate-limiting"))  # fmt: skip
    return figures


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.redis_crawl [--quick]``: this benchmark alone."""
    import tempfile

    args = sys.argv[1:] if argv is None else argv
    workdir = Path(tempfile.mkdtemp(prefix="reputation-bench-redis-crawl-"))
    try:
        for figure in run(workdir, quick="--quick" in args, say=lambda m: print(m, file=sys.stderr, flush=True)):
            print(f"{figure.name}: {figure.value} {figure.unit}  ({figure.note})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
