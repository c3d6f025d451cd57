"""Give each item its stable id and pseudonyms; drop repeats within one crawl."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler.identity import author_hash, author_key, body_hash, review_id
from crawler.items import ReviewItem
from crawler.pipelines.validate import drop
from storage.database import connect

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


class DedupePipeline:
    """Assigns id, body_hash and author_hash; the same id twice in a run is dropped.

    The same review often shows on two listing pages while a site re-sorts; the first
    copy wins. Copies across sites have different ids and are kept (roll-ups link them).
    """

    def __init__(self, db_path: str, stats: StatsCollector | None) -> None:
        self.db_path = db_path
        self.stats = stats
        self.seen: set[str] = set()
        self.key = b""
        self.source_urls: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        return cls(crawler.settings.get("REPUTATION_DB"), crawler.stats)

    def open_spider(self, spider: Any = None) -> None:
        db = connect(self.db_path)
        try:
            self.key = author_key(db)
            self.source_urls = {row[0]: row[1] for row in db.execute("SELECT id, url FROM sources")}
        finally:
            db.close()

    def process_item(self, item: ReviewItem, spider: Any = None) -> ReviewItem:
        assert item.source_id is not None and item.body is not None
        item.id = review_id(
            source_url=self.source_urls.get(item.source_id) or item.url or "",
            source_id=item.source_id,
            site_review_id=item.site_review_id,
            author=item.author,
            published_at=item.published_at,
            date_precision=item.date_precision,
            body=item.body,
        )
        if item.id in self.seen:
            drop(self.stats, "duplicate_in_run", item.id)
        self.seen.add(item.id)
        item.body_hash = body_hash(item.body)
        item.author_hash = author_hash(item.author, self.key)
        return item
