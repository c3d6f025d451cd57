"""Give each item its stable id and pseudonyms; drop repeats within one crawl.

The id comes from the item's source and the site's own review id (normalised, so any
extractor gives the same one), else from its content (crawler.identity). The store then
matches it against rows already stored, inside its write transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler.crawl_db import CrawlDatabase
from crawler.identity import author_hash, author_key, identify
from crawler.items import ReviewItem, ReviewOrPage
from crawler.pipelines.validate import drop, per_review
from crawler.stat_keys import DUPLICATE_IN_RUN

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


class DedupePipeline:
    """Assigns id, body_hash and author_hash; the same id twice in a run is dropped.

    The same review often shows on two listing pages while a site re-sorts; the first
    copy wins. Copies on other listings have other ids and are kept (roll-ups link them).
    """

    def __init__(self, database: CrawlDatabase, stats: StatsCollector | None) -> None:
        self.database = database
        self.stats = stats
        self.seen: set[str] = set()
        self.key = b""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        return cls(CrawlDatabase.of(crawler), crawler.stats)

    def open_spider(self, spider: Any = None) -> None:
        db = self.database.open()  # the crawl's shared connection; closed when the engine stops
        self.key = author_key(db)

    def process_item(self, item: ReviewOrPage, spider: Any = None) -> ReviewOrPage:
        return per_review(item, self.process_review)

    def process_review(self, item: ReviewItem) -> ReviewItem:
        """One review's id, body hash and author pseudonym; a repeat of this run is dropped (counted).

        A review the extraction worker named already (crawler.extraction_pool) keeps its names.
        """
        if not item.identified:
            identify(item)
        assert item.id is not None
        if item.id in self.seen:
            drop(self.stats, DUPLICATE_IN_RUN, item.id)
        self.seen.add(item.id)
        item.author_hash = author_hash(item.author, self.key)
        return item
