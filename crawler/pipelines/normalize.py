"""Fill the derived fields (rating 0..1, ISO date, language, cleaned text) of each item."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler import stat_keys as keys
from crawler.fields import normalize_item_counted
from crawler.items import ReviewItem, ReviewOrPage
from crawler.pipelines.validate import drop, per_review

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


def crawled_moment(item: ReviewItem) -> datetime:
    """When the page was fetched (anchors "3 weeks ago"); now if the spider did not say."""
    if item.crawled_at:
        moment = datetime.fromisoformat(item.crawled_at)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


class NormalizePipeline:
    """Delegates to crawler.fields; drops an item whose text cleans away to nothing.

    Invalid characters replaced with U+FFFD (lone surrogates, noncharacters) are counted
    as ``reputation/counted/invalid_chars_replaced``, which the run log's detail carries.
    """

    def __init__(self, stats: StatsCollector | None) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalizePipeline:
        return cls(crawler.stats)

    def process_item(self, item: ReviewOrPage, spider: Any = None) -> ReviewOrPage:
        return per_review(item, self.process_review)

    def process_review(self, item: ReviewItem) -> ReviewItem:
        """One review's derived fields; dropped (counted) when its text cleans away to nothing."""
        if item.normalised:  # done beside the crawl (crawler.extraction_pool): only count it
            replaced = item.invalid_chars_replaced
        else:
            item, replaced = normalize_item_counted(item, crawled_moment(item))
        if replaced and self.stats is not None:
            self.stats.inc_value(keys.COUNTED + keys.INVALID_CHARS_REPLACED, replaced)
        if not (item.body or "").strip():
            drop(self.stats, "empty_after_cleaning", item.url or "?")
        return item
