"""Incremental re-crawls and removal marking, through the real crawl (a child Scrapy process) on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scrapy.utils.test import get_crawler
from servers import LocalServer
from test_crawl import FAST as CRAWL_FAST
from test_crawl import load_sources, review, rows, trust_page

from crawler.launcher import run_crawl
from crawler.sources import FULL, INCREMENTAL, crawl_kind, write_sources_file
from reputation.cli import cli
from reputation.commands.crawl import summary
from reputation.registry.loader import parse_registry, source_id
from spiders.reviews import ReviewsSpider
from storage.database import connect
from storage.errors import RegistryError
from storage.records import Source

# A loopback page comes back in milliseconds, but a loaded machine can stall the crawl's reactor
# past a 1 s timeout (its timers run before it reads the socket): a retry would change the counts.
FAST = {**CRAWL_FAST, "DOWNLOAD_TIMEOUT": 30}
PAGE_SIZE = 5
FIRST = "/listing/acme/"


def page_path(n: int) -> str:
    return FIRST if n == 1 else f"{FIRST}page/{n}/"


def publish(site: LocalServer, numbers: list[int]) -> int:
    """Serve reviews R<n> newest first (highest n first), PAGE_SIZE a page, linked by rel=next; return the pages."""
    ordered = sorted(numbers, reverse=True)
    chunks = [ordered[i : i + PAGE_SIZE] for i in range(0, len(ordered), PAGE_SIZE)]
    start = datetime(2024, 1, 1)
    for index, chunk in enumerate(chunks, start=1):
        found = [
            review(f"R{n}", f"Review number {n}: the agent answered on day {n}.",
                   date=(start + timedelta(days=n)).date().isoformat())
            for n in chunk
        ]  # fmt: skip
        following = page_path(index + 1) if index < len(chunks) else None
        site.route(page_path(index), trust_page(site.url(page_path(index)), found, next_href=following))
    return len(chunks)


def hits(site: LocalServer) -> dict[str, int]:
    return {path: len(site.hits_for(path)) for path in (page_path(n) for n in range(1, 5))}


def test_full_then_incremental_then_removal(tmp_path: Path, db_path: Path, local_server: LocalServer) -> None:
    site = local_server
    assert publish(site, list(range(1, 13))) == 3  # R12..R8 | R7..R3 | R2 R1
    load_sources(tmp_path, db_path, {"acme-air": [site.url(FIRST)]})
    listing = source_id(site.url(FIRST))

    # 1. Never crawled in full: a full crawl walks to the end.
    first = run_crawl(db_path, brands=["acme-air"], settings=FAST)
    assert hits(site) == {page_path(1): 1, page_path(2): 1, page_path(3): 1, page_path(4): 0}
    assert first["items_new"] == 12 and first["pages"] == 3
    crawl = first["detail"]["crawls"][listing]
    assert crawl["kind"] == FULL and crawl["pages"] == 3 and crawl["complete"] is True
    assert crawl["removed"] == 0 and first["detail"]["crawl_kinds"] == {FULL: 1}
    source = rows(db_path, "SELECT * FROM sources")[0]
    assert source["last_full_crawl_at"] and source["last_full_crawl_pages"] == 3
    assert source["full_crawl_interval_hours"] == 24 * 7

    # A scored review, to show that removal keeps the scores.
    r8 = f"site:{listing}:R8"
    db = connect(db_path)
    try:
        body_hash = db.execute("SELECT body_hash FROM reviews WHERE id = ?", [r8]).fetchone()[0]
        db.execute(
            "INSERT INTO review_sentiment (review_id, model_id, model_revision, body_hash, label, score, scored_at)"
            " VALUES (?, 'm', '1', ?, 'positive', 0.8, '2024-02-01T00:00:00+00:00')",
            [r8, body_hash],
        )
        db.conn.commit()
    finally:
        db.close()

    # 2. Three new reviews on top: the next crawl is incremental and stops at the first page of stored ones.
    assert publish(site, list(range(1, 16))) == 3  # R15..R11 | R10..R6 | R5..R1
    second = run_crawl(db_path, brands=["acme-air"], settings=FAST)
    assert hits(site) == {page_path(1): 2, page_path(2): 2, page_path(3): 1, page_path(4): 0}
    assert (second["items_new"], second["items_updated"], second["items_unchanged"]) == (3, 0, 7)
    assert second["pages"] == 2
    new_ids = {
        r["id"] for r in rows(db_path, "SELECT id FROM reviews WHERE first_crawl_run_id = ?", [second["id"]])
    }
    assert new_ids == {f"site:{listing}:R{n}" for n in (13, 14, 15)}
    crawl = second["detail"]["crawls"][listing]
    assert crawl == {"kind": INCREMENTAL, "pages": 2, "stopped": "stopped_no_new", "pages_saved": 1,
                     "complete": False, "removed": 0, "restored": 0}  # fmt: skip
    assert second["detail"]["stopped"] == {"stopped_no_new": 1}
    assert second["detail"]["pages_saved"] == 1
    text = summary(second)
    assert f"incremental {listing}: pages 2, stopped early (stopped_no_new), about 1 pages saved" in text
    assert "crawls: incremental 1; pages saved 1" in text
    # An incremental crawl does not count as the last full one.
    assert (
        rows(db_path, "SELECT last_full_crawl_at FROM sources")[0]["last_full_crawl_at"]
        == source["last_full_crawl_at"]
    )

    # 3. R8 taken down; the full-crawl interval has passed, so the next crawl is full and marks it removed.
    publish(site, [n for n in range(1, 16) if n != 8])  # R15..R11 | R10 R9 R7 R6 R5 | R4..R1
    week_ago = (datetime.now(UTC) - timedelta(days=8)).replace(microsecond=0).isoformat()
    db = connect(db_path)
    try:
        db.execute("UPDATE sources SET last_full_crawl_at = ?", [week_ago])
        db.conn.commit()
    finally:
        db.close()
    third = run_crawl(db_path, brands=["acme-air"], settings=FAST)
    assert hits(site) == {page_path(1): 3, page_path(2): 3, page_path(3): 2, page_path(4): 0}
    crawl = third["detail"]["crawls"][listing]
    assert crawl["kind"] == FULL and crawl["complete"] is True and crawl["removed"] == 1
    assert third["detail"]["removed"] == 1
    assert f"full {listing}: pages 3, whole listing: marked removed 1" in summary(third)
    stored = {r["id"]: r for r in rows(db_path, "SELECT * FROM reviews")}
    assert len(stored) == 15  # never deleted
    today = datetime.now(UTC).date().isoformat()
    assert stored[r8]["removed_at"] == today and "day 8" in stored[r8]["body"]
    assert [r for r in stored.values() if r["removed_at"]] == [stored[r8]]
    scores = rows(db_path, "SELECT * FROM review_sentiment WHERE review_id = ?", [r8])
    assert len(scores) == 1 and scores[0]["score"] == 0.8 and scores[0]["label"] == "positive"

    # 4. R8 back on the listing: a forced full crawl finds it and clears the mark.
    publish(site, list(range(1, 16)))
    fourth = run_crawl(db_path, brands=["acme-air"], full=True, settings=FAST)
    assert fourth["selection"]["full"] is True
    crawl = fourth["detail"]["crawls"][listing]
    assert crawl["kind"] == FULL and crawl["restored"] == 1 and crawl["removed"] == 0
    assert rows(db_path, "SELECT removed_at FROM reviews WHERE id = ?", [r8])[0]["removed_at"] is None


def test_a_full_crawl_cut_short_marks_nothing_removed(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    site = local_server
    publish(site, list(range(1, 13)))
    load_sources(tmp_path, db_path, {"acme-air": [site.url(FIRST)]})
    listing = source_id(site.url(FIRST))
    run_crawl(db_path, brands=["acme-air"], settings=FAST)

    # Page 3 now fails: the walk did not see R2 and R1, which must not be taken for removed.
    site.route(page_path(3), "gone for now", status=500)
    run = run_crawl(db_path, brands=["acme-air"], full=True, settings=FAST)
    crawl = run["detail"]["crawls"][listing]
    assert crawl["kind"] == FULL and crawl["complete"] is False and crawl["not_complete"] == "partial"
    assert crawl["removed"] == 0
    assert rows(db_path, "SELECT COUNT(*) AS n FROM reviews WHERE removed_at IS NOT NULL")[0]["n"] == 0
    assert "not the whole listing (partial): none marked removed" in summary(run)

    # The page budget cuts a full crawl short too (`reputation crawl --full`).
    publish(site, list(range(1, 13)))
    settings = [f"-s{key}={value}" for key, value in {**FAST, "REPUTATION_MAX_PAGES_PER_SOURCE": 2}.items()]
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "crawl", "--brand", "acme-air", "--full", *settings]
    )
    assert result.exit_code == 0, result.output
    assert (
        f"full {listing}: pages 2, not the whole listing (page_budget): none marked removed" in result.output
    )
    run = rows(db_path, "SELECT * FROM crawl_runs ORDER BY id DESC LIMIT 1")[0]
    assert json.loads(run["selection"])["full"] is True
    assert rows(db_path, "SELECT COUNT(*) AS n FROM reviews WHERE removed_at IS NOT NULL")[0]["n"] == 0


def test_a_listing_that_lost_most_of_its_reviews_is_not_marked(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    site = local_server
    publish(site, list(range(1, 13)))
    load_sources(tmp_path, db_path, {"acme-air": [site.url(FIRST)]})
    listing = source_id(site.url(FIRST))
    run_crawl(db_path, brands=["acme-air"], settings=FAST)

    publish(site, [12, 11])  # one page left: more likely a changed site than ten take-downs
    run = run_crawl(db_path, brands=["acme-air"], full=True, settings=FAST)
    crawl = run["detail"]["crawls"][listing]
    assert (
        crawl["complete"] is True and crawl["removed"] == 0 and crawl["removal_skipped"] == "too_many_unseen"
    )
    assert rows(db_path, "SELECT COUNT(*) AS n FROM reviews WHERE removed_at IS NOT NULL")[0]["n"] == 0


def _source(**fields: Any) -> Source:
    return Source("s", "b", "http://127.0.0.1/", "auto", 24.0, None, **fields)


def test_crawl_kind_follows_the_full_crawl_interval() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert crawl_kind(_source(), now) == FULL  # never crawled in full
    recent = _source(last_full_crawl_at=(now - timedelta(days=2)).isoformat())
    assert crawl_kind(recent, now) == INCREMENTAL
    assert crawl_kind(recent, now, full=True) == FULL
    old = _source(last_full_crawl_at=(now - timedelta(days=7)).isoformat())
    assert crawl_kind(old, now) == FULL  # exactly the default 7 days
    hourly = _source(last_full_crawl_at="2026-03-10T10:00:00", full_crawl_interval_hours=2.0)
    assert crawl_kind(hourly, now) == FULL  # a naive time is UTC


REGISTRY = """\
vendors:
  - id: acme
    name: Acme
