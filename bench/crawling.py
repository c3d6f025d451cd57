"""Crawl speed: `reputation crawl` (crawler.launcher.run_crawl) against a bare Scrapy spider.

Both crawl the same generated demo site (scaled up by rewriting the demo world's review
counts and page sizes in a temporary copy of datasets/demo), served by the same loopback
server, with the same concurrency settings and AutoThrottle and download delays off, each in
its own child Scrapy process, timed end to end. The bare spider only parses pagination links,
so its pages/s is what Scrapy plus the server can do; the product's share of it is the figure.
The product runs with its defaults, so on a machine with a second CPU its listing pages are
extracted in a worker process beside the crawl (crawler.extraction_pool).

One more row says how much room the machine has for that second process: the bare spider again,
while a process that only spins holds one CPU. On a two-CPU machine the spinning process, the
loopback server and the spider share two CPUs, as the product's worker, server and crawl do; the
bare spider's share of its own speed there shows what any two-process crawl gives up before it
does any work of its own.

Two more rows count CPU time, from ``getrusage``: the CPU seconds per page of the product's
processes (the crawl child and its extraction worker) against the bare spider's, and the most
pages/s the product's CPU use allows on this machine: a crawl cannot finish before its processes
and the loopback server have had their CPU seconds, spread over every CPU at best. Where that
ceiling sits below the target, the machine, not the product's waiting, bounds the ratio.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from bench.report import Figure, median

R = TypeVar("R")
TARGET_SHARE = 0.8
CONCURRENCY = 16
SETTINGS: dict[str, Any] = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "CONCURRENT_REQUESTS": CONCURRENCY,
    "CONCURRENT_REQUESTS_PER_DOMAIN": CONCURRENCY,  # every source lives on 127.0.0.1
    "LOG_LEVEL": "INFO",
}


def scaled_site(workdir: Path, reviews_per_brand: int, page_size: int) -> tuple[Path, Any]:
    """Generate the demo site with about ``reviews_per_brand`` reviews (±10%) and smaller pages."""
    from demo_world.generator import generate_scaled_site

    spread = {"reviews_min": int(reviews_per_brand * 0.9), "reviews_max": int(reviews_per_brand * 1.1)}
    return generate_scaled_site(workdir, **spread, page_size=page_size)


def _template_db(workdir: Path, manifest: Any, base_url: str) -> Path:
    from demo_world import write_demo_registry
    from reputation.registry.loader import load_registry
    from storage.database import connect

    path = workdir / "crawl-template.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = connect(path)
    load_registry(db, write_demo_registry(manifest, base_url, workdir / "vendors.yaml"))
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def _product(template: Path, target: Path) -> tuple[float, int, int]:
    """(seconds, pages, reviews stored) of one run_crawl on a fresh copy of the registry."""
    from crawler.launcher import run_crawl

    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copy(template, target)
    start = time.perf_counter()
    run = run_crawl(target, settings=SETTINGS, timeout=900)
    seconds = time.perf_counter() - start
    return seconds, int(run["pages"]), int(run["items_new"])


class CpuUse(NamedTuple):
    """CPU seconds a run took: its child processes' (with theirs), and this process's meanwhile."""

    children: float
    here: float  # the loopback server's threads, and the run's own steps in this process


def _cpu_totals() -> CpuUse:
    here = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children and their reaped ones
    return CpuUse(children.ru_utime + children.ru_stime, here.ru_utime + here.ru_stime)


def with_cpu(run: Callable[[], R]) -> tuple[R, CpuUse]:
    """``run()``'s result and the CPU it used; its children must have exited and been waited for."""
    before = _cpu_totals()
    result = run()
    after = _cpu_totals()
    return result, CpuUse(after.children - before.children, after.here - before.here)


def cpu_ceiling(pages: int, cpu: CpuUse, cpus: int) -> float:
    """The most pages/s a run could have reached: all of its CPU seconds spread over every CPU."""
    busy = (cpu.children + cpu.here) / max(1, cpus)
    return pages / busy if busy > 0 else float("inf")


def _bare(urls_file: Path, stats_file: Path) -> tuple[float, int]:
    """(seconds, pages) of the bare spider in a child process, like run_crawl's."""
    spider = Path(__file__).with_name("bare_spider.py")
    argv = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-a", f"urls={urls_file}",
            "-a", f"stats={stats_file}", "-s", "ROBOTSTXT_OBEY=True", "-s", "TELNETCONSOLE_ENABLED=False",
            # The project's runspider wants a database; the bare spider yields no items, so no
            # pipeline runs and the file is never opened.
            "-s", f"REPUTATION_DB={stats_file.with_name('bare-unused.db')}", "-s", "ITEM_PIPELINES={}",
            "-s", "TWISTED_REACTOR=twisted.internet.asyncioreactor.AsyncioSelectorReactor"]
    for key, value in SETTINGS.items():
        argv += ["-s", f"{key}={value}"]
    stats_file.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or not stats_file.is_file():
        raise RuntimeError(f"bare spider failed: {done.stderr[-2000:]}")
    return seconds, int(json.loads(stats_file.read_text())["pages"])


SPIN = "import sys\nfrom crawler.parent_death import die_with_parent\ndie_with_parent(int(sys.argv[1]))\nwhile True: pass"


def _spinning() -> subprocess.Popen[bytes]:
    """A process that only spins (at normal priority) to take one CPU, and dies with the benchmark."""
    return subprocess.Popen([sys.executable, "-c", SPIN, str(os.getpid())], stdin=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parent.parent)  # fmt: skip


