"""Write reviews to SQLite in batches and record the crawl in the run log (``crawl_runs``).

This pipeline owns the crawl's run-log row: it opens it when the spider opens (status
``running``, this process's pid and host, through storage.runlog), so a crawl that is killed
stays visible and is marked ``interrupted`` by the next run, and it closes it when the spider
closes. When ``REPUTATION_RUN_ID_FILE`` is set, the row's id is written there for the
launcher. Each batch is matched and written by crawler.pipelines.review_writer inside one
write transaction: new reviews are inserted; known ones get ``last_seen`` moved on; an edited
body replaces the stored one and the earlier hash is kept in ``previous_body_hashes``. The
listings' own aggregate ratings (signal ``crawler.aggregates.aggregate_found``) land in
``source_aggregates`` with the batch.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils
from scrapy import signals
from twisted.internet import task

from crawler import stat_keys as keys
from crawler.aggregates import SourceAggregate, aggregate_found
from crawler.crawl_db import CrawlDatabase
from crawler.items import ReviewItem, ReviewOrPage, ReviewPage, reviews_of
from crawler.pipelines.review_writer import REVIEW_COLUMNS, write_batch
from crawler.removals import (
    REMOVAL_MAX_SHARE,
    REMOVAL_MAX_SHARE_SETTING,
    SourceCrawl,
    record_source_crawls,
    record_source_outcomes,
    source_crawl,
)
from crawler.source_status import outcome_from_stats, source_status
from storage.database import transaction, utcnow
from storage.runlog import RunStatus, finish_run, start_run

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

__all__ = ["REVIEW_COLUMNS", "StorePipeline", "run_status", "write_run_id"]

# Page cache for the crawl's connection: the reviews indexes are keyed by id, brand, source and
# author, so each batch touches pages all over them; with SQLite's 2 MB default they are read
# back from the OS on every batch. A longer WAL between checkpoints (about 40 MB instead of 4)
# lets a page that several batches touch be copied into the file once, not once per batch.
CACHE_KIB = 64 * 1024
WAL_AUTOCHECKPOINT_PAGES = 10_000
FAILED_REASONS = frozenset({"closespider_errorcount"})
STORE_FAILED = "store_failed"


def write_run_id(path: str | os.PathLike[str], run_id: int) -> None:
    """Tell the launcher which row is this crawl's: written whole, or not at all."""
    target = Path(path)
    partial = target.with_name(target.name + ".part")
    partial.write_text(f"{run_id}\n", encoding="ascii")
    os.replace(partial, target)


def run_status(
    finish_reason: str, sources: list[str], failed_sources: dict[str, str], store_failed: bool
) -> RunStatus:
    """ok / failed / interrupted for the whole crawl."""
    if finish_reason == "shutdown":
        return "interrupted"
    if store_failed or finish_reason in FAILED_REASONS:
        return "failed"
    if finish_reason != "finished" and not finish_reason.startswith("closespider_"):
        return "failed"
    if sources and all(source in failed_sources for source in sources):
        return "failed"
    return "ok"


