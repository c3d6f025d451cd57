"""The distributed crawl for real: redis-server, the demo site on loopback, crawl worker processes, the writer.

The reference is a single-machine crawl (crawler.launcher, the default path) of the same site
into another copy of the same registry: the distributed crawl must store exactly its reviews
(same ids and columns, none twice) even when a worker is SIGKILLed mid-crawl or Redis is
restarted, and every page must be fetched once apart from pages re-queued from a dead worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from redis_server import RedisServer, require_redis_server
from small_world import FAST, PAGE_SIZE, REVIEWS_PER_BRAND, TIME_COLUMNS, copy_db, rows

from crawler import redis_frontier
from crawler.identity import author_key
from crawler.launcher import run_crawl
from crawler.pipelines import stream_writer
from demo_world import write_demo_registry
from demo_world.generator import generate_scaled_site
from reputation.distributed import streams
from reputation.distributed.enqueue import ROUND_KEY, enqueue_due_at
from reputation.distributed.ingest import drain
from reputation.distributed.items_ingest import drain_items, round_done
from reputation.registry.loader import load_registry
from storage.database import connect

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
# Loopback demo site, but slow enough (a shared 0.1 s per-host delay) that a kill lands mid-crawl
# and the politeness across workers can be measured.
DELAY = 0.1
WORKER_SETTINGS = {**FAST, "DOWNLOAD_DELAY": str(DELAY), "RANDOMIZE_DOWNLOAD_DELAY": "False"}
LEASE_TTL = 2.0


class _LoggingHandler(SimpleHTTPRequestHandler):
    """The demo site's static files; every request's path and arrival time logged."""

    protocol_version = "HTTP/1.1"
    hits: list[tuple[str, float]]

    def do_GET(self) -> None:
        self.hits.append((self.path, time.monotonic()))
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a SIGKILLed worker resets its connections; that is the test, not an error


@dataclass
class Site:
    base_url: str
    hits: list[tuple[str, float]]
    template: Path  # registry-only database (and its author key)

    def page_hits(self) -> Counter[str]:
        """Fetches per page (robots.txt apart: each worker reads it once)."""
        return Counter(path for path, _ in self.hits if path != "/robots.txt")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_redis_server()
    workdir = tmp_path_factory.mktemp("redis-crawl")
    root, manifest = generate_scaled_site(
        workdir, reviews_min=REVIEWS_PER_BRAND, reviews_max=REVIEWS_PER_BRAND, page_size=PAGE_SIZE
    )
    hits: list[tuple[str, float]] = []
    handler = type("Handler", (_LoggingHandler,), {"hits": hits})
    server = _QuietServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    template = workdir / "template.db"
    db = connect(template)
    load_registry(db, write_demo_registry(manifest, base_url, workdir / "vendors.yaml"))
    author_key(db)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    try:
        yield Site(base_url, hits, template)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def single_db(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A single-machine crawl of the site (the default path, no Redis)."""
    db_path = copy_db(site.template, tmp_path_factory.mktemp("single") / "single.db")
    run = run_crawl(db_path, settings=FAST)
    assert run["status"] == "ok" and run["items_new"] > 50
    return db_path


@pytest.fixture(scope="module")
def reference(single_db: Path) -> list[dict[str, Any]]:
    """The reviews the single-machine crawl stored."""
    return reviews(single_db)


def aggregates(db_path: Path) -> list[dict[str, Any]]:
    return rows(db_path, "SELECT source_id, rating_value, rating_min, rating_max, review_count "
                         "FROM source_aggregates ORDER BY source_id")  # fmt: skip


def reviews(db_path: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in rows(db_path, "SELECT * FROM reviews ORDER BY id")]


def start_worker(redis_url: str, log: Path, *, idle_exit: float = 3.0) -> subprocess.Popen[bytes]:
    """``run_crawl_worker`` in its own process (what `reputation worker crawl` calls), log to a file."""
    code = (
        "from reputation.distributed.crawl_worker import run_crawl_worker; "
        f"run_crawl_worker({redis_url!r}, settings={WORKER_SETTINGS!r}, lease_ttl={LEASE_TTL}, idle_exit={idle_exit})"
    )
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT)