def _bare_beside_spinner(urls_file: Path, stats_file: Path) -> tuple[float, int]:
    spinner = _spinning()
    try:
        return _bare(urls_file, stats_file)
    finally:
        spinner.kill()
        spinner.wait()


def server_capacity(base_url: str, paths: list[str], seconds: float = 3.0, clients: int = CONCURRENCY) -> float:
    """Pages/s the server hands to ``clients`` keep-alive threads (no parsing): is it the bottleneck?"""
    host = urlsplit(base_url)
    count = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        conn = HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=10)
        i = slot
        while time.perf_counter() < stop:
            conn.request("GET", paths[i % len(paths)])
            conn.getresponse().read()
            count[slot] += 1
            i += clients
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / (time.perf_counter() - start)


def run(workdir: Path, *, quick: bool, repetitions: int, say: Callable[[str], None]) -> list[Figure]:
    from demo_world import serve_directory

    per_brand, page_size = (200, 20) if quick else (1_000, 10)
    start = time.perf_counter()
    site, manifest = scaled_site(workdir, per_brand, page_size)
    say(f"  demo site: {manifest.total_reviews:,} reviews on {manifest.pages:,} pages "
        f"(generated in {time.perf_counter() - start:.1f} s)")
    with serve_directory(site) as base_url:
        template = _template_db(workdir, manifest, base_url)
        urls_file = workdir / "start-urls.txt"
        urls_file.write_text("".join(f"{base_url}{s['path']}\n" for s in manifest.sources))
        listing = [p.relative_to(site).as_posix() for p in site.rglob("index.html")]
        capacity = server_capacity(base_url, ["/" + p.removesuffix("index.html") for p in listing])
        ours, bare, crowded, ours_reviews, pages_seen = [], [], [], [], []
        ours_cpu, bare_cpu, ceiling = [], [], []  # ms per page; pages/s
        cpus = os.cpu_count() or 1
        for rep in range(repetitions):  # interleaved
            (seconds, pages, stored), cpu = with_cpu(partial(_product, template, workdir / f"crawl-{rep}.db"))
            ours.append(pages / seconds)
            ours_reviews.append(stored / seconds)
            ours_cpu.append(1000 * cpu.children / pages)
            ceiling.append(cpu_ceiling(pages, cpu, cpus))
            (b_seconds, b_pages), b_cpu = with_cpu(partial(_bare, urls_file, workdir / "bare-stats.json"))
            bare.append(b_pages / b_seconds)
            bare_cpu.append(1000 * b_cpu.children / b_pages)
            c_seconds, c_pages = _bare_beside_spinner(urls_file, workdir / "bare-stats.json")
            crowded.append(c_pages / c_seconds)
            pages_seen.append((pages, b_pages, stored))
            say(f"  rep {rep + 1}: reputation crawl {pages} pages, {stored} reviews in {seconds:.1f} s "
                f"({cpu.children:.1f} CPU-s, server {cpu.here:.1f}); bare spider {b_pages} pages in "
                f"{b_seconds:.1f} s ({b_cpu.children:.1f} CPU-s, server {b_cpu.here:.1f}), "
                f"{c_seconds:.1f} s beside a spinning process")
    pages, b_pages, stored = pages_seen[-1]
    from crawler.extraction_pool import default_processes

    settings = (f"concurrency {CONCURRENCY}, AutoThrottle off, delay 0; {manifest.pages:,} listing pages; "
                f"extraction worker processes: {default_processes()}")  # fmt: skip
    figures = [
        Figure("crawl", "reputation crawl (run_crawl) pages/s", median(ours), "pages/s", median(bare),
               "bare Scrapy spider, links only", note=settings, samples=ours, baseline_samples=bare)
        .check(lambda _v, _b, ratio: ratio >= TARGET_SHARE, f"ratio >= {TARGET_SHARE:.0%}"),
        Figure("crawl", "reputation crawl reviews/s (stored)", median(ours_reviews), "reviews/s",
               note=f"{stored:,} of {manifest.total_reviews:,} reviews stored", samples=ours_reviews),
        Figure("crawl", "bare Scrapy spider beside a process spinning on one CPU", median(crowded), "pages/s",
               median(bare), "bare Scrapy spider alone", samples=crowded, baseline_samples=bare,
               note=f"{cpus} CPUs; the ratio is the share of its own speed a one-process crawl keeps "
                    "when a second process holds a CPU"),
        Figure("crawl", "CPU time per page: reputation crawl (crawl process and extraction worker)",
               median(ours_cpu), "ms/page", median(bare_cpu), "bare Scrapy spider", lower_is_better=True,
               samples=ours_cpu, baseline_samples=bare_cpu,
               note="user + system CPU of the child processes, from getrusage; the server's is not in it"),
        Figure("crawl", f"most pages/s the crawl's CPU use allows on {cpus} CPUs (computed)", median(ceiling),
               "pages/s", median(bare), "bare Scrapy spider, measured", samples=ceiling, baseline_samples=bare,
               note="the crawl's processes' and the loopback server's CPU seconds spread over every CPU; "
                    "its ratio is the highest crawl ratio this machine allows"),
        Figure("crawl", "loopback server alone (keep-alive clients, no parsing)", capacity, "pages/s",
               note=f"{CONCURRENCY} client threads in the benchmark process"),
    ]  # fmt: skip
    if pages != b_pages:
        figures[0].note += f"; page counts differ: product {pages}, bare {b_pages}"
    return figures
