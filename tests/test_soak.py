"""Soak: 20,000 listing pages crawled through the real crawl, memory and rate watched throughout.

A synthetic forum (the built-in ``demo-forum`` layout's markup) is generated on the fly by a
threaded server on 127.0.0.1: SOURCES listings of PAGES_PER_SOURCE pages, REVIEWS_PER_PAGE
reviews each, every page linking to the next. ``crawler.launcher.run_crawl`` crawls it in its
child Scrapy process with politeness lifted as the demo does. While it runs, the child's resident
memory (VmRSS, and the kernel's high-water mark VmHWM) is sampled from /proc and the server
counts pages served per time window. The test asserts that every review is stored exactly once,
that the child's peak stays under PEAK_LIMIT_MB, that memory in the last quarter of the crawl is
not more than GROWTH_LIMIT times the first quarter's plus the store's SQLite page cache (which
fills, up to its cap, as the database grows), and that the page rate does not decay: pages per
second of the child's own CPU time (from /proc), so that a machine busy with other work slows
the crawl without failing the test; it prints the figures, wall-clock rates too, to the test log. Marked ``soak``: ``make test-all`` runs it,
``make test`` does not.
"""

from __future__ import annotations

import bisect
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from crawler.launcher import run_crawl
from crawler.pipelines.store import CACHE_KIB
from storage.database import connect

pytestmark = [pytest.mark.soak, pytest.mark.timeout(1800)]

SOURCES = 25
PAGES_PER_SOURCE = 800  # under REPUTATION_MAX_PAGES_PER_SOURCE (1,000)
REVIEWS_PER_PAGE = 3
PAGES = SOURCES * PAGES_PER_SOURCE
REVIEWS = PAGES * REVIEWS_PER_PAGE
PEAK_LIMIT_MB = 1024
GROWTH_LIMIT = 1.5
WINDOWS = 10
# As reputation.demo.DEMO_CRAWL_SETTINGS: no AutoThrottle, no delay, several requests at once.
SETTINGS = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
            "CONCURRENT_REQUESTS": 8, "LOG_LEVEL": "INFO"}

_WORDS = ["support", "agent", "refund", "parcel", "late", "polite", "rude", "waited", "hold", "chat", "email", "replied", "never", "again", "quality", "price", "cheap", "broken", "helpful", "manager", "callback", "store", "delivery", "order", "account", "app"]


def _review(source: int, page: int, slot: int) -> str:
    rng = random.Random(source * 1_000_003 + page * 101 + slot)
    body = " ".join(
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."
        for _ in range(rng.randint(2, 5))
    )
    posted = date(2024, 12, 31) - timedelta(days=(page * REVIEWS_PER_PAGE + slot) % 1500)
    return (
        f'<article class="review" data-review-id="s{source}-p{page}-r{slot}">\n'
        f'<h2 class="review-title">Order {source}-{page}-{slot}</h2>\n'
        f'<div class="byline"><span class="author">user{rng.randint(1, 99999)}</span> · '
        f'<span class="posted">{posted.isoformat()}</span> · '
        f'<span class="stars" data-score="{rng.randint(1, 5)}"></span></div>\n'
        f'<div class="review-text"><p>{body}</p></div>\n</article>\n'
    )


def forum_page(source: int, page: int) -> str:
    """Page ``page`` (1-based) of listing ``source``: its reviews and a link to the next page."""
    reviews = "".join(_review(source, page, slot) for slot in range(REVIEWS_PER_PAGE))
    nxt = (f'<a class="pager-next" href="/forum/{source}?page={page + 1}">Older »</a>'
           if page < PAGES_PER_SOURCE else "")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Forum {source} page {page}"
            f"</title></head><body><main>{reviews}</main><nav>{nxt}</nav></body></html>")