brands:
  - id: northwind
    name: Northwind
    sources:
      - url: https://www.trustpilot.com/review/northwind.example
        {extra}
"""


def test_registry_full_crawl_interval() -> None:
    default = parse_registry(REGISTRY.format(extra=""), "v.yaml").sources[0]
    assert default.full_crawl_interval_hours == 24 * 7
    given = parse_registry(REGISTRY.format(extra="full_crawl_interval_hours: 72"), "v.yaml").sources[0]
    assert given.full_crawl_interval_hours == 72
    slow = parse_registry(REGISTRY.format(extra="crawl_interval_hours: 400"), "v.yaml").sources[0]
    assert slow.full_crawl_interval_hours == 400  # the default never undercuts the crawl interval
    bad = {
        "full_crawl_interval_hours: 12\n        crawl_interval_hours: 24":
            "v.yaml:9: brands[0].sources[0].full_crawl_interval_hours: 12 must be at least crawl_interval_hours (24)",
        "full_crawl_interval_hours: weekly":
            "brands[0].sources[0].full_crawl_interval_hours: 'weekly' must be a number",
        "full_crawl_interval: 72":
            "unknown key (did you mean 'full_crawl_interval_hours'?",
    }  # fmt: skip
    for extra, words in bad.items():
        with pytest.raises(RegistryError) as info:
            parse_registry(REGISTRY.format(extra=extra), "v.yaml")
        assert words in str(info.value), str(info.value)


def test_an_incremental_crawl_starts_from_the_newest_first_first_page(tmp_path: Path) -> None:
    recent = datetime.now(UTC).isoformat()
    url = "https://www.trustpilot.com/review/acme.example?page=4&languages=en"
    sources = [
        Source("tp", "acme", url, "auto", 24.0, recent, "ok", last_full_crawl_at=recent),
        Source("new", "acme", "https://www.trustpilot.com/review/other.example?page=2", "auto", 24.0, None),
    ]
    handoff = tmp_path / "sources.json"
    write_sources_file(handoff, {"vendors": [], "brands": ["acme"], "due_only": False}, sources)
    crawler = get_crawler(ReviewsSpider)
    spider = ReviewsSpider.from_crawler(crawler, sources_file=str(handoff))
    crawler.spider = spider
    crawler.stats.open_spider()
    starts = [request.url for request in spider.start_requests()]
    assert starts == [
        "https://www.trustpilot.com/review/acme.example?languages=en&sort=recency",
        "https://www.trustpilot.com/review/other.example?page=2",  # full: the registered URL as it is
    ]
    assert spider.kinds == {"tp": INCREMENTAL, "new": FULL}
    assert crawler.stats.get_value("reputation/source_kind/tp") == INCREMENTAL
