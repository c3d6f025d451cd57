"""The `reviews` spider: visits each selected source and walks its pagination to the end.

Navigation only. Pages are turned into ReviewItems by crawler.extractors; this file
decides which URL comes next and keeps the crawl inside each source's site and path.

    scrapy crawl reviews -a brand=northwind-air,contoso -a vendor=acme-contact -a due_only=1
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler import stat_keys as keys
from crawler.extractors import extract_reviews
from crawler.items import ReviewItem
from crawler.launcher import select_sources
from storage.database import connect
from storage.errors import ReputationError
from storage.records import Source


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]``."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [p.strip() for p in parts if p and p.strip()]


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def in_scope(url: str, source_url: str) -> bool:
    """Same scheme, host and port as the source, and under the source's path."""
    target, base = urlsplit(url), urlsplit(source_url)
    if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
        return False
    prefix = base.path or "/"
    if target.path == prefix or target.path == prefix.rstrip("/"):
        return True
    return target.path.startswith(prefix if prefix.endswith("/") else prefix + "/")


# Exception class names (Twisted's and Scrapy's own, which differ across versions) -> reason.
ERROR_REASONS = {
    "TimeoutError": "timeout",
    "TCPTimedOutError": "timeout",
    "DownloadTimeoutError": "timeout",
    "DNSLookupError": "dns",
    "CannotResolveHostError": "dns",
    "ConnectError": "connection",
    "ConnectionRefusedError": "connection",
    "DownloadConnectionRefusedError": "connection",
    "ConnectionLost": "connection_lost",
    "ResponseFailed": "connection_lost",
    "ResponseDataLossError": "connection_lost",
}


def error_reason(failure: Failure) -> str:
    """A short, stable name for why a request failed (used as a stats key)."""
    if failure.check(HttpError):
        return f"http_{failure.value.response.status}"
    for cls in type(failure.value).__mro__:
        if cls.__name__ in ERROR_REASONS:
            return ERROR_REASONS[cls.__name__]
    return type(failure.value).__name__


class ReviewsSpider(scrapy.Spider):
    """Crawl the review listings of the selected brands (or of the brands a vendor serves)."""

    name = "reviews"
    allowed_domains: list[str]  # the hosts of the selected sources, set in from_crawler

    def __init__(
        self, vendor: str | None = None, brand: str | None = None, due_only: str | bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.vendors = split_list(vendor)
        self.brands = split_list(brand)
        self.due_only = truthy(due_only)
        self.selection = {"vendors": self.vendors, "brands": self.brands, "due_only": self.due_only}
        self.sources: list[Source] = []
        self.requested: set[str] = set()
        # One bound method for every request: Scrapy caches its per-callback source inspection
        # by callback object, and a fresh bound method per request would be inspected anew.
        self._on_page = self.parse_page
        self._on_failure = self.page_failed

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ReviewsSpider:
        spider: ReviewsSpider = super().from_crawler(crawler, *args, **kwargs)
        db = connect(crawler.settings.get("REPUTATION_DB"))
        try:
            # An unknown vendor or brand raises NotFoundError here, before anything is fetched.
            spider.sources = select_sources(
                db, vendors=spider.vendors, brands=spider.brands, due_only=spider.due_only
            )
        finally:
            db.close()
        spider.allowed_domains = sorted({urlsplit(s.url).hostname or "" for s in spider.sources} - {""})
        if not spider.sources:
            spider.logger.warning("no sources to crawl for %s", spider.selection)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for request in self.start_requests():
            yield request

    def start_requests(self) -> Iterator[scrapy.Request]:
        self.crawler.stats.set_value(keys.SOURCES, [s.id for s in self.sources])
        for source in self.sources:
            yield self.page_request(source.url, source, page=1)

    def page_request(self, url: str, source: Source, *, page: int) -> scrapy.Request:
        self.requested.add(url)
        return scrapy.Request(
            url, callback=self._on_page, errback=self._on_failure, meta={"source": source, "page": page}
        )

    def parse_page(self, response: Response) -> Iterator[ReviewItem | scrapy.Request]:
        source: Source = response.meta["source"]
        self.count_page(source)
        crawled_at = datetime.now(UTC).replace(microsecond=0).isoformat()
        encoding = response.encoding if isinstance(response, TextResponse) else None
        try:
            result = extract_reviews(response.body, response.url, source.layout, encoding=encoding)
        except ReputationError as exc:  # a misconfigured layout: count it, keep crawling
            self.crawler.stats.inc_value(keys.ERRORS + "layout_error")
            self.crawler.stats.inc_value(keys.SOURCE_ERRORS + source.id)
            self.logger.error("%s: %s", response.url, exc)
            return
        for message in result.errors:
            self.crawler.stats.inc_value(keys.EXTRACT_ERRORS + message.split(":", 1)[0].strip())
            self.logger.info("%s: %s", response.url, message)
        if not result.reviews:
            self.crawler.stats.inc_value(keys.EMPTY_PAGES)
        for item in result.reviews:
            item.source_id = source.id
            item.brand_id = source.brand_id
            item.crawled_at = crawled_at
            item.url = item.url or response.url
            yield item
        for url in self.next_pages(response, result.next_pages, source):
            yield self.page_request(url, source, page=response.meta.get("page", 1) + 1)

    def next_pages(self, response: Response, declared: list[str], source: Source) -> list[str]:
        """Pagination links, in scope and not yet requested.

        The extractor already collects rel=next, numbered page links and the layout's
        next selector from the page it parsed, so the page is not parsed again here.
        """
        candidates = list(declared)
        found: list[str] = []
        for href in candidates:
            href = href.strip()
            # extractors already return absolute links; joining those again changes nothing
            url = urldefrag(href if href.startswith(("http://", "https://")) else response.urljoin(href)).url
            if url in self.requested or url in found:
                continue
            if not in_scope(url, source.url):
                self.crawler.stats.inc_value(keys.SKIPPED + "out_of_scope")
                continue
            found.append(url)
        return found

    def count_page(self, source: Source) -> None:
        self.crawler.stats.inc_value(keys.PAGES)
        self.crawler.stats.inc_value(keys.SOURCE_PAGES + source.id)

    def page_failed(self, failure: Failure) -> None:
        """Count why a page could not be had; the rest of the crawl goes on."""
        request = failure.request  # type: ignore[attr-defined]
        source: Source = request.meta["source"]
        stats = self.crawler.stats
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            why = "robots_txt" if "robots" in str(failure.value).lower() else "ignored"
            stats.inc_value(keys.SKIPPED + why)
            return
        if failure.check(HttpError):
            self.count_page(source)
        reason = error_reason(failure)
        stats.inc_value(keys.ERRORS + reason)
        stats.inc_value(keys.SOURCE_ERRORS + source.id)
        if request.meta.get("page", 1) == 1:
            stats.set_value(keys.SOURCE_FAILED + source.id, reason)
        self.logger.warning("giving up on %s: %s", request.url, reason)
