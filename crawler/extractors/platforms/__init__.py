"""Built-in extractors for the review sites users point the crawler at most.

Each is chosen by name (``layout: trustpilot``) or found by ``layout: auto``: first by the
page's host, then by markup (saved copies and local mirrors have other hosts).
"""

from __future__ import annotations

from crawler.extractors.page import Page
from crawler.extractors.platforms import (
    amazon,
    app_store,
    consumeraffairs,
    google_play,
    tripadvisor,
    trustpilot,
    yelp,
)
from crawler.extractors.platforms.common import Platform

PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        trustpilot.PLATFORM,
        yelp.PLATFORM,
        amazon.PLATFORM,
        google_play.PLATFORM,
        app_store.PLATFORM,
        tripadvisor.PLATFORM,
        consumeraffairs.PLATFORM,
    )
}

__all__ = ["PLATFORMS", "Platform", "recognise"]


def recognise(page: Page) -> list[Platform]:
    """Platforms that fit the page: the host's own first, then those whose markup is there."""
    by_host = [p for p in PLATFORMS.values() if page.host and p.owns_host(page.host)]
    by_markup = [p for p in PLATFORMS.values() if p not in by_host and p.recognise(page)]
    return by_host + by_markup
