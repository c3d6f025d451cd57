"""The writer's RoundWatch on a real redis-server: the pages stream read once, and one settle rule.

Page records, frontier entries and item messages are written by hand with the keys the workers and
the enqueuer use, and the settle timer runs on a clock the test moves, so nothing here waits on time.
Covers: each poll reads only the records added since the last one, and the tallies equal a full
scan of the round's pages (crawler faults, skips, stops and records of an older worker included);
a new round starts them afresh; a source's stop reason kept by the spider's rule; the settle
timer's reset rule (RoundWatch's docstring); and closing a round with the tallies read, plus the
pages recorded after the last poll.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from crawl_support import load_sources
from redis_server import RedisServer

from crawler import stat_keys as keys
from crawler.redis_frontier import START_KEY
from reputation.distributed import streams
from reputation.distributed.enqueue import ROUND_KEY, ROUND_SINCE_KEY, enqueue_due_at
from reputation.distributed.rounds import NOT_FETCHED, PageTally, RoundWatch, round_pages, round_sources
from reputation.registry.loader import source_id
from storage.database import connect

SETTLE = 30.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = streams.connect(redis_server.url, wait=False)
    streams.ensure_groups(client)
    yield client
    client.close()


def open_round(client: redis.Redis, since: str, *sources: str) -> None:
    """A round of ``sources`` that began at stream id ``since``, as reputation.distributed.enqueue records it."""
    client.set(ROUND_SINCE_KEY, since)
    for source in sources:
        client.hset(ROUND_KEY, source, json.dumps({"at": "2026-01-01T00:00:00+00:00", "kind": "full"}))


def record(client: redis.Redis, entry_id: str, source: str, **fields: str) -> None:
    """A worker's page record (spiders.frontier.FrontierReviewsSpider.page_done), at ``entry_id``."""
    base: dict[Any, Any] = {"url": f"http://127.0.0.1:9/{source}/", "source_id": source, "status": "200", "items": "1",
            "error": "", "stop": "", "skipped": "", "empty": "", "dropped": "0", "worker": "w"}  # fmt: skip
    base.update(fields)
    client.xadd(streams.PAGES_STREAM, base, id=entry_id)


# What workers record: a page with reviews, failures (first page and later), a skip, a stop, an empty
# page, drops, a record of an older worker (no walk report) and of a source outside the round.
VARIED: list[tuple[str, dict[str, str]]] = [
    ("a", {}),
    ("a", {"stop": "stopped_repeating"}),
    ("a", {"items": "0", "empty": "captcha"}),
    ("b", {"status": "500", "items": "0"}),
    ("b", {"items": "0", "error": "timeout"}),
    ("b", {"items": "0", "status": "0", "skipped": "robots_txt", "stop": "robots_txt"}),
    ("c", {"dropped": "2"}),
    ("c", {"stop": "page_budget"}),
    ("d", {"items": "0"}),
]


def test_each_poll_reads_only_new_records_and_the_tallies_equal_a_full_scan(client: redis.Redis) -> None:
    record(client, "5-0", "a", status="404", items="0")  # the last round's page: before this one began
    open_round(client, "10-0", "a", "b", "c")
    watch = RoundWatch()
    assert watch.read(client) == 0
    for n, (source, fields) in enumerate(VARIED[:4]):
        record(client, f"{11 + n}-0", source, **fields)
    assert watch.read(client) == 4
    for n, (source, fields) in enumerate(VARIED[4:]):
        record(client, f"{20 + n}-0", source, **fields)
    legacy: dict[Any, Any] = {
        "url": "http://127.0.0.1:9/c/",
        "source_id": "c",
        "status": "200",
        "items": "3",
    }  # no ``stop``
    client.xadd(streams.PAGES_STREAM, legacy, id="30-0")
    # More records than one XRANGE reads, read from where the last poll stopped.
    pipe = client.pipeline(transaction=False)
    for n in range(10_050):
        pipe.xadd(
            streams.PAGES_STREAM, {"source_id": "e", "status": "200", "items": "1", "stop": ""}, id=f"31-{n}"
        )
    pipe.execute()
    assert watch.read(client) == len(VARIED) - 4 + 1 + 10_050
    assert watch.read(client) == 0  # nothing new: nothing read again

    assert watch.pages == round_pages(client, "10-0")
    a, b, c = watch.pages["a"], watch.pages["b"], watch.pages["c"]
    assert (a.pages, a.with_items, a.empty, a.empty_kind, a.stopped, a.first_failed) == (
        3, 2, 1, "captcha", "stopped_repeating", None
    )  # fmt: skip
    assert (b.pages, dict(b.errors), dict(b.skipped), b.first_failed) == (
        2, {"http_500": 1, "timeout": 1}, {"robots_txt": 1}, "http_500"
    )  # fmt: skip
    assert (c.dropped, c.stopped, c.reported) == (2, "page_budget", False)
    assert watch.pages["e"].pages == 10_050

    # A new round (the last one closed, another enqueued): its own pages only.
    client.delete(ROUND_KEY)
    open_round(client, "40-0", "a")
    record(client, "41-0", "a", items="0", empty="not_found")
    assert watch.read(client) == 1
    assert watch.pages == round_pages(client, "40-0")
    assert set(watch.pages) == {"a"} and watch.pages["a"].empty_kind == "not_found"