def pages_done(client: redis.Redis) -> int:
    return int(client.xlen(streams.PAGES_STREAM))


def write_until_done(client: redis.Redis, db_path: Path, workers: list[subprocess.Popen[bytes]],
                     timeout: float = 600) -> Counter[str]:  # fmt: skip
    """The writer (what `reputation ingest --once` runs, over and over): store items until the round
    is over and recorded, and the workers exited."""
    db = connect(db_path)
    counts: Counter[str] = Counter()
    closed = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            summary = drain(client, db, enqueue=False)
            counts.update(summary.item_outcomes)
            closed += len(summary.crawl_rounds)
            if closed and all(w.poll() is not None for w in workers):
                assert closed == 1 and round_done(client)
                return counts
            time.sleep(0.2)
    finally:
        db.close()
    raise AssertionError(f"the crawl did not finish in {timeout}s: {redis_frontier.frontier_depth(client)}")


def wait_for_pages(client: redis.Redis, n: int, workers: list[subprocess.Popen[bytes]], timeout: float = 300) -> None:
    """Until the workers have fetched ``n`` pages (a crawl under way), however slow the machine."""
    deadline = time.monotonic() + timeout
    while pages_done(client) < n:
        assert all(w.poll() is None for w in workers), "a worker exited before the crawl got going"
        assert time.monotonic() < deadline, f"fewer than {n} pages fetched in {timeout}s"
        time.sleep(0.02)


def holds_a_lease(client: redis.Redis, worker: subprocess.Popen[bytes]) -> bool:
    """Whether the worker process has a request leased (being fetched) in the frontier."""
    # Owners are "crawl@<host>:<pid>:<random>|<score>|<leased at>" (redis_frontier.worker_name).
    owners = [o.decode() if isinstance(o, bytes) else o for o in client.hvals(redis_frontier.LEASE_OWNERS_KEY)]
    return any(owner.split("|", 1)[0].rsplit(":", 2)[1] == str(worker.pid) for owner in owners)


def kill_while_leasing(client: redis.Redis, worker: subprocess.Popen[bytes], timeout: float = 300) -> None:
    """SIGKILL the worker while it holds a lease: frozen (SIGSTOP) to check, else let go and try again."""
    deadline = time.monotonic() + timeout
    while True:
        assert worker.poll() is None, "the worker exited before it could be killed holding a lease"
        worker.send_signal(signal.SIGSTOP)
        if holds_a_lease(client, worker):
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            return
        worker.send_signal(signal.SIGCONT)
        assert time.monotonic() < deadline, f"the worker held no lease whenever checked in {timeout}s"
        time.sleep(0.01)


def source_rows(db_path: Path) -> dict[str, dict[str, Any]]:
    """Each source's crawl bookkeeping (status, whether it has a last crawl and a last full crawl)."""
    return {r["id"]: r for r in rows(db_path, "SELECT id, last_crawl_status, last_crawl_at IS NOT NULL AS crawled, "
                                             "last_full_crawl_at IS NOT NULL AS full FROM sources ORDER BY id")}  # fmt: skip


def last_json(output: str) -> Any:
    """The JSON line a `--json` command printed last."""
    return json.loads(output.strip().splitlines()[-1])


def last_crawl_run(db_path: Path) -> dict[str, Any]:
    return rows(db_path, "SELECT * FROM crawl_runs WHERE stage = 'crawl' ORDER BY id DESC LIMIT 1")[0]


def assert_fetched_once_apart_from_requeued(site: Site, since: int, client: redis.Redis) -> None:
    requeued = {urlsplit(u).path for u in client.lrange(redis_frontier.REQUEUED_KEY, 0, -1)}
    counts = Counter(path for path, _ in site.hits[since:] if path != "/robots.txt")
    twice = {path for path, n in counts.items() if n > 1}
    assert twice <= requeued, f"fetched more than once without being requeued: {sorted(twice - requeued)}"
    assert not [p for p in counts if p.startswith("/forum/drafts/")], "robots.txt disallows /forum/drafts/"


