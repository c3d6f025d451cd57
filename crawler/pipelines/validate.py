"""Reject items that cannot become a review row, counting each reason in stats."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from scrapy.exceptions import DropItem

from crawler.items import ReviewItem, ReviewOrPage, ReviewPage
from crawler.stat_keys import DROPPED

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


def drop(stats: StatsCollector | None, reason: str, detail: str) -> NoReturn:
    """Count the reason (``reputation/dropped/<reason>``) and drop the item."""
    if stats is not None:
        stats.inc_value(DROPPED + reason)
    raise DropItem(f"{reason}: {detail}")


def per_review(item: ReviewOrPage, step: Callable[[ReviewItem], ReviewItem]) -> ReviewOrPage:
    """Apply a pipeline's per-review ``step`` to a review, or to each review of a page.

    A review of a page that the step drops (``drop`` has counted why) leaves the page; the
    page itself goes on, even empty, so one bad review never costs its neighbours.
    """
    if not isinstance(item, ReviewPage):
        return step(item)
    kept: list[ReviewItem] = []
    for review in item.reviews:
        try:
            kept.append(step(review))
        except DropItem:
            continue
    item.reviews = kept
    return item


class ValidatePipeline:
    """Every stored review needs text, a brand and a source; anything else is dropped."""

    def __init__(self, stats: StatsCollector | None) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        return cls(crawler.stats)

    def process_item(self, item: Any, spider: Any = None) -> ReviewItem | ReviewPage:
        if isinstance(item, ReviewPage):
            return per_review(item, self.process_review)
        return self.process_review(item)

    def process_review(self, item: Any) -> ReviewItem:
        """One review: dropped (reason counted) unless it has text, a brand and a source."""
        if not isinstance(item, ReviewItem):
            drop(self.stats, "not_a_review", type(item).__name__)
        where = item.url or "?"
        # a normalised review had text before cleaning; if cleaning emptied it, the normalise
        # pipeline drops it as empty_after_cleaning, as it would a raw one
        if not item.normalised and not (item.body or "").strip():
            drop(self.stats, "missing_body", where)
        if not item.brand_id:
            drop(self.stats, "missing_brand", where)
        if not item.source_id:
            drop(self.stats, "missing_source", where)
        return item