def test_the_settle_timer_restarts_whenever_the_round_moves(client: redis.Redis) -> None:
    """A round whose source ``b`` never records a page closes after SETTLE seconds of a quiet, still round."""
    clock = Clock()
    open_round(client, "10-0", "a", "b")
    client.rpush(START_KEY, "{}")  # start entries not yet taken: the frontier is not empty
    watch = RoundWatch(settle=SETTLE, clock=clock)
    ids = iter(f"{n}-0" for n in range(11, 100))

    def stays_open_until(start: float) -> None:
        """The timer (re)started at ``start``: the round is not over just before SETTLE has passed."""
        clock.now = start + SETTLE - 0.5
        assert not watch.over(client)

    assert not watch.over(client)
    clock.now = 1000.0
    assert not watch.over(client)  # however long the frontier is busy, it is not settling
    client.delete(START_KEY)
    assert not watch.over(client)  # the first quiet poll starts the timer
    stays_open_until(1000.0)

    record(client, next(ids), "a")  # a page recorded
    assert not watch.over(client)
    stays_open_until(clock.now)

    assert not watch.over(client, progress=True)  # the writer stored items
    stays_open_until(clock.now)

    client.rpush(START_KEY, "{}")  # the frontier busy again, however briefly
    assert not watch.over(client)
    client.delete(START_KEY)
    assert not watch.over(client)
    stays_open_until(clock.now)

    client.xadd(streams.ITEMS_STREAM, {"kind": "review"})  # an item not yet stored
    assert not watch.over(client)
    delivered: Any = client.xreadgroup(streams.WRITER_GROUP, "test", {streams.ITEMS_STREAM: ">"})
    assert not watch.over(client)  # delivered, not yet acknowledged: still pending
    client.xack(streams.ITEMS_STREAM, streams.WRITER_GROUP, *[i for i, _ in delivered[0][1]])
    assert not watch.over(client)
    stays_open_until(clock.now)

    open_round(client, "10-0", "c")  # a source joins the round
    assert not watch.over(client)
    start = clock.now
    stays_open_until(start)

    clock.now = start + SETTLE
    assert watch.over(client)  # quiet and still for SETTLE seconds: over, though b never recorded a page


def test_a_round_whose_every_source_recorded_a_page_is_over_at_the_first_quiet_poll(
    client: redis.Redis,
) -> None:
    clock = Clock()
    open_round(client, "10-0", "a", "b")
    record(client, "11-0", "a")
    record(client, "12-0", "b", status="500", items="0")
    client.rpush(START_KEY, "{}")
    watch = RoundWatch(settle=SETTLE, clock=clock)
    assert not watch.over(client)  # the frontier is not empty
    client.delete(START_KEY)
    assert watch.over(client)
    client.delete(ROUND_KEY)
    assert not watch.over(client)  # no round: never over


def test_finish_records_the_round_with_the_tallies_read_and_the_pages_since(
    tmp_path: Path, redis_server: RedisServer, client: redis.Redis
) -> None:
    urls = {"brand-a": ["http://127.0.0.1:9/a/"], "brand-b": ["http://127.0.0.1:9/b/"],
            "brand-c": ["http://127.0.0.1:9/c/"]}  # fmt: skip
    db_path = tmp_path / "reputation.db"
    load_sources(tmp_path, db_path, urls)
    a, b, c = (source_id(u[0]) for u in urls.values())
    enqueue_due_at(str(db_path), redis_server.url, due_only=False)
    assert set(round_sources(client)) == {a, b, c}
    client.delete(START_KEY)  # the workers took the start entries
    watch = RoundWatch(settle=SETTLE, clock=Clock())
    client.xadd(streams.PAGES_STREAM, {"source_id": a, "status": "500", "items": "0", "stop": ""})
    assert not watch.over(client)  # b and c have no page yet
    client.xadd(
        streams.PAGES_STREAM, {"source_id": b, "status": "200", "items": "0", "stop": "", "empty": "captcha"}
    )
    db = connect(db_path)
    try:
        closed = watch.finish(client, db)  # c was never fetched
        assert watch.pages == {} and watch.since is None
        assert watch.finish(client, db) is None  # no round left
    finally:
        db.close()
    assert closed is not None and closed.pages == 2
    assert closed.sources[a] == "failed: http_500"
    assert closed.sources[b] == "empty: captcha"  # recorded after the last poll
    assert closed.sources[c] == f"failed: {NOT_FETCHED}"
    assert not client.exists(ROUND_KEY)


def test_a_tally_keeps_the_stop_reason_by_the_spiders_rule() -> None:
    """One rule (crawler.stat_keys.later_stop_replaces) for the spider and the writer's tallies: the first
    reason a walk ended early is kept, but a repeating page (how some sites end a listing) gives way."""
    assert [keys.later_stop_replaces(n) for n in (None, "", keys.STOPPED_REPEATING, keys.PAGE_BUDGET)] == [
        True, True, True, False
    ]  # fmt: skip
    tally = PageTally()
    for reason in (keys.STOPPED_REPEATING, keys.STOPPED_REPEATING):
        tally.note_stopped(reason)
    assert tally.stopped == keys.STOPPED_REPEATING
    for reason in (keys.PAGE_BUDGET, "robots_txt", keys.STOPPED_REPEATING):
        tally.note_stopped(reason)
    assert tally.stopped == keys.PAGE_BUDGET