class StorePipeline:
    """Batched upserts of reviews; the crawl_runs row and sources' last crawl on close."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.database = CrawlDatabase.of(crawler)
        self.batch_size = max(1, settings.getint("REPUTATION_BATCH_SIZE", 2000))
        # A slow, throttled crawl still writes at least this often, so a killed run loses little.
        self.flush_seconds = settings.getfloat("REPUTATION_FLUSH_SECONDS", 10.0)
        self.last_flush = time.monotonic()
        # The timer flushes even when no item arrives (pages of repeats, a site gone slow).
        self.flush_timer: task.LoopingCall | None = None
        self.run_id_file: str | None = settings.get("REPUTATION_RUN_ID_FILE") or None
        # A complete full crawl marks no review removed when it would mark more than this share.
        self.removal_max_share = settings.getfloat(REMOVAL_MAX_SHARE_SETTING, REMOVAL_MAX_SHARE)
        self.run_id: int | None = None
        self.buffer: list[ReviewItem] = []
        self.counts: Counter[str] = Counter()
        self.db: sqlite_utils.Database | None = None
        self.aggregates: dict[str, SourceAggregate] = {}  # first seen per source, until written
        self.aggregates_written: set[str] = set()
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.aggregate_seen, signal=aggregate_found)
        crawler.signals.connect(self.item_failed, signal=signals.item_error)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        self.db = self.database.open()  # the crawl's shared connection; closed when the engine stops
        self.db.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self.db.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        spider = spider or self.crawler.spider
        self.run_id = start_run(self.db, "crawl", selection=getattr(spider, "selection", None))
        if self.run_id_file:
            write_run_id(self.run_id_file, self.run_id)
        stats = self.crawler.stats
        if stats is not None:
            stats.set_value("reputation/crawl_run_id", self.run_id)
        self.start_timer()

    def item_failed(self, item: Any, response: Any, spider: Any, failure: Any) -> None:
        """A pipeline raised on an item: Scrapy logs and drops it, so count the loss by reason here."""
        stats = self.crawler.stats
        if stats is not None:  # a page that fails loses all its reviews: each is counted
            lost = len(item.reviews) if isinstance(item, ReviewPage) else 1
            stats.inc_value(keys.DROPPED + "pipeline_error", lost)

    def process_item(self, item: ReviewOrPage, spider: Any = None) -> ReviewOrPage:
        self.buffer.extend(reviews_of(item))
        if len(self.buffer) >= self.batch_size or time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()
        return item

    def close_spider(self, spider: Any = None) -> None:
        self.stop_timer()
        self.flush()

    def aggregate_seen(self, found: SourceAggregate) -> None:
        """Keep a listing's first aggregate of this crawl; it is written with the next batch."""
        if found.source_id not in self.aggregates_written:
            self.aggregates.setdefault(found.source_id, found)

    def flush_if_due(self) -> None:
        """The timer's tick: write what waits once REPUTATION_FLUSH_SECONDS have passed."""
        if self.buffer and time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def start_timer(self) -> None:
        """Tick every REPUTATION_FLUSH_SECONDS on the crawl's reactor (none runs when tests call the pipeline directly)."""
        reactor = sys.modules.get("twisted.internet.reactor")  # looked up, never installed from here
        if self.flush_seconds > 0 and reactor is not None and getattr(reactor, "running", False):
            self.flush_timer = task.LoopingCall(self.flush_if_due)
            self.flush_timer.start(self.flush_seconds, now=False)

    def stop_timer(self) -> None:
        if self.flush_timer is not None and self.flush_timer.running:
            self.flush_timer.stop()
        self.flush_timer = None

    def flush(self) -> None:
        """Write the buffered items in one transaction; a failed batch is counted, not fatal."""
        batch, self.buffer = self.buffer, []
        self.last_flush = time.monotonic()
        if not (batch or self.aggregates) or self.db is None:
            return
        try:
            counts = self._write(self.db, batch)
        except sqlite3.Error as exc:
            logger.error("could not store %d reviews: %s", len(batch), exc)
            self.counts[STORE_FAILED] += len(batch)
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value(keys.ERRORS + STORE_FAILED, len(batch))
            return
        self.counts.update(counts)

    def _write(self, db: sqlite_utils.Database, batch: list[ReviewItem]) -> Counter[str]:
        """Match and write one batch inside one write transaction (reads included, see review_writer)."""
        aggregates = list(self.aggregates.values())
        with transaction(db) as conn:
            counts = write_batch(conn, batch, run_id=self.run_id, now=utcnow(), aggregates=aggregates)
        self.aggregates_written.update(a.source_id for a in aggregates)
        self.aggregates.clear()
        if counts["merged"] and self.crawler.stats is not None:
            self.crawler.stats.inc_value(keys.DROPPED + keys.DUPLICATE_IN_RUN, counts["merged"])
        return counts

    def spider_closed(self, spider: Any, reason: str) -> None:
        """Record the crawl and each source's outcome (the connection is closed by CrawlDatabase)."""
        if self.db is None or self.run_id is None:
            return
        self.stop_timer()
        self.flush()
        self._record_run(self.db, self.run_id, reason)

    def _source_crawls(
        self, stats: dict[str, Any], outcomes: dict[str, str], reason: str, dropped: dict[str, int]
    ) -> dict[str, SourceCrawl]:
        """Each source's kind of crawl, pages, stop and, for a full one, whether it saw the whole listing."""
        if reason != "finished":
            fault: str | None = "not_finished"
        elif self.counts[STORE_FAILED]:
            fault = STORE_FAILED
        elif keys.lost_reviews(dropped):
            fault = "items_dropped"  # a dropped review's row would look gone; drops are not kept per source
        else:
            fault = None
        spider = self.crawler.spider
        full_pages = {s.id: s.last_full_crawl_pages for s in getattr(spider, "sources", None) or []}
        return {
            source: source_crawl(
                stats, source, outcome, run_fault=fault, last_full_pages=full_pages.get(source)
            )
            for source, outcome in outcomes.items()
        }

    def _record_run(self, db: sqlite_utils.Database, run_id: int, reason: str) -> None:
        stats: dict[str, Any] = dict(self.crawler.stats.get_stats()) if self.crawler.stats else {}
        sources: list[str] = list(stats.get(keys.SOURCES) or [])
        failed = {s: str(stats[keys.SOURCE_FAILED + s]) for s in sources if keys.SOURCE_FAILED + s in stats}
        dropped = keys.by_prefix(stats, keys.DROPPED)
        errors = keys.by_prefix(stats, keys.ERRORS)
        status = run_status(reason, sources, failed, self.counts[STORE_FAILED] > 0)
        outcomes = {s: source_status(outcome_from_stats(stats, s), reason) for s in sources}
        detail = {
            "finish_reason": reason,
            "retries": int(stats.get("retry/count", 0)),
            "retries_exhausted": int(stats.get("retry/max_reached", 0)),
            "robots_forbidden": int(stats.get("robotstxt/forbidden", 0)),
            "offsite_filtered": int(stats.get("offsite/filtered", 0)),
            "backoffs": int(stats.get("reputation/backoff/count", 0)),
            "backoff_max_wait": float(stats.get("reputation/backoff/max_wait", 0.0)),
            "empty_pages": int(stats.get(keys.EMPTY_PAGES, 0)),
            "extract_errors": keys.by_prefix(stats, keys.EXTRACT_ERRORS),
            "layout_errors": keys.texts_by_prefix(stats, keys.LAYOUT_ERRORS),  # layout -> why it failed
            "skipped": keys.by_prefix(stats, keys.SKIPPED),
            "stopped": keys.by_prefix(stats, keys.STOPPED),
            "counted": keys.by_prefix(stats, keys.COUNTED),
            "sources": outcomes,
        }
        crawls = self._source_crawls(stats, outcomes, reason, dropped)
        now = utcnow()
        with transaction(db) as conn:  # the row and the sources' outcomes land together
            started = conn.execute("SELECT started_at FROM crawl_runs WHERE id = ?", (run_id,)).fetchone()[0]
            record_source_crawls(conn, crawls, outcomes, crawl_started_at=started, now=now,
                                 max_share=self.removal_max_share)  # fmt: skip
            detail["crawls"] = {source: crawl.as_detail() for source, crawl in crawls.items()}
            detail["crawl_kinds"] = dict(Counter(crawl.kind for crawl in crawls.values()))
            detail["pages_saved"] = sum(crawl.pages_saved or 0 for crawl in crawls.values())
            detail["removed"] = sum(crawl.removed for crawl in crawls.values())
            detail["restored"] = sum(crawl.restored for crawl in crawls.values())
            finish_run(
                db, run_id, status, pages=int(stats.get(keys.PAGES, 0)), items_new=self.counts["new"],
                items_updated=self.counts["updated"], items_unchanged=self.counts["unchanged"],
                dropped_by_reason=dropped, errors_by_reason=errors, detail=detail,
            )  # fmt: skip
            record_source_outcomes(conn, outcomes, now=now)
        logger.info("crawl run %s %s: %s", run_id, status, dict(self.counts))