def test_three_workers_one_killed_store_what_a_single_machine_crawl_stores(
    site: Site, reference: list[dict[str, Any]], single_db: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    db_path = copy_db(site.template, tmp_path / "dist.db")
    client = streams.connect(redis_server.url)
    since = len(site.hits)
    done = enqueue_due_at(str(db_path), redis_server.url, due_only=True)
    assert done.sources > 10 and done.new_round
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [start_worker(redis_server.url, log) for log in logs]
    wait_for_pages(client, 8, workers)
    kill_while_leasing(client, workers[0])  # mid-crawl: a lease held, items maybe half sent
    assert redis_frontier.frontier_depth(client)["queued"] + redis_frontier.frontier_depth(client)["leased"] > 0, (
        "the crawl ended before the kill; the test needs a slower site"
    )
    workers.append(start_worker(redis_server.url, logs[0]))  # restarted
    counts = write_until_done(client, db_path, workers)

    got = reviews(db_path)
    assert [r["id"] for r in got] == [r["id"] for r in reference]  # same ids, none twice
    assert got == reference  # and the same columns
    assert counts["new"] == len(reference)
    assert_fetched_once_apart_from_requeued(site, since, client)
    assert client.llen(redis_frontier.REQUEUED_KEY) > 0, "the killed worker held no lease: nothing was retried"
    # Every item message was stored, acknowledged and trimmed from Redis, none dead-lettered.
    assert round_done(client) and not streams.dead_letter_counts(client)
    assert client.xlen(streams.ITEMS_STREAM) == 0
    # The round is recorded as the single-machine crawl recorded itself: sources, run, aggregates.
    assert source_rows(db_path) == source_rows(single_db)
    run = last_crawl_run(db_path)
    assert (run["status"], run["items_new"], run["items_dropped"]) == ("ok", len(reference), 0)
    assert json.loads(run["detail"])["enqueued"] == done.sources
    assert aggregates(db_path) == aggregates(single_db) != []
    # scrapy-redis under Scrapy 2.19: the async start adapter leaves no deprecated start_requests path.
    for log in logs:
        text = log.read_text(errors="replace")
        assert "start_requests" not in text and "Traceback" not in text, text[-3000:]


def test_politeness_holds_across_workers(site: Site, redis_server: RedisServer, tmp_path: Path) -> None:
    """Three workers on one host keep to one request start per DOWNLOAD_DELAY between them.

    Checked on the server's arrival times: over any ten fetches in a row the rate holds (three
    uncoordinated workers would go three times faster), and fetches do not arrive together (three
    uncoordinated workers would put a large share of them within a fifth of the delay of the one
    before). A few gaps may fall below the delay: the token is taken when a download starts, and on
    two busy cores a request can leave its worker late, to arrive just before the next one.
    """
    db_path = copy_db(site.template, tmp_path / "polite.db")
    client = streams.connect(redis_server.url)
    since = len(site.hits)
    enqueue_due_at(str(db_path), redis_server.url, due_only=True)
    workers = [start_worker(redis_server.url, tmp_path / f"w{i}.log") for i in range(3)]
    write_until_done(client, db_path, workers)
    times = sorted(at for path, at in site.hits[since:] if path != "/robots.txt")
    assert len(times) > 30
    spans = [times[i + 9] - times[i] for i in range(len(times) - 9)]
    assert min(spans) >= 9 * DELAY * 0.9, f"ten fetches within {min(spans):.3f}s (delay {DELAY}s)"
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    together = [round(g, 3) for g in gaps if g < DELAY * 0.2]
    assert len(together) <= max(2, len(gaps) // 10), f"{len(together)} of {len(gaps)} fetches arrived together: {together}"


def test_redis_restarted_during_a_crawl_loses_nothing(
    site: Site, reference: list[dict[str, Any]], redis_server: RedisServer, tmp_path: Path
) -> None:
    db_path = copy_db(site.template, tmp_path / "restart.db")
    client = streams.connect(redis_server.url)
    since = len(site.hits)
    enqueue_due_at(str(db_path), redis_server.url, due_only=True)
    workers = [start_worker(redis_server.url, tmp_path / f"w{i}.log", idle_exit=4.0) for i in range(2)]
    wait_for_pages(client, 8, workers)
    # A crash mid-crawl (only the append-only file survives): the workers are frozen while Redis is
    # killed, so it surely dies with work left, then they find it down for a second.
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    try:
        depth = redis_frontier.frontier_depth(client)
        assert depth["queued"] + depth["leased"] + depth["start"] > 0, "the crawl ended before the restart"
        redis_server.stop(kill=True)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
    time.sleep(1.0)
    redis_server.start()
    counts = write_until_done(client, db_path, workers)
    assert reviews(db_path) == reference
    assert counts["new"] == len(reference)
    assert_fetched_once_apart_from_requeued(site, since, client)
    assert all(w.returncode == 0 for w in workers)


def test_malformed_and_repeated_item_messages(db_path: Path, redis_server: RedisServer, tmp_path: Path) -> None:
    """Bad messages are dead-lettered with a counted reason; the same item twice is stored once."""
    db = connect(db_path)
    db.table("brands").insert({"id": "b", "name": "B"})
    db.table("sources").insert({"id": "s", "brand_id": "b", "url": "http://127.0.0.1/b"})
    client = streams.connect(redis_server.url)
    item: dict[str, Any] = {"id": "site:s:1", "source_id": "s", "brand_id": "b", "body": "Helpful agent.", "body_hash": "h1",
            "author_hash": "a1", "date_precision": "missing", "extra": {}, "truncated": False}  # fmt: skip
    good = stream_writer.item_fields(stream_writer.ReviewItem(**item), "test")
    bad = [
        {"v": "1", "data": "{not json"},
        {"v": "1", "data": json.dumps({**item, "id": 7})},
        {"v": "1", "data": json.dumps({**item, "surprise": 1})},
        {"v": "1", "kind": "score", "data": json.dumps(item)},
        {"data": json.dumps(item)},
        {"v": "1", "kind": "aggregate", "data": json.dumps({"source_id": "s", "seen_at": "x", "rating_value": "5"})},
    ]
    unknown_source = stream_writer.item_fields(stream_writer.ReviewItem(**{**item, "id": "site:x:1", "source_id": "x"}), "t")
    for fields in [good, *bad, good, unknown_source]:
        client.xadd(streams.ITEMS_STREAM, fields)  # type: ignore[arg-type]
    counts = drain_items(client, db)
    assert counts["malformed"] == len(bad)
    assert counts["store_failed"] == 1
    assert counts["new"] == 1 and counts["new"] + counts["unchanged"] + counts["merged"] == 2
    assert [r["id"] for r in rows(db_path, "SELECT id FROM reviews")] == ["site:s:1"]
    dead = streams.dead_letter_counts(client)
    assert dead == {(streams.ITEMS_STREAM, "malformed"): len(bad), (streams.ITEMS_STREAM, "store_failed"): 1}
    assert client.xlen(streams.DEAD_LETTER_STREAM) == len(bad) + 1
    assert round_done(client)  # all acknowledged
    db.close()


def test_crawl_side_names_agree_with_the_streams_library() -> None:
    """The crawler layer cannot import reputation.distributed.streams; its copies must not drift.

    (The frontier's own keys live in crawler.redis_frontier alone.)
    """
    assert redis_frontier.PAGES_STREAM == streams.PAGES_STREAM
    assert redis_frontier.DEAD_LETTER_STREAM == streams.DEAD_LETTER_STREAM
    assert redis_frontier.DEAD_LETTER_COUNTS == streams.DEAD_LETTER_COUNTS
    assert redis_frontier.REASON_MALFORMED == streams.REASON_MALFORMED
    assert redis_frontier.REASON_TOO_MANY_DELIVERIES == streams.REASON_TOO_MANY_DELIVERIES
    assert stream_writer.ITEMS_STREAM == streams.ITEMS_STREAM
    assert stream_writer.FORMAT_VERSION == streams.FORMAT_VERSION


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_models import build_classifier

    return build_classifier(tmp_path_factory.mktemp("model") / "tiny-bert", layers=1, model_id="test/tiny-bert")


def test_cli_crawl_enqueues_and_run_drives_the_workers(
    site: Site, reference: list[dict[str, Any]], single_db: Path, redis_server: RedisServer, tmp_path: Path,
    tiny_model: Path,
) -> None:
    """`crawl --redis` enqueues (and crawls nothing here); `run --redis` with two `worker crawl`
    processes crawls, ingests, scores and rolls up; a second `crawl --redis` finds nothing due."""
    from click.testing import CliRunner

    from reputation.cli import cli

    db_path = copy_db(site.template, tmp_path / "cli.db")
    unreachable = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", "--redis", "redis://127.0.0.1:9/0"])
    assert unreachable.exit_code != 0 and "unreachable" in unreachable.output
    assert len(unreachable.output.strip().splitlines()) == 1

    # `run` first; the workers once it has enqueued (they exit after the frontier stays empty 6 s, so
    # started earlier they could give up while `run` is still starting on two loaded cores).
    run_out, run_err = tmp_path / "run.out", tmp_path / "run.err"
    with run_out.open("wb") as stdout_file, run_err.open("wb") as stderr_file:
        run = subprocess.Popen(
            [sys.executable, "-m", "reputation.cli", "--db", str(db_path), "run", "--redis", redis_server.url,
             "--model", str(tiny_model)],
            cwd=ROOT, env=ENV, stdout=stdout_file, stderr=stderr_file,
        )  # fmt: skip
    client = streams.connect(redis_server.url)
    deadline = time.monotonic() + 300
    while not client.hlen(ROUND_KEY):
        assert run.poll() is None, run_err.read_text(errors="replace")[-3000:]
        if time.monotonic() > deadline:
            run.kill()
            raise AssertionError("`run --redis` enqueued nothing")
        time.sleep(0.1)
    settings = [arg for k, v in WORKER_SETTINGS.items() if k != "LOG_LEVEL" for arg in ("-s", f"{k}={v}")]
    argv = [sys.executable, "-m", "reputation.cli", "worker", "crawl", "--redis", redis_server.url,
            "--idle-exit", "6", "--lease-ttl", str(LEASE_TTL), *settings]  # fmt: skip
    logs = [tmp_path / f"cli-worker{i}.log" for i in range(2)]
    workers = []
    for log in logs:
        with log.open("wb") as out:
            workers.append(subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT))
    # Generous: after the crawl, `run` loads the model and scores on two busy cores (minutes).
    try:
        run.wait(timeout=1200)
    finally:
        if run.poll() is None:
            run.kill()
    stdout = run_out.read_text()
    assert run.returncode == 0, stdout + run_err.read_text(errors="replace")[-3000:]
    assert [line.split()[1:3] for line in stdout.splitlines()[:3]] == [["crawl", "ok"], ["score", "ok"], ["rollup", "ok"]]
    for worker in workers:
        assert worker.wait(timeout=600) == 0
    assert reviews(db_path) == reference
    scored = rows(db_path, "SELECT COUNT(DISTINCT review_id) AS n FROM review_sentiment")[0]["n"]
    assert scored == len(reference)
    crawl_run = rows(db_path, "SELECT * FROM crawl_runs WHERE stage = 'crawl' ORDER BY id DESC LIMIT 1")[0]
    assert crawl_run["status"] == "ok" and crawl_run["items_new"] == len(reference)
    assert aggregates(db_path) == aggregates(single_db) != []  # listings' own ratings, with the run
    assert source_rows(db_path) == source_rows(single_db)  # status, last crawl, last full crawl

    again = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", "--due-only", "--redis", redis_server.url])
    assert again.exit_code == 0, again.output
    assert again.output.startswith("enqueued 0 sources")


def test_crawl_then_ingest_records_the_round_as_a_single_machine_crawl(
    site: Site, reference: list[dict[str, Any]], single_db: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    """`crawl --redis`, workers, then `ingest --once` (once mid-crawl, once after): the sources' status,
    last crawl and next-due time and the run's counts are a single-machine crawl's; again changes nothing."""
    from click.testing import CliRunner

    from reputation.cli import cli

    db_path = copy_db(site.template, tmp_path / "ingest.db")
    client = streams.connect(redis_server.url)
    runner = CliRunner()
    enqueued = runner.invoke(cli, ["--db", str(db_path), "crawl", "--redis", redis_server.url])
    assert enqueued.exit_code == 0 and enqueued.output.startswith("enqueued "), enqueued.output
    status = runner.invoke(cli, ["workers", "status", "--redis", redis_server.url, "--json"])
    sources = json.loads(status.output)["crawl_round"]["sources"]
    assert sources > 10

    workers = [start_worker(redis_server.url, tmp_path / f"w{i}.log") for i in range(2)]
    deadline = time.monotonic() + 600
    while pages_done(client) < 5:
        assert time.monotonic() < deadline, "the workers fetched nothing"
        time.sleep(0.05)
    ingest = ["--db", str(db_path), "ingest", "--redis", redis_server.url, "--once", "--no-enqueue", "--json"]
    mid = runner.invoke(cli, ingest)
    assert mid.exit_code == 0, mid.output
    assert last_json(mid.output)["crawl_rounds"] == []  # pages still to fetch: the round is not over
    for worker in workers:
        assert worker.wait(timeout=600) == 0  # --idle-exit: the frontier stayed empty
    after = runner.invoke(cli, ingest)
    assert after.exit_code == 0, after.output
    (closed,) = last_json(after.output)["crawl_rounds"]

    assert reviews(db_path) == reference
    assert source_rows(db_path) == source_rows(single_db)
    assert closed["sources"] == dict(Counter(r["last_crawl_status"] for r in source_rows(single_db).values()))
    run, single_run = last_crawl_run(db_path), last_crawl_run(single_db)
    assert run["id"] == closed["run_id"] and run["status"] == "ok"
    for column in ("pages", "items_new", "items_updated", "items_dropped", "errors"):
        assert run[column] == single_run[column], column
    assert json.loads(run["detail"])["sources"] == json.loads(single_run["detail"])["sources"]
    assert aggregates(db_path) == aggregates(single_db)
    assert client.xlen(streams.ITEMS_STREAM) == 0  # stored, acknowledged, trimmed

    # Idempotent: a further ingest finds no round and changes nothing; nothing is due yet.
    before = rows(db_path, "SELECT * FROM sources ORDER BY id"), rows(db_path, "SELECT * FROM crawl_runs")
    again = runner.invoke(cli, ingest)
    assert again.exit_code == 0 and last_json(again.output)["crawl_rounds"] == [], again.output
    assert (rows(db_path, "SELECT * FROM sources ORDER BY id"), rows(db_path, "SELECT * FROM crawl_runs")) == before
    due = runner.invoke(cli, ["--db", str(db_path), "crawl", "--due-only", "--redis", redis_server.url])
    assert due.exit_code == 0 and due.output.startswith("enqueued 0 sources"), due.output


def test_a_dead_workers_leases_are_requeued_and_a_request_that_kills_every_worker_is_dead_lettered(
    redis_server: RedisServer,
) -> None:
    """The frontier's re-claim script on a real Redis: a live worker's lease stays, a dead one's goes back
    to the queue, and one whose workers died ``max_tries`` times goes to the dead-letter stream."""
    client = redis_frontier.connect(redis_server.url)
    client.set(redis_frontier.ALIVE_PREFIX + "alive", "1")
    leases = {"a": (b"req-of-live-worker", "alive"), "b": (b"req-of-dead-worker", "dead"), "c": (b"poison", "dead")}
    for lease, (data, worker) in leases.items():
        client.hset(redis_frontier.LEASES_KEY, lease, data)
        client.hset(redis_frontier.LEASE_OWNERS_KEY, lease, f"{worker}|-1|0")
    client.hset(redis_frontier.LEASE_TRIES_KEY, "c", 2)  # its workers died twice already

    dead, requeued = redis_frontier.reclaim_leases(client, max_tries=3)

    assert (dead, requeued) == (1, [b"req-of-dead-worker"])
    assert client.zrange(redis_frontier.REQUESTS_KEY, 0, -1, withscores=True) == [(b"req-of-dead-worker", -1.0)]
    assert client.hkeys(redis_frontier.LEASES_KEY) == [b"a"]
    assert client.hget(redis_frontier.DEAD_REQUESTS_KEY, "c") == b"poison"
    counts = streams.dead_letter_counts(streams.connect(redis_server.url))
    assert counts == {(redis_frontier.REQUESTS_KEY, streams.REASON_TOO_MANY_DELIVERIES): 1}
