"""A listing's own summary rating (AggregateRating, the platform's header), from spider to store.

The spider sends ``aggregate_found`` once per page that shows one; the store pipeline keeps the
first per source and writes it to ``source_aggregates`` for the crawl. A signal rather than an
item: it is not a review, so the review pipelines and Scrapy's item counts never see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crawler.extractors.result import Aggregate

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

aggregate_found = object()  # Scrapy signal; handlers receive ``found: SourceAggregate``


@dataclass(frozen=True)
class SourceAggregate:
    """One page's aggregate, tied to its source and the moment the page was fetched."""

    source_id: str
    aggregate: Aggregate
    seen_at: str


def send_aggregate(crawler: Crawler, source_id: str, aggregate: Aggregate | None, seen_at: str) -> None:
    """Tell the store about a page's aggregate; nothing happens when the page has none."""
    if aggregate is not None:
        crawler.signals.send_catch_log(
            signal=aggregate_found, found=SourceAggregate(source_id, aggregate, seen_at)
        )
