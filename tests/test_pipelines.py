"""Item pipelines and review identity, on a real Scrapy crawler object and a real SQLite file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler import stat_keys as keys
from crawler.identity import AUTHOR_KEY_ENV, AUTHOR_KEY_SETTING, author_hash, author_key, review_id
from crawler.items import ReviewItem
from crawler.pipelines import DedupePipeline, NormalizePipeline, StorePipeline, ValidatePipeline
from crawler.pipelines.store import run_status
from storage.database import connect

SOURCE_URL = "http://127.0.0.1:8000/trust/acme/"


def crawler_for(db_path: Path, **settings: object) -> Crawler:
    crawler = get_crawler(settings_dict={"REPUTATION_DB": str(db_path), **settings})
    crawler.stats = MemoryStatsCollector(crawler)
    return crawler


def seed(db_path: Path) -> str:
    """A brand and one source, inserted directly; returns the source id."""
    db = connect(db_path)
    try:
        db.table("brands").insert({"id": "acme", "name": "Acme"})
        db.table("sources").insert({"id": "src1", "brand_id": "acme", "url": SOURCE_URL})
    finally:
        db.close()
    return "src1"


def item(**fields: object) -> ReviewItem:
    base: dict[str, object] = {
        "body": "The agent solved it in minutes.", "author": "Ana P.", "site_review_id": "T1",
        "brand_id": "acme", "source_id": "src1", "url": SOURCE_URL, "date_raw": "2024-05-03",
        "rating_value": 4, "rating_min": 1, "rating_max": 5, "crawled_at": "2024-06-01T12:00:00+00:00",
    }  # fmt: skip
    base.update(fields)
    return ReviewItem(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"body": None}, "missing_body"),
        ({"body": "   \n"}, "missing_body"),
        ({"brand_id": None}, "missing_brand"),
        ({"source_id": None}, "missing_source"),
    ],
)
def test_validate_drops_with_reason(db_path: Path, fields: dict[str, object], reason: str) -> None:
    crawler = crawler_for(db_path)
    pipeline = ValidatePipeline.from_crawler(crawler)
    with pytest.raises(DropItem, match=reason):
        pipeline.process_item(item(**fields))
    assert crawler.stats.get_value(keys.DROPPED + reason) == 1
    good = item()
    assert pipeline.process_item(good) is good


def test_normalize_fills_derived_fields(db_path: Path) -> None:
    out = NormalizePipeline.from_crawler(crawler_for(db_path)).process_item(item())
    assert out.published_at == "2024-05-03" and out.date_precision == "exact"
    assert out.rating == pytest.approx(0.75)


def test_review_id_is_stable_and_site_based_when_possible() -> None:
    common = {"source_url": SOURCE_URL, "source_id": "src1", "author": "Ana P.", "published_at": "2024-05-03",
              "date_precision": "exact", "body": "Great  help"}  # fmt: skip
    assert review_id(site_review_id=" T1 ", **common) == "site:127.0.0.1:T1"
    hashed = review_id(site_review_id=None, **common)
    assert hashed.startswith("h:") and len(hashed) == 2 + 32
    assert hashed == review_id(site_review_id=None, **common)
    # Whitespace and case do not make a new review; other text or author does.
    assert review_id(site_review_id=None, **{**common, "body": "great help ", "author": "ana p."}) == hashed
    assert review_id(site_review_id=None, **{**common, "body": "Poor help"}) != hashed
    assert review_id(site_review_id=None, **{**common, "source_id": "src2"}) != hashed
    # Relative dates drift between crawls, so they stay out of the hash.
    relative = {**common, "date_precision": "relative"}
    assert review_id(site_review_id=None, **relative) == review_id(
        site_review_id=None, **{**relative, "published_at": "2024-05-10"}
    )


def test_author_hash_is_keyed_not_plain(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTHOR_KEY_ENV, raising=False)
    db = connect(db_path)
    try:
        key = author_key(db)
        assert author_key(db) == key  # created once, then reused
        stored = db.execute("SELECT value FROM app_settings WHERE key = ?", [AUTHOR_KEY_SETTING]).fetchone()[
            0
        ]
        assert stored.encode() == key and len(stored) == 64
    finally:
        db.close()
    pseudonym = author_hash("Ana P.", key)
    assert pseudonym == author_hash("  ana p. ", key)
    assert pseudonym not in {
        hashlib.sha256(name.encode()).hexdigest()[:32] for name in ("Ana P.", "ana p.")
    }  # not a plain hash anyone could recompute
    assert author_hash("Ana P.", b"another key") != pseudonym
    assert author_hash(None, key) is None and author_hash(" ", key) is None
    monkeypatch.setenv(AUTHOR_KEY_ENV, "from-the-environment")
    db = connect(db_path)
    try:
        assert author_key(db) == b"from-the-environment"
    finally:
        db.close()


def test_dedupe_assigns_ids_and_drops_repeats(db_path: Path) -> None:
    seed(db_path)
    crawler = crawler_for(db_path)
    pipeline = DedupePipeline.from_crawler(crawler)
    pipeline.open_spider()
    first = pipeline.process_item(item())
    assert first.id == "site:127.0.0.1:T1"
    assert first.body_hash == hashlib.sha256(first.body.encode()).hexdigest()  # type: ignore[union-attr]
    assert first.author_hash and first.author_hash != "Ana P."
    with pytest.raises(DropItem, match="duplicate_in_run"):
        pipeline.process_item(item())
    assert crawler.stats.get_value(keys.DROPPED + "duplicate_in_run") == 1
    no_id = pipeline.process_item(item(site_review_id=None))
    assert no_id.id is not None and no_id.id.startswith("h:")


def test_store_batches_and_records_the_run(db_path: Path) -> None:
    seed(db_path)
    crawler = crawler_for(db_path, REPUTATION_BATCH_SIZE=2)
    dedupe, store = DedupePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)
    dedupe.open_spider()
    store.open_spider()
    running = connect(db_path)
    try:
        assert running.execute("SELECT status FROM crawl_runs").fetchall() == [("running",)]
    finally:
        running.close()
    crawler.stats.set_value(keys.SOURCES, ["src1"])
    crawler.stats.inc_value(keys.PAGES, 2)
    crawler.stats.inc_value(keys.DROPPED + "missing_body")
    for n in range(3):
        store.process_item(dedupe.process_item(item(site_review_id=f"T{n}", body=f"Review number {n}.")))
    assert store.counts["new"] == 2  # one full batch already written, one item still buffered
    store.close_spider()
    store.spider_closed(None, "finished")

    db = connect(db_path)
    try:
        run = dict(
            zip(
                [c.name for c in db["crawl_runs"].columns],
                db.execute("SELECT * FROM crawl_runs").fetchone(),
                strict=True,
            )
        )
        assert run["status"] == "ok" and run["pages"] == 2 and run["items_new"] == 3
        assert json.loads(run["dropped_by_reason"]) == {"missing_body": 1} and run["items_dropped"] == 1
        assert db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 3
        assert db.execute("SELECT last_crawl_status FROM sources").fetchone()[0] == "ok"
    finally:
        db.close()


def test_store_writes_a_partial_batch_once_the_flush_interval_passes(db_path: Path) -> None:
    seed(db_path)
    crawler = crawler_for(db_path, REPUTATION_BATCH_SIZE=1000, REPUTATION_FLUSH_SECONDS=0.0)
    dedupe, store = DedupePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)
    dedupe.open_spider()
    store.open_spider()
    store.process_item(dedupe.process_item(item(site_review_id="T1", body="Written without waiting.")))
    reader = connect(db_path)  # another connection sees it: the batch is committed
    try:
        assert reader.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 1
    finally:
        reader.close()
    store.close_spider()
    assert store.db is not None
    store.db.close()


def test_run_status() -> None:
    assert run_status("finished", ["a", "b"], {"a": "http_500"}, False) == "ok"
    assert run_status("finished", ["a"], {"a": "http_500"}, False) == "failed"
    assert run_status("finished", [], {}, False) == "ok"
    assert run_status("finished", ["a"], {}, True) == "failed"
    assert run_status("shutdown", ["a"], {}, False) == "interrupted"
    assert run_status("closespider_itemcount", ["a"], {}, False) == "ok"
