"""Write reviews to SQLite in batches and record the crawl in ``crawl_runs``.

The ``crawl_runs`` row exists from the moment the spider opens (status ``running``),
so a crawl that is killed stays visible. New reviews are inserted; known ones get
``last_seen`` moved on; an edited body replaces the stored one and the earlier hash
is kept in ``previous_body_hashes``.
"""

from __future__ import annotations

import json
import logging
import operator
import sqlite3
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import sqlite_utils
from scrapy import signals

from crawler import stat_keys as keys
from crawler.items import ReviewItem
from storage.database import connect, transaction, utcnow

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# Columns copied from an item to its row; first_seen and the run ids are set here.
REVIEW_COLUMNS = (
    "source_id", "brand_id", "url", "site_review_id", "author_hash", "title", "body", "body_hash",
    "rating", "rating_value", "rating_min", "rating_max", "published_at", "date_precision",
    "date_raw", "language", "extractor",
)  # fmt: skip
NEW_ROW_COLUMNS = (
    "id",
    *REVIEW_COLUMNS,
    "first_seen",
    "last_seen",
    "first_crawl_run_id",
    "last_crawl_run_id",
)
INSERT_NEW_SQL = (
    f"INSERT INTO reviews ({', '.join(NEW_ROW_COLUMNS)}) VALUES ({', '.join('?' for _ in NEW_ROW_COLUMNS)})"
)
_item_values = operator.attrgetter("id", *REVIEW_COLUMNS)  # one C call per item, no dict per row
# Page cache for the crawl's connection: the reviews indexes are keyed by id, brand, source and
# author, so each batch touches pages all over them; with SQLite's 2 MB default they are read
# back from the OS on every batch. A longer WAL between checkpoints (about 40 MB instead of 4)
# lets a page that several batches touch be copied into the file once, not once per batch.
CACHE_KIB = 64 * 1024
WAL_AUTOCHECKPOINT_PAGES = 10_000
FAILED_REASONS = frozenset({"closespider_errorcount"})
STORE_FAILED = "store_failed"