@dataclass
class Forum:
    """The server's side of the crawl: when each listing page was served."""

    served: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def forum() -> Iterator[tuple[str, Forum]]:
    state = Forum()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            segments = parts.path.strip("/").split("/")
            page = int((parse_qs(parts.query).get("page") or ["1"])[0] or 1)
            if len(segments) == 2 and segments[0] == "forum" and segments[1].isdigit() \
                    and 1 <= page <= PAGES_PER_SOURCE:
                body, status = forum_page(int(segments[1]), page).encode(), 200
                with state.lock:
                    state.served.append(time.monotonic())
            else:
                body, status = b"not found", 404
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="soak-forum", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _children(pid: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def _memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in kB, None once it is gone."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        return None


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (all its threads), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the fields after "pid (command)", from the state on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class MemoryWatch(threading.Thread):
    """Samples the crawl child's memory twice a second until stopped."""

    def __init__(self) -> None:
        super().__init__(name="soak-memory", daemon=True)
        self.samples: list[tuple[float, int]] = []  # (monotonic time, VmRSS kB)
        self.cpu: list[tuple[float, float]] = []  # (monotonic time, the child's CPU seconds so far)
        self.peak_kb = 0
        self.child: int | None = None
        self.done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.done.wait(0.5):
            if self.child is None:
                for pid in _children(me):
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    if b"crawler.child" in cmdline:
                        self.child = pid
                if self.child is None:
                    continue
            memory, cpu = _memory_kb(self.child), _cpu_seconds(self.child)
            if memory is None or cpu is None:
                continue
            now = time.monotonic()
            self.samples.append((now, memory[0]))
            self.cpu.append((now, cpu))
            self.peak_kb = max(self.peak_kb, memory[1])

    def cpu_at(self, when: float) -> float:
        """The child's CPU seconds at ``when``, interpolated between the samples around it."""
        times = [t for t, _ in self.cpu]
        i = bisect.bisect_left(times, when)
        if i == 0:
            return self.cpu[0][1]
        if i == len(times):
            return self.cpu[-1][1]
        (t0, c0), (t1, c1) = self.cpu[i - 1], self.cpu[i]
        return c0 + (c1 - c0) * (when - t0) / (t1 - t0)


def _register(db_path: Path, base_url: str) -> None:
    db = connect(db_path)
    with db.conn:
        db.table("vendors").insert({"id": "soak", "name": "Soak Vendor"})
        db.table("brands").insert_all([{"id": f"brand{s:02d}", "name": f"Brand {s}"} for s in range(SOURCES)])
        db.table("sources").insert_all(
            [{"id": f"src{s:02d}", "brand_id": f"brand{s:02d}", "url": f"{base_url}/forum/{s}",
              "layout": "auto"} for s in range(SOURCES)]
        )
    db.close()


def test_twenty_thousand_pages_in_bounded_memory_at_a_steady_rate(
    tmp_path: Path, forum: tuple[str, Forum], capsys: pytest.CaptureFixture[str]
) -> None:
    base_url, state = forum
    db_path = tmp_path / "soak.db"
    _register(db_path, base_url)
    watch = MemoryWatch()
    watch.start()
    start = time.monotonic()
    try:
        run = run_crawl(db_path, settings=SETTINGS, timeout=1500, log_path=tmp_path / "crawl.log")
    finally:
        watch.done.set()
        watch.join()
    seconds = time.monotonic() - start

    db = connect(db_path)
    stored, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM reviews").fetchone()
    per_source = dict(db.execute("SELECT source_id, COUNT(*) FROM reviews GROUP BY source_id").fetchall())
    db.close()

    served = sorted(state.served)
    first, last = served[0], served[-1]
    width = (last - first) / WINDOWS
    rates = [
        sum(1 for t in served if first + i * width <= t < first + (i + 1) * width
            or (i == WINDOWS - 1 and t == last)) / width
        for i in range(WINDOWS)
    ]
    assert watch.samples, "the crawl child was never seen"
    span = watch.samples[-1][0] - watch.samples[0][0]
    quarter = [
        max((kb for t, kb in watch.samples if lo <= (t - watch.samples[0][0]) / span <= hi), default=0)
        for lo, hi in ((0.0, 0.25), (0.75, 1.0))
    ]
    # Pages per second of the crawl child's CPU time, first half against second half: the work a
    # page costs, whatever else the machine was doing meanwhile.
    middle = first + (last - first) / 2
    cpu_spent = [watch.cpu_at(middle) - watch.cpu_at(first), watch.cpu_at(last) - watch.cpu_at(middle)]
    halves = [sum(1 for t in served if t < middle), sum(1 for t in served if t >= middle)]
    per_cpu = [pages / max(spent, 1e-9) for pages, spent in zip(halves, cpu_spent, strict=True)]
    tenths = [watch.samples[min(len(watch.samples) - 1, i * len(watch.samples) // 10)][1] for i in range(1, 11)]
    with capsys.disabled():  # the figures belong in the test log, pass or fail
        print(
            f"\nsoak: {len(served)} pages, {stored} reviews in {seconds / 60:.1f} min "
            f"({len(served) / seconds:.0f} pages/s overall); crawl child peak {watch.peak_kb / 1024:.0f} MB "
            f"(max RSS first quarter {quarter[0] / 1024:.0f} MB, last quarter {quarter[1] / 1024:.0f} MB)\n"
            f"pages/s per {width:.0f} s window: {', '.join(f'{r:.0f}' for r in rates)}\n"
            f"pages per CPU second of the crawl child, first half then second: "
            f"{per_cpu[0]:.0f}, {per_cpu[1]:.0f} ({cpu_spent[0]:.1f} s and {cpu_spent[1]:.1f} s of CPU)\n"
            f"crawl child RSS MB at each tenth of the crawl: {', '.join(f'{kb / 1024:.0f}' for kb in tenths)}"
        )

    assert run["status"] == "ok", run
    assert len(served) == PAGES and int(run["pages"]) >= PAGES
    assert stored == distinct == REVIEWS  # every review stored, and only once
    assert per_source == {f"src{s:02d}": PAGES_PER_SOURCE * REVIEWS_PER_PAGE for s in range(SOURCES)}
    assert int(run["items_new"]) == REVIEWS
    assert watch.peak_kb < PEAK_LIMIT_MB * 1024
    # Growth allowed: GROWTH_LIMIT, plus the store's SQLite page cache, which fills (up to its cap)
    # as the database grows, by design. Per-crawl "seen" sets (URLs, review keys) are a few hundred
    # bytes a review and are part of what the ratio allows.
    assert quarter[1] <= GROWTH_LIMIT * quarter[0] + CACHE_KIB, quarter
    # A crawl that slows as the database grows spends more of its CPU per page in the second half.
    # Counted in the child's CPU time, not wall-clock time: other work on the machine cannot fail it.
    assert per_cpu[1] >= 0.5 * per_cpu[0], (per_cpu, cpu_spent, rates)
