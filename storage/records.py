"""Rows that cross layers: one type each, shared by the registry, the crawler and the roll-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# How a source's pages are fetched: plain HTTP (the default), or rendered in a headless browser for
# a listing whose reviews only a script writes into the page (crawler.browser).
RENDER_HTTP = "http"
RENDER_BROWSER = "browser"
RENDERS = (RENDER_HTTP, RENDER_BROWSER)

# A source's listing is walked to its end this often (7 days); incremental crawls in between.
FULL_CRAWL_INTERVAL_HOURS = 24.0 * 7


@dataclass(frozen=True)
class Source:
    """One row of ``sources``: a listing page of a brand's reviews."""

    id: str
    brand_id: str
    url: str
    layout: str
    crawl_interval_hours: float
    last_crawl_at: str | None
    last_crawl_status: str | None = None  # ok, partial, empty: REASON, failed: REASON, interrupted
    render: str = RENDER_HTTP  # one of RENDERS
    # Incremental re-crawls (crawler.sources.crawl_kind): a full walk of the listing this often,
    # newest-first pages up to the first known one in between.
    full_crawl_interval_hours: float = FULL_CRAWL_INTERVAL_HOURS
    last_full_crawl_at: str | None = None  # when the last full crawl ended ok; None: the next one is full
    last_full_crawl_pages: int | None = None  # pages that crawl fetched


@dataclass(frozen=True)
class Engagement:
    """One row of ``engagements``: ``vendor_id`` served ``brand_id`` from ``start`` to ``end``, both inclusive.

    ``end`` is None while the vendor still serves the brand. ``scope`` names the part of the service
    the vendor ran ("all", "chat", "voice", ...) and ``share`` its part of the brand's reviews while
    the window was open, so a brand split between vendors is not counted twice.
    """

    vendor_id: str
    brand_id: str
    start: date
    end: date | None = None
    scope: str = "all"
    share: float = 1.0
    evidence_url: str | None = None

    def active(self, day: date) -> bool:
        """Whether the window covers ``day``."""
        return self.start <= day and (self.end is None or day <= self.end)