def run_status(
    finish_reason: str, sources: list[str], failed_sources: dict[str, str], store_failed: bool
) -> str:
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
        self.db_path: str = settings.get("REPUTATION_DB")
        self.batch_size = max(1, settings.getint("REPUTATION_BATCH_SIZE", 2000))
        # A slow, throttled crawl still writes at least this often, so a killed run loses little.
        self.flush_seconds = settings.getfloat("REPUTATION_FLUSH_SECONDS", 10.0)
        self.last_flush = time.monotonic()
        given = settings.get("REPUTATION_CRAWL_RUN_ID")
        self.run_id: int | None = int(given) if given not in (None, "", "None") else None
        self.buffer: list[ReviewItem] = []
        self.counts: Counter[str] = Counter()
        self.db: sqlite_utils.Database | None = None
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        self.db = connect(self.db_path)
        self.db.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self.db.conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        spider = spider or self.crawler.spider
        with transaction(self.db) as conn:
            if self.run_id is not None and self.db["crawl_runs"].count_where("id = ?", [self.run_id]):
                conn.execute("UPDATE crawl_runs SET status = 'running' WHERE id = ?", (self.run_id,))
            else:
                selection = getattr(spider, "selection", None)
                cursor = conn.execute(
                    "INSERT INTO crawl_runs (id, stage, started_at, status, selection) VALUES (?, 'crawl', ?, 'running', ?)",
                    (
                        self.run_id,
                        utcnow(),
                        json.dumps(selection, sort_keys=True) if selection is not None else None,
                    ),
                )
                self.run_id = cursor.lastrowid
        stats = self.crawler.stats
        if stats is not None:
            stats.set_value("reputation/crawl_run_id", self.run_id)

    def process_item(self, item: ReviewItem, spider: Any = None) -> ReviewItem:
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size or time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()
        return item

    def close_spider(self, spider: Any = None) -> None:
        self.flush()

    def flush(self) -> None:
        """Write the buffered items in one transaction; a failed batch is counted, not fatal."""
        batch, self.buffer = self.buffer, []
        self.last_flush = time.monotonic()
        if not batch or self.db is None:
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
        now = utcnow()
        ids = [item.id for item in batch]
        placeholders = ", ".join("?" for _ in ids)
        known = {
            row[0]: (row[1], row[2])
            for row in db.execute(
                f"SELECT id, body_hash, previous_body_hashes FROM reviews WHERE id IN ({placeholders})", ids
            )
        }
        new_rows: list[tuple[Any, ...]] = []
        changed_rows: list[dict[str, Any]] = []
        unchanged: list[tuple[str, int | None, str | None]] = []
        for item in batch:
            assert item.id is not None
            if item.id not in known:
                new_rows.append((*_item_values(item), now, now, self.run_id, self.run_id))
                continue
            old_hash, previous = known[item.id]
            if old_hash == item.body_hash:
                unchanged.append((now, self.run_id, item.id))
                continue
            history = json.loads(previous or "[]")
            if old_hash not in history:
                history.append(old_hash)
            row = {"id": item.id, **{column: getattr(item, column) for column in REVIEW_COLUMNS}}
            row.update(last_seen=now, last_crawl_run_id=self.run_id, previous_body_hashes=json.dumps(history))
            changed_rows.append(row)
        with transaction(db) as conn:
            if new_rows:
                # One prepared statement for the batch: sqlite-utils' insert_all would build
                # SQL per chunk and commit through the connection's context manager, ending
                # this transaction early; here the whole batch lands or none of it does.
                conn.executemany(INSERT_NEW_SQL, new_rows)
            if changed_rows:
                # A plain UPDATE: an upsert's INSERT half would trip NOT NULL first_seen.
                columns = [c for c in changed_rows[0] if c != "id"]
                assignments = ", ".join(f"[{c}] = :{c}" for c in columns)
                conn.executemany(f"UPDATE reviews SET {assignments} WHERE id = :id", changed_rows)
            if unchanged:
                conn.executemany(
                    "UPDATE reviews SET last_seen = ?, last_crawl_run_id = ? WHERE id = ?", unchanged
                )
        return Counter(new=len(new_rows), updated=len(changed_rows), unchanged=len(unchanged))

    def spider_closed(self, spider: Any, reason: str) -> None:
        """Record the crawl and each source's outcome, then let go of the database."""
        if self.db is None:
            return
        try:
            self.flush()
            self._record_run(self.db, reason)
        finally:
            self.db.close()
            self.db = None

    def _record_run(self, db: sqlite_utils.Database, reason: str) -> None:
        stats: dict[str, Any] = dict(self.crawler.stats.get_stats()) if self.crawler.stats else {}
        sources: list[str] = list(stats.get(keys.SOURCES) or [])
        failed = {s: str(stats[keys.SOURCE_FAILED + s]) for s in sources if keys.SOURCE_FAILED + s in stats}
        dropped = keys.by_prefix(stats, keys.DROPPED)
        errors = keys.by_prefix(stats, keys.ERRORS)
        status = run_status(reason, sources, failed, self.counts[STORE_FAILED] > 0)
        source_status = {s: self._source_status(stats, s, failed, reason) for s in sources}
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
            "skipped": keys.by_prefix(stats, keys.SKIPPED),
            "sources": source_status,
        }
        now = utcnow()
        with transaction(db) as conn:
            conn.execute(
                """UPDATE crawl_runs SET finished_at = ?, status = ?, pages = ?, items_new = ?, items_updated = ?,
                   items_unchanged = ?, items_dropped = ?, dropped_by_reason = ?, errors = ?, errors_by_reason = ?,
                   detail = ? WHERE id = ?""",
                (
                    now, status, int(stats.get(keys.PAGES, 0)), self.counts["new"], self.counts["updated"],
                    self.counts["unchanged"], sum(dropped.values()), json.dumps(dropped), sum(errors.values()),
                    json.dumps(errors), json.dumps(detail, sort_keys=True), self.run_id,
                ),
            )  # fmt: skip
            for source, outcome in source_status.items():
                if outcome in ("ok", "partial"):
                    conn.execute(
                        "UPDATE sources SET last_crawl_at = ?, last_crawl_status = ? WHERE id = ?",
                        (now, outcome, source),
                    )
                else:
                    conn.execute("UPDATE sources SET last_crawl_status = ? WHERE id = ?", (outcome, source))
        logger.info("crawl run %s %s: %s", self.run_id, status, dict(self.counts))

    @staticmethod
    def _source_status(stats: dict[str, Any], source: str, failed: dict[str, str], reason: str) -> str:
        """ok, partial (some pages failed), failed: <reason> (first page failed) or interrupted."""
        if source in failed:
            return f"failed: {failed[source]}"
        if reason == "shutdown":
            return "interrupted"
        return "partial" if stats.get(keys.SOURCE_ERRORS + source) else "ok"
