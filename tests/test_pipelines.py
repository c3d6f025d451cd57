"""Item pipelines and review identity, on a real Scrapy crawler object and a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from crawl_support import rows as real_rows
from real_site import crawl, needs_real_pages, register, serve
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler
from servers import LocalServer
from twisted.python.failure import Failure

from crawler import stat_keys as keys
from crawler.crawl_db import CrawlDatabase
from crawler.identity import AUTHOR_KEY_ENV, AUTHOR_KEY_SETTING, author_hash, author_key, review_id
from crawler.items import ReviewItem, ReviewPage
from crawler.pipelines import DedupePipeline, NormalizePipeline, StorePipeline, ValidatePipeline
from crawler.pipelines.store import run_status
from storage.database import connect
from storage.runlog import load_run

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
    common = {"source_id": "src1", "author": "Ana P.", "published_at": "2024-05-03",
              "date_precision": "exact", "body": "Great  help"}  # fmt: skip
    assert review_id(site_review_id=" T1 ", **common) == "site:src1:T1"  # tied to the listing, not the host
    assert review_id(site_review_id="T1", **{**common, "source_id": "src2"}) == "site:src2:T1"
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
        # kept beside the database, readable by its owner only, never inside it
        key_file = db_path.with_name(db_path.name + ".key")
        assert key_file.read_text().strip().encode() == key and len(key) == 64
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert db.execute(
            "SELECT COUNT(*) FROM app_settings WHERE key = ?", [AUTHOR_KEY_SETTING]
        ).fetchone() == (0,)
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
    assert first.id == "site:src1:T1"
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
    crawler.stats.inc_value(keys.SOURCE_REVIEWS + "src1", 4)  # the spider counts what its pages gave
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


def test_pipelines_share_one_connection_and_the_store_owns_the_run_row(db_path: Path, tmp_path: Path) -> None:
    seed(db_path)
    crawler = crawler_for(db_path, REPUTATION_RUN_ID_FILE=str(tmp_path / "run_id"))
    dedupe, store = DedupePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)
    dedupe.open_spider()
    store.open_spider()
    holder = CrawlDatabase.of(crawler)
    assert dedupe.database is holder and store.database is holder and store.db is holder.open()

    assert store.run_id is not None
    assert (tmp_path / "run_id").read_text() == f"{store.run_id}\n"  # for the launcher
    assert crawler.stats.get_value("reputation/crawl_run_id") == store.run_id
    assert store.db is not None
    row = load_run(store.db, store.run_id)
    assert row["status"] == "running" and row["pid"] == os.getpid() and row["stage"] == "crawl"

    store.spider_closed(None, "finished")
    assert holder.is_open  # the run is recorded on the shared connection, which stays open...
    assert load_run(store.db, store.run_id)["status"] == "ok"
    crawler.signals.send_catch_log(signal=signals.engine_stopped)
    assert not holder.is_open  # ...until the engine stops


# --------------------------------------------------------------------------- new fields, aggregates, concurrency


@needs_real_pages
def test_reply_truncation_extra_and_the_listing_aggregate_are_stored(
    db_path: Path, local_server: LocalServer
) -> None:
    pages = {"calo": "trustpilot_calo_2026.html", "kranj": "tripadvisor_kranjhouse_attraction_2019.html",
             "amazon": "amazon_5lovelanguages_2020.html"}  # fmt: skip
    ids = register(db_path, [(brand, serve(local_server, name), "auto") for brand, name in pages.items()])
    run = crawl(db_path)
    calo = real_rows(db_path, "SELECT body, reply FROM reviews WHERE brand_id = 'calo'")
    assert len(calo) == 20 and all(r["reply"] for r in calo)  # every review answered by the company...
    for r in calo:  # ...and no answer inside the scored text
        assert " ".join(r["reply"].split())[:60] not in " ".join(r["body"].split())
    kranj = real_rows(db_path, "SELECT truncated FROM reviews WHERE brand_id = 'kranj' ORDER BY rowid")
    assert [n for n, r in enumerate(kranj, 1) if r["truncated"]] == [2, 3, 4, 5, 8]
    amazon = real_rows(db_path, "SELECT extra FROM reviews WHERE brand_id = 'amazon'")
    assert len(amazon) == 10 and all(json.loads(r["extra"])["verified_purchase"] is True for r in amazon)
    aggregates = {
        r["source_id"]: (r["rating_value"], r["rating_min"], r["rating_max"], r["review_count"])
        for r in real_rows(db_path, "SELECT * FROM source_aggregates WHERE crawl_run_id = ?", [run["id"]])
    }
    assert aggregates == {
        ids["calo"]: (4.3, 1.0, 5.0, 308),
        ids["kranj"]: (4.5, 1.0, 5.0, 34),
        ids["amazon"]: (4.8, 1.0, 5.0, 20943),
    }
    second = crawl(db_path)  # one row per source and crawl
    count = real_rows(
        db_path, "SELECT crawl_run_id, COUNT(*) AS n FROM source_aggregates GROUP BY 1 ORDER BY 1"
    )
    assert count == [{"crawl_run_id": run["id"], "n": 3}, {"crawl_run_id": second["id"], "n": 3}]


def _listing_page(page_url: str, first: int, count: int, next_href: str | None) -> str:
    graph = [
        {"@type": "Review", "@id": f"{page_url}#r-R{n}", "reviewBody": f"Review number {n} about the helpdesk.",
         "datePublished": "2024-05-03", "author": {"@type": "Person", "name": f"Author {n}"},
         "reviewRating": {"ratingValue": 1 + n % 5, "bestRating": 5, "worstRating": 1}}
        for n in range(first, first + count)
    ]  # fmt: skip
    data = json.dumps({"@context": "https://schema.org", "@graph": graph})
    rel = f'<link rel="next" href="{next_href}">' if next_href else ""
    return f'<html><head>{rel}<script type="application/ld+json">{data}</script></head><body></body></html>'


def test_two_concurrent_crawls_of_one_source_store_each_review_once(
    db_path: Path, local_server: LocalServer
) -> None:
    """Two real crawl processes write the same new ids at the same time; no batch may be lost."""
    pages, per_page = 6, 40
    for p in range(1, pages + 1):
        path = "/list/acme/" if p == 1 else f"/list/acme/page/{p}/"
        nxt = f"/list/acme/page/{p + 1}/" if p < pages else None
        local_server.route(path, _listing_page(local_server.url(path), (p - 1) * per_page, per_page, nxt))
    register(db_path, [("acme", local_server.url("/list/acme/"), "auto")])
    results: list[Any] = [None, None]

    def one(index: int) -> None:
        try:
            results[index] = crawl(db_path, REPUTATION_BATCH_SIZE=1)
        except BaseException as exc:  # reported below, on the test's thread
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for result in results:
        assert not isinstance(result, BaseException), result
    assert all(r["errors_by_reason"] == {} for r in results)  # no store_failed batch
    assert real_rows(db_path, "SELECT COUNT(*) AS n FROM reviews") == [{"n": pages * per_page}]
    assert sum(r["items_new"] for r in results) == pages * per_page
    assert (
        sum(r["items_new"] + r["items_unchanged"] + r["items_updated"] for r in results)
        == 2 * pages * per_page
    )


def test_an_item_a_pipeline_failed_on_is_counted_not_lost_silently(db_path: Path) -> None:
    crawler = crawler_for(db_path)
    store = StorePipeline.from_crawler(crawler)  # signal receivers are weak references: keep it alive
    try:
        raise ValueError("a bug in a pipeline")
    except ValueError:
        failure = Failure()
    crawler.signals.send_catch_log(
        signals.item_error, item=ReviewItem(body="x"), response=None, spider=None, failure=failure
    )
    assert crawler.stats.get_value(keys.DROPPED + "pipeline_error") == 1
    assert store.run_id is None  # counted without opening anything


def test_a_page_item_runs_each_review_through_every_step_and_counts_each_drop(db_path: Path) -> None:
    """The spider yields one ReviewPage per listing page; each of its reviews is handled as alone."""
    seed(db_path)
    crawler = crawler_for(db_path)
    validate, normalize = ValidatePipeline.from_crawler(crawler), NormalizePipeline.from_crawler(crawler)
    dedupe, store = DedupePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)
    dedupe.open_spider()
    store.open_spider()
    page = ReviewPage(
        [
            item(site_review_id="P1", body="First <b>good</b> review."),
            item(site_review_id="P2", body=None),  # missing_body
            item(site_review_id="P3", body="<p> </p>"),  # empty_after_cleaning
            item(site_review_id="P1", body="First good review."),  # duplicate_in_run
            item(site_review_id="P4", body="Second good review.", date_raw="3 weeks ago"),
        ],
        url=SOURCE_URL,
    )
    checked = validate.process_item(page)
    assert isinstance(checked, ReviewPage)
    out = store.process_item(dedupe.process_item(normalize.process_item(checked)))
    assert out is page
    assert [r.id for r in page.reviews] == ["site:src1:P1", "site:src1:P4"]
    assert page.reviews[0].body == "First good review."
    assert page.reviews[1].published_at == "2024-05-11" and page.reviews[1].date_precision == "relative"
    for reason in ("missing_body", "empty_after_cleaning", "duplicate_in_run"):
        assert crawler.stats.get_value(keys.DROPPED + reason) == 1
    store.close_spider()
    assert store.counts["new"] == 2
    assert {row["id"] for row in real_rows(db_path, "SELECT id FROM reviews")} == {"site:src1:P1", "site:src1:P4"}
    # a page a pipeline raised on loses all its reviews, each counted
    try:
        raise ValueError("a bug in a pipeline")
    except ValueError:
        failure = Failure()
    crawler.signals.send_catch_log(signals.item_error, item=ReviewPage([item(), item()]), response=None,
                                   spider=None, failure=failure)  # fmt: skip
    assert crawler.stats.get_value(keys.DROPPED + "pipeline_error") == 2
