"""A distributed crawl round recorded as a single-machine crawl records itself: failure reasons and removals.

Real parts only: redis-server, the fault-injecting site on 127.0.0.1 (fault_server), `reputation -q
worker crawl` processes and `reputation -q ingest --once --json` as the writer. Covers: a worker
names a failed page as the local crawl does (``timeout``, ``connection_lost``, ``http_500``, not an
exception's class name), so the run's errors and the sources' statuses equal a local crawl's; a
quiet worker prints nothing; one long-running worker crawls two rounds afresh (it forgets the
pages it requested and the reviews it saw), and the second, full, round marks the reviews its
complete walk no longer found removed, but not those of a listing whose walk was cut short; and,
on page records written by hand, each fault of a round that keeps a full crawl from marking removals,
and the writer's removal guard (REPUTATION_REMOVAL_MAX_SHARE of the config's [crawl] settings).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from crawl_support import SITE_LAYOUT, load_sources, rows
from fault_server import FaultServer, hang, page, review, review_page, status, truncated
from redis_server import RedisServer

from crawler.extractors.layout_config import ENV_VAR as LAYOUTS_ENV
from crawler.launcher import run_crawl
from crawler.redis_frontier import START_KEY
from crawler.removals import TOO_MANY_UNSEEN
from reputation.cli import cli
from reputation.distributed import streams
from reputation.distributed.enqueue import enqueue_due_at
from reputation.distributed.rounds import (
    DEAD_LETTERS,
    ITEMS_DROPPED,
    WALK_NOT_REPORTED,
    finish_round,
    round_run,
)
from reputation.registry.loader import source_id
from storage.database import connect, utcnow

ROOT = Path(__file__).resolve().parents[1]
ENV = {**{k: v for k, v in os.environ.items() if k != LAYOUTS_ENV}, "PYTHONWARNINGS": "ignore"}
# As tests/test_faults.py: a timeout far above a loopback answer on a loaded machine, far below a hang.
FAST = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "DOWNLOAD_TIMEOUT": "5",
    "RETRY_TIMES": "1",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "8",
    "BACKOFF_MAX_DELAY": "1",
}
HANG_S = 600.0  # a hanging page's silence: longer than any crawl here takes
WAIT_S = 600.0  # the longest a test waits for a state (a loaded machine is slow)
CAPTCHA = "<html><title>Are you a robot?</title><body><div class='g-recaptcha'></div></body></html>"


@pytest.fixture
def site() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


class Worker:
    """A `reputation -q worker crawl` process, its stdout and stderr in files."""

    def __init__(self, redis_url: str, workdir: Path, *extra: str) -> None:
        self.out, self.err = workdir / "worker.out", workdir / "worker.err"
        settings = [arg for key, value in FAST.items() for arg in ("-s", f"{key}={value}")]
        argv = [sys.executable, "-m", "reputation.cli", "-q", "worker", "crawl", "--redis", redis_url,
                *settings, *extra]  # fmt: skip
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=out, stderr=err)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM (how a worker is stopped), then its exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT_S)

    def assert_quiet(self) -> None:
        """-q: no summary on stdout, no info or warning lines on stderr."""
        stderr = self.err.read_text(errors="replace")
        assert self.out.read_text() == "", self.out.read_text()
        assert " INFO: " not in stderr and " WARNING: " not in stderr, stderr[-3000:]

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait(timeout=60)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def ingest_until_closed(db_path: Path, redis_url: str, worker: Worker) -> dict[str, Any]:
    """`reputation -q ingest --once --json`, again and again, until it closes the crawl round: that round."""
    argv = ["-q", "--db", str(db_path), "ingest", "--redis", redis_url, "--once", "--no-enqueue", "--json"]
    deadline = time.monotonic() + WAIT_S
    while True:
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 0, result.output
        closed: list[dict[str, Any]] = json.loads(result.stdout)["crawl_rounds"]  # -q: the JSON alone
        if closed:
            return closed[0]
        assert worker.alive(), worker.err.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"the round was not over in {WAIT_S}s"
        time.sleep(0.2)


def statuses(db_path: Path) -> dict[str, str]:
    found = rows(db_path, "SELECT url, last_crawl_status FROM sources")
    return {r["url"]: r["last_crawl_status"] for r in found}


def last_crawl_run(db_path: Path) -> dict[str, Any]:
    run = rows(db_path, "SELECT * FROM crawl_runs WHERE stage = 'crawl' ORDER BY id DESC LIMIT 1")[0]
    return {**run, **{k: json.loads(run[k] or "{}") for k in ("errors_by_reason", "detail")}}


def one_review(rid: str) -> str:
    return review_page([review(rid, f"Review {rid}: the agent sorted it out.")])


def test_a_worker_names_failed_pages_as_the_local_crawl_does(
    tmp_path: Path,
    site: FaultServer,
    redis_server: RedisServer,
    workers: list[Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pages = {
        "/e500/": status(500, "boom"),
        "/hang/": hang(HANG_S),  # answers only after the crawl: the download timeout ends it
        "/cut/": truncated(one_review("C1")),
        "/forbidden/": status(403, "no"),
        "/captcha/": page(CAPTCHA),
        "/ok/": page(one_review("K1")),
        "/site-x/": page("<html><body><div class='review'><p>Fine.</p></div></body></html>"),
    }
    for path, fault in pages.items():
        site.add(path, fault)
    urls = {path: site.url(path) for path in pages}
    registry: dict[str, list[str | dict[str, str]]] = {
        f"brand-{n}": [url] for n, url in enumerate(urls.values())
    }
    registry[f"brand-{len(pages) - 1}"] = [{"url": urls["/site-x/"], "layout": "site-x"}]
    layouts = tmp_path / "site.yaml"
    layouts.write_text(SITE_LAYOUT, encoding="utf-8")
    monkeypatch.setenv(LAYOUTS_ENV, str(layouts))
    local_db, dist_db = tmp_path / "local.db", tmp_path / "dist.db"
    for db_path in (local_db, dist_db):
        workdir = tmp_path / db_path.stem
        workdir.mkdir()
        load_sources(workdir, db_path, registry)
    monkeypatch.delenv(LAYOUTS_ENV)  # the crawls run without the file that defined site-x

    local = run_crawl(local_db, settings=FAST)  # the reference: a single-machine crawl of the same site
    assert local["errors_by_reason"] == {
        "connection_lost": 1, "http_403": 1, "http_500": 1, "layout_error": 1, "timeout": 1
    }  # fmt: skip

    assert enqueue_due_at(str(dist_db), redis_server.url, due_only=False).sources == len(pages)
    worker = Worker(redis_server.url, tmp_path, "--idle-exit", "2")
    workers.append(worker)
    closed = ingest_until_closed(dist_db, redis_server.url, worker)
    assert worker.process.wait(timeout=WAIT_S) == 0  # the frontier stayed empty: it exited by itself
    worker.assert_quiet()

    records: Any = streams.connect(redis_server.url).xrange(streams.PAGES_STREAM)
    recorded = {fields["url"]: fields["error"] for _, fields in records}
    assert {recorded[urls[p]] for p in ("/e500/", "/hang/", "/cut/", "/forbidden/", "/site-x/")} == {
        "http_500", "timeout", "connection_lost", "http_403", "layout_error"
    }  # fmt: skip
    run = last_crawl_run(dist_db)
    assert run["id"] == closed["run_id"]
    assert run["errors_by_reason"] == local["errors_by_reason"]
    assert statuses(dist_db) == statuses(local_db)
    assert statuses(dist_db)[urls["/hang/"]] == "failed: timeout"
    assert statuses(dist_db)[urls["/captcha/"]] == "empty: blocked"
    assert statuses(dist_db)[urls["/site-x/"]] == "failed: layout_error"


def test_a_complete_full_round_marks_removed_reviews_and_a_cut_short_one_does_not(
    tmp_path: Path, site: FaultServer, redis_server: RedisServer, workers: list[Worker]
) -> None:
    def listing(rids: list[str], next_href: str | None = None) -> str:
        return review_page([review(r, f"Review {r}: the agent helped.") for r in rids], next_href=next_href)

    # Two listings of two pages each.
    site.add("/a/", page(listing(["A1", "A2"], "/a/?page=2")))
    site.add("/a/?page=2", page(listing(["A3"])))
    site.add("/b/", page(listing(["B1", "B2"], "/b/?page=2")))
    site.add("/b/?page=2", page(listing(["B3"])))
    a_url, b_url = site.url("/a/"), site.url("/b/")
    db_path = tmp_path / "reputation.db"
    load_sources(tmp_path, db_path, {"brand-a": [a_url], "brand-b": [b_url]})
    a_id, b_id = source_id(a_url), source_id(b_url)

    enqueue_due_at(str(db_path), redis_server.url, due_only=False)  # never crawled: full
    worker = Worker(redis_server.url, tmp_path)  # runs until stopped: it outlives the round
    workers.append(worker)
    first = ingest_until_closed(db_path, redis_server.url, worker)
    assert first["sources"] == {"ok": 2}
    assert rows(db_path, "SELECT COUNT(*) AS n FROM reviews WHERE removed_at IS NULL")[0]["n"] == 6

    # Times are stored to the second: the next round starts after the second the first one stored in,
    # or its reviews not seen again would look seen during it.
    latest = rows(db_path, "SELECT MAX(last_seen) AS t FROM reviews")[0]["t"]
    while utcnow() <= latest:
        time.sleep(0.05)
    # The next full round: A3 left listing A; B2 left listing B, whose second page now fails.
    site.add("/a/?page=2", page(listing(["A4"])))
    site.add("/b/", page(listing(["B1"], "/b/?page=2")))
    site.add("/b/?page=2", status(500, "boom"))
    enqueue_due_at(str(db_path), redis_server.url, due_only=False, full=True)
    second = ingest_until_closed(db_path, redis_server.url, worker)
    assert worker.stop() == 0
    worker.assert_quiet()

    assert second["run_id"] != first["run_id"]
    assert statuses(db_path) == {a_url: "ok", b_url: "partial"}
    stored = rows(db_path, "SELECT body, removed_at, last_crawl_run_id FROM reviews")
    reviews = {r["body"].split(":")[0].removeprefix("Review "): r for r in stored}
    removed = sorted(rid for rid, r in reviews.items() if r["removed_at"])
    assert removed == ["A3"]  # not B2: B's walk was cut short
    # The same worker walked listing A again to its end, reviews it had seen in the first round included.
    assert len(site.hits("/a/?page=2")) == 2
    seen_again = {rid for rid, r in reviews.items() if r["last_crawl_run_id"] == second["run_id"]}
    assert seen_again >= {"A1", "A2", "A4", "B1"}
    crawls = last_crawl_run(db_path)["detail"]["crawls"]
    assert (crawls[a_id]["complete"], crawls[a_id]["removed"]) == (True, 1)
    b = crawls[b_id]
    assert (b["complete"], b["not_complete"], b["removed"]) == (False, "partial", 0)


@pytest.mark.parametrize(
    ("record", "dead_item", "not_complete"),
    [
        ({"stop": "", "dropped": "0"}, False, None),
        ({"stop": "stopped_repeating", "dropped": "0"}, False, None),  # how some sites end a listing
        ({"stop": "page_budget", "dropped": "0"}, False, "page_budget"),
        ({"stop": "", "dropped": "2"}, False, ITEMS_DROPPED),  # a dropped review's row would look removed
        ({"stop": "", "dropped": "0"}, True, DEAD_LETTERS),  # an item never stored
        ({}, False, WALK_NOT_REPORTED),  # a page record from an older worker
    ],
)
def test_what_keeps_a_distributed_full_crawl_from_marking_removals(
    tmp_path: Path,
    redis_server: RedisServer,
    record: dict[str, str],
    dead_item: bool,
    not_complete: str | None,
) -> None:
    """Closing a round on the page records the workers left, as crawler.removals.source_crawl decides locally."""
    db_path = tmp_path / "reputation.db"
    load_sources(tmp_path, db_path, {"brand-a": ["http://127.0.0.1:9/a/"]})
    source = source_id("http://127.0.0.1:9/a/")
    client = streams.connect(redis_server.url, wait=False)
    enqueue_due_at(str(db_path), redis_server.url, due_only=False)
    db = connect(db_path)
    try:
        run_id = round_run(client, db)
        reviews = [("seen", utcnow(), run_id), ("gone", "2020-01-01T00:00:00+00:00", None)]
        db.table("reviews").insert_all(
            {"id": rid, "source_id": source, "brand_id": "brand-a", "body": f"Review {rid}.", "body_hash": rid,
             "first_seen": seen, "last_seen": seen, "last_crawl_run_id": run}
            for rid, seen, run in reviews
        )  # fmt: skip
        fields: dict[Any, Any] = {"url": "http://127.0.0.1:9/a/", "source_id": source, "status": "200",
                                  "items": "1", "error": "", "worker": "w", **record}  # fmt: skip
        client.xadd(streams.PAGES_STREAM, fields)
        if dead_item:
            client.xadd(
                streams.DEAD_LETTER_STREAM, {"stream": streams.ITEMS_STREAM, "reason": "store_failed"}
            )
        closed = finish_round(client, db)
    finally:
        db.close()
    assert closed is not None and closed.sources == {source: "ok"}
    crawl = last_crawl_run(db_path)["detail"]["crawls"][source]
    assert (crawl["complete"], crawl.get("not_complete")) == (not_complete is None, not_complete)
    removed = [r["id"] for r in rows(db_path, "SELECT id FROM reviews WHERE removed_at IS NOT NULL")]
    assert removed == (["gone"] if not_complete is None else [])


@pytest.mark.parametrize(
    ("config", "removed"),
    [
        ("", []),  # the default share (0.5): 3 of 4 vanished is more, so none is marked
        ("[crawl]\nsettings = { REPUTATION_REMOVAL_MAX_SHARE = 0.8 }\n", ["gone-1", "gone-2", "gone-3"]),
    ],
)
def test_a_round_close_honours_the_removal_max_share_as_a_local_crawl_does(
    tmp_path: Path, redis_server: RedisServer, config: str, removed: list[str]
) -> None:
    """`reputation ingest --once` closes a complete full round where 3 of a source's 4 reviews vanished:
    over REPUTATION_REMOVAL_MAX_SHARE of the config's [crawl] settings none is marked, and the run's
    detail says why (crawler.removals.mark_removed's guard, as the store pipeline applies it)."""
    db_path = tmp_path / "reputation.db"
    load_sources(tmp_path, db_path, {"brand-a": ["http://127.0.0.1:9/a/"]})
    source = source_id("http://127.0.0.1:9/a/")
    config_path = tmp_path / "reputation.toml"
    config_path.write_text(config)
    client = streams.connect(redis_server.url, wait=False)
    enqueue_due_at(str(db_path), redis_server.url, due_only=False)
    client.delete(START_KEY)  # a worker took the start entry
    db = connect(db_path)
    try:
        run_id = round_run(client, db)
        old = "2020-01-01T00:00:00+00:00"
        reviews = [("seen", utcnow(), run_id)] + [(f"gone-{n}", old, None) for n in (1, 2, 3)]
        db.table("reviews").insert_all(
            {"id": rid, "source_id": source, "brand_id": "brand-a", "body": f"Review {rid}.", "body_hash": rid,
             "first_seen": seen, "last_seen": seen, "last_crawl_run_id": run}
            for rid, seen, run in reviews
        )  # fmt: skip
    finally:
        db.close()
    client.xadd(streams.PAGES_STREAM, {"url": "http://127.0.0.1:9/a/", "source_id": source, "status": "200",
                                       "items": "1", "error": "", "stop": "", "dropped": "0", "worker": "w"})  # fmt: skip
    argv = ["-q", "--db", str(db_path), "--config", str(config_path), "ingest", "--redis", redis_server.url,
            "--once", "--no-enqueue", "--json"]  # fmt: skip
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["crawl_rounds"][0]["run_id"] == run_id
    crawl = last_crawl_run(db_path)["detail"]["crawls"][source]
    assert (crawl["complete"], crawl["removed"]) == (True, len(removed))
    assert crawl.get("removal_skipped") == (None if removed else TOO_MANY_UNSEEN)
    marked = rows(db_path, "SELECT id FROM reviews WHERE removed_at IS NOT NULL ORDER BY id")
    assert [r["id"] for r in marked] == removed


def test_a_writer_refuses_a_removal_max_share_that_is_not_a_number(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    db_path = tmp_path / "reputation.db"
    load_sources(tmp_path, db_path, {"brand-a": ["http://127.0.0.1:9/a/"]})
    config_path = tmp_path / "reputation.toml"
    config_path.write_text('[crawl]\nsettings = { REPUTATION_REMOVAL_MAX_SHARE = "half" }\n')
    argv = ["--db", str(db_path), "--config", str(config_path), "ingest", "--redis", redis_server.url]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: REPUTATION_REMOVAL_MAX_SHARE: expected a number, got 'half'"
    ]


def test_a_worker_records_each_page_without_a_review_and_the_page_a_budget_stopped(
    tmp_path: Path, site: FaultServer, redis_server: RedisServer, workers: list[Worker]
) -> None:
    """The reviews spider's hooks (page_decided, note_empty) give each page's record its own stop and
    empty kind: the second page without a review of a source too, read once."""
    blocked = (
        '<html><head><title>Are you a robot?</title><link rel="next" href="/x/?page=3"></head>'
        "<body><div class='g-recaptcha'></div></body></html>"
    )
    site.add("/x/", page(review_page([review("X1", "Review X1: the agent helped.")], next_href="/x/?page=2")))
    site.add("/x/?page=2", page(blocked))
    site.add("/x/?page=3", page(review_page([], next_href="/x/?page=4")))
    site.add("/x/?page=4", page(one_review("X4")))
    url = site.url("/x/")
    db_path = tmp_path / "reputation.db"
    load_sources(tmp_path, db_path, {"brand-x": [url]})
    enqueue_due_at(str(db_path), redis_server.url, due_only=False)
    worker = Worker(redis_server.url, tmp_path, "-s", "REPUTATION_MAX_PAGES_PER_SOURCE=3", "--idle-exit", "2")
    workers.append(worker)
    closed = ingest_until_closed(db_path, redis_server.url, worker)
    assert worker.process.wait(timeout=WAIT_S) == 0
    worker.assert_quiet()

    records: Any = streams.connect(redis_server.url).xrange(streams.PAGES_STREAM)
    recorded = {
        fields["url"]: (fields["items"], fields["empty"], fields["stop"], fields["error"])
        for _, fields in records
    }
    assert recorded == {
        url: ("1", "", "", ""),
        site.url("/x/?page=2"): ("0", "blocked", "", ""),
        site.url("/x/?page=3"): ("0", "no_known_markup", "page_budget", ""),
    }
    assert site.hits("/x/?page=4") == []  # past the page budget
    assert closed["sources"] == {"ok": 1}
    crawl = last_crawl_run(db_path)["detail"]["crawls"][source_id(url)]
    assert (crawl["complete"], crawl["not_complete"]) == (False, "page_budget")
