"""The `reviews` spider: visits each selected source and walks its pagination to the end.

Navigation only. Pages are turned into ReviewItems by crawler.extractors (yielded as one
ReviewPage per page); this file decides which URL comes next and keeps the crawl inside each
source's site and path
(links and redirects alike: crawler.scope, crawler.middlewares.RedirectScopeMiddleware).

A source's pagination ends at the last page, and earlier when it goes wrong, each stop
counted under ``reputation/stopped/``: ``page_budget`` (REPUTATION_MAX_PAGES_PER_SOURCE pages
fetched), ``stopped_repeating`` (a page whose reviews were all seen before in this crawl: a
site that serves its last page for any page number) and ``stopped_empty``
(REPUTATION_MAX_EMPTY_PAGES pages in a row without a review).

Each source gets one of two kinds of crawl (crawler.sources.crawl_kind): ``full`` walks the
listing from the source's URL to its end; ``incremental`` starts from the platform's
newest-first first page (crawler.extractors.platforms.urls) and stops at the first page whose
reviews are all stored unchanged (``stopped_no_new``; crawler.incremental asks the database).
``-a full=1`` makes every source's crawl full. The first reason a source's walk ended before
its listing's end is kept per source (``reputation/source_stopped/``): a full crawl cut short
must not mark the reviews it did not reach as removed.

    scrapy crawl reviews -a brand=northwind-air,contoso -a vendor=acme-contact -a due_only=1

selects its sources from the database itself; ``crawler.launcher`` instead hands it the
sources it already resolved with ``-a sources_file=PATH`` (see crawler.sources).
"""

from __future__ import annotations

import hashlib
from collections import Counter
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
from crawler.aggregates import send_aggregate
from crawler.browser import BROWSER_META, BROWSER_UNAVAILABLE
from crawler.clock import CLOCK_SETTING, crawl_clock, crawled_at
from crawler.crawl_db import CrawlDatabase
from crawler.decoding import declared_encoding
from crawler.extraction_pool import take_pre_extracted
from crawler.extractors import extract_reviews
from crawler.extractors.platforms.urls import first_page, newest_first
from crawler.incremental import fresh_reviews
from crawler.items import ReviewItem, ReviewPage
from crawler.middlewares import SCOPE_META, OutOfScopeRedirect, RedirectLoop
from crawler.scope import in_scope
from crawler.source_status import OUT_OF_SCOPE_REDIRECT, classify_empty_page
from crawler.sources import FULL, INCREMENTAL, CrawlKind, crawl_kind, read_sources_file, select_sources
from storage.errors import ReputationError
from storage.records import RENDER_BROWSER, Source


def split_list(value: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]``."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [p.strip() for p in parts if p and p.strip()]


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


__all__ = ["ReviewsSpider", "error_reason", "in_scope", "split_list", "truthy"]


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
    # Scrapy cancels a download past DOWNLOAD_MAXSIZE: DownloadCancelledError when the
    # Content-Length says so up front, Twisted's CancelledError when the body grows past it.
    "DownloadCancelledError": keys.TOO_LARGE,
    "CancelledError": keys.TOO_LARGE,
    "RedirectLoop": keys.REDIRECT_LOOP,
    "BrowserUnavailable": BROWSER_UNAVAILABLE,  # a render: browser source in a crawl without a browser
}


def error_reason(failure: Failure) -> str:
    """A short, stable name for why a request failed (used as a stats key)."""
    if failure.check(HttpError):
        return f"http_{failure.value.response.status}"
    if failure.check(IgnoreRequest) and "max redirections" in str(failure.value):
        return keys.TOO_MANY_REDIRECTS
    for cls in type(failure.value).__mro__:
        if cls.__name__ in ERROR_REASONS:
            return ERROR_REASONS[cls.__name__]
    return type(failure.value).__name__


class ReviewsSpider(scrapy.Spider):
    """Crawl the review listings of the selected brands (or of the brands a vendor serves)."""

    name = "reviews"
    allowed_domains: list[str]  # the hosts of the selected sources, set in from_crawler
    max_pages = 1000  # REPUTATION_MAX_PAGES_PER_SOURCE, set in from_crawler
    max_empty_pages = 3  # REPUTATION_MAX_EMPTY_PAGES, set in from_crawler
    # REPUTATION_CRAWL_CLOCK (ISO date or time, UTC), set in from_crawler: the crawl time that relative
    # dates ("3 months ago") are read against, instead of now; makes a demo's dates reproducible.
    clock: str | None = None

    def __init__(
        self,
        vendor: str | None = None,
        brand: str | None = None,
        due_only: str | bool = False,
        sources_file: str | None = None,
        full: str | bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vendors = split_list(vendor)
        self.brands = split_list(brand)
        self.due_only = truthy(due_only)
        self.full = truthy(full)
        self.sources_file = sources_file
        self.selection: dict[str, Any] = {
            "vendors": self.vendors,
            "brands": self.brands,
            "due_only": self.due_only,
        }
        if self.full:
            self.selection["full"] = True
        self.kinds: dict[str, CrawlKind] = {}  # per source id, chosen when the crawl starts
        self.sources: list[Source] = []
        self.requested: set[str] = set()
        self.pages_requested: Counter[str] = Counter()  # per source id
        self.over_budget: set[str] = set()  # source ids whose page budget ran out
        self.seen_reviews: set[bytes] = set()  # fingerprints of the reviews this crawl was given
        # One bound method for every request: Scrapy caches its per-callback source inspection
        # by callback object, and a fresh bound method per request would be inspected anew.
        self._on_page = self.parse_page
        self._on_failure = self.page_failed

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> ReviewsSpider:
        spider: ReviewsSpider = super().from_crawler(crawler, *args, **kwargs)
        if spider.sources_file:
            # Resolved and validated by the launcher: the crawl covers exactly these.
            spider.selection, spider.sources = read_sources_file(spider.sources_file)
            spider.full = spider.full or truthy(spider.selection.get("full", False))
        else:
            # An unknown vendor or brand raises NotFoundError here, before anything is fetched.
            spider.sources = select_sources(
                CrawlDatabase.of(crawler).open(),
                vendors=spider.vendors,
                brands=spider.brands,
                due_only=spider.due_only,
            )
        spider.allowed_domains = sorted({urlsplit(s.url).hostname or "" for s in spider.sources} - {""})
        settings = crawler.settings
        spider.max_pages = max(1, settings.getint("REPUTATION_MAX_PAGES_PER_SOURCE", 1000))
        spider.max_empty_pages = max(1, settings.getint("REPUTATION_MAX_EMPTY_PAGES", 3))
        spider.clock = crawl_clock(settings.get(CLOCK_SETTING))
        if not spider.sources:
            spider.logger.warning("no sources to crawl for %s", spider.selection)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for request in self.start_requests():
            yield request

    def start_requests(self) -> Iterator[scrapy.Request]:
        stats = self.crawler.stats
        stats.set_value(keys.SOURCES, [s.id for s in self.sources])
        now = datetime.now(UTC)
        for source in self.sources:
            kind = self.kinds[source.id] = crawl_kind(source, now, full=self.full)
            stats.set_value(keys.SOURCE_KIND + source.id, kind)
            # Incremental: newest reviews first, from the first page, so known ones come last.
            url = source.url if kind == FULL else first_page(newest_first(source.url))
            yield self.page_request(url, source, page=1)

    def page_request(self, url: str, source: Source, *, page: int, empty_run: int = 0) -> scrapy.Request:
        self.requested.add(url)
        self.pages_requested[source.id] += 1
        meta = {"source": source, "page": page, "empty_run": empty_run, SCOPE_META: source.url}
        if source.render == RENDER_BROWSER:  # rendered in the browser (crawler.browser); the rest is plain HTTP
            meta[BROWSER_META] = True
        return scrapy.Request(url, callback=self._on_page, errback=self._on_failure, meta=meta)

    def parse_page(self, response: Response) -> Iterator[ReviewPage | scrapy.Request]:
        source: Source = response.meta["source"]
        self.count_page(source)
        stats = self.crawler.stats
        # Only what the response states; an undeclared page is detected by the extractors
        # (crawler.decoding), not by Scrapy's whole-body guess.
        encoding = declared_encoding(response.headers.get(b"Content-Type"), response.body)
        if encoding is None:
            stats.inc_value(keys.COUNTED + keys.CHARSET_GUESSED)
        try:
            # extracted in crawler.extraction_pool's worker while this process fetched, or here
            pre = take_pre_extracted(response.meta, response.url, source.layout, encoding, source.id)
            if pre is None:
                moment = crawled_at(self.clock)
                result = extract_reviews(response.body, response.url, source.layout, encoding=encoding)
            else:
                moment, result = pre.crawled_at, pre.result
        except ReputationError as exc:  # a misconfigured layout: count it and why, keep crawling
            self.crawler.stats.inc_value(keys.ERRORS + keys.LAYOUT_ERROR)
            self.crawler.stats.inc_value(keys.SOURCE_ERRORS + source.id)
            if not stats.get_value(keys.LAYOUT_ERRORS + source.layout):
                stats.set_value(keys.LAYOUT_ERRORS + source.layout, str(exc))
            if response.meta.get("page", 1) == 1:  # its listing cannot be read: failed, not "empty"
                stats.set_value(keys.SOURCE_FAILED + source.id, keys.LAYOUT_ERROR)
            self.logger.error("%s: %s", response.url, exc)
            self.page_decided(response, error=keys.LAYOUT_ERROR)
            return
        for error in result.errors:
            self.crawler.stats.inc_value(keys.EXTRACT_ERRORS + error.extractor)
            self.logger.info("%s: %s", response.url, error)
        send_aggregate(self.crawler, source.id, result.aggregate, moment)  # -> source_aggregates
        if not result.reviews:
            stats.inc_value(keys.EMPTY_PAGES)
            self.note_empty(source, response)
        new: list[ReviewItem] = []
        for item in result.reviews:
            item.source_id = source.id
            item.brand_id = source.brand_id
            item.crawled_at = moment
            item.url = item.url or response.url
            if self.first_sighting(item):
                new.append(item)
        stats.inc_value(keys.SOURCE_REVIEWS + source.id, len(result.reviews))
        empty_run = 0 if result.reviews else response.meta.get("empty_run", 0) + 1
        next_pages = self.next_pages(response, result.next_pages, source)
        # Decided before the items go to the pipelines: the database is asked about them as found.
        stop = self.stop_reason(source, next_pages, result.reviews, new, empty_run)
        if result.reviews:  # one item per page: the pipelines handle each of its reviews
            yield ReviewPage(result.reviews, url=response.url)
        if stop is not None:
            self.stop_source(source, stop)
            self.page_decided(response, stop=stop)
            self.logger.info("%s: %s; not following its next pages", response.url, STOP_WHY[stop])
            return
        for url in next_pages:
            if self.pages_requested[source.id] >= self.max_pages:
                if source.id not in self.over_budget:
                    self.over_budget.add(source.id)
                    self.stop_source(source, keys.PAGE_BUDGET)
                    self.page_decided(response, stop=keys.PAGE_BUDGET)
                    self.logger.warning("%s: page budget of %d pages spent", source.url, self.max_pages)
                break
            yield self.page_request(url, source, page=response.meta.get("page", 1) + 1, empty_run=empty_run)

    def stop_reason(
        self,
        source: Source,
        next_pages: list[str],
        reviews: list[ReviewItem],
        new: list[ReviewItem],
        empty_run: int,
    ) -> str | None:
        """Why this page's next pages are not followed, or None to follow them."""
        if not next_pages:
            return None  # the end of the listing (or of this branch of it)
        if reviews and not new:
            return keys.STOPPED_REPEATING
        if empty_run >= self.max_empty_pages:
            return keys.STOPPED_EMPTY
        incremental = self.kinds.get(source.id) == INCREMENTAL
        if incremental and new and not fresh_reviews(CrawlDatabase.of(self.crawler).open(), new):
            return keys.STOPPED_NO_NEW
        return None

    def page_decided(self, response: Response, *, stop: str = "", error: str = "") -> None:
        """A hook: why the walk did not go on from this parsed page (``stop``), or why it could not
        be read (``error``). Stats keep the source's; spiders.frontier records each page's."""

    def note_empty(self, source: Source, response: Response) -> str | None:
        """Keep what the source's first page without a review looked like (the page is read for it only
        then); returns it, else None. A hook: spiders.frontier records every such page's."""
        key = keys.SOURCE_EMPTY + source.id
        if self.crawler.stats.get_value(key):
            return None
        kind = classify_empty_page(page_text(response))
        self.crawler.stats.set_value(key, kind)
        return kind

    def stop_source(self, source: Source, reason: str) -> None:
        """Count a stop under ``reputation/stopped/`` and keep it as the source's first stop."""
        self.crawler.stats.inc_value(keys.STOPPED + reason)
        self.note_stopped(source, reason)

    def note_stopped(self, source: Source, reason: str) -> None:
        """Keep the first reason the source's walk ended before its listing's end.

        A repeating page is how some sites end their listing, so any later reason replaces it:
        another branch of the same listing cut short means the walk did not reach the end.
        """
        key = keys.SOURCE_STOPPED + source.id
        if keys.later_stop_replaces(self.crawler.stats.get_value(key)):
            self.crawler.stats.set_value(key, reason)

    def first_sighting(self, item: ReviewItem) -> bool:
        """Whether this crawl had not been given this review before (by site id, else by its content)."""
        parts = (item.source_id, item.site_review_id) if item.site_review_id else (
            item.source_id, item.author, item.date_raw, item.title, item.body,
        )  # fmt: skip
        key = hashlib.blake2b(repr(parts).encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if key in self.seen_reviews:
            return False
        self.seen_reviews.add(key)
        return True

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
        self.count_failure(failure)

    def count_failure(self, failure: Failure) -> str | None:
        """``page_failed``'s counting; returns the skip reason when the page was skipped (a stop is
        noted), None when it failed (an error is counted)."""
        request = failure.request  # type: ignore[attr-defined]
        source: Source = request.meta["source"]
        stats = self.crawler.stats
        if failure.check(OutOfScopeRedirect):
            stats.inc_value(keys.SKIPPED + keys.OUT_OF_SCOPE)
            self.note_stopped(source, keys.OUT_OF_SCOPE)
            if request.meta.get("page", 1) == 1 and not stats.get_value(keys.SOURCE_EMPTY + source.id):
                stats.set_value(keys.SOURCE_EMPTY + source.id, OUT_OF_SCOPE_REDIRECT)
            self.logger.warning("not following %s", failure.value)
            return keys.OUT_OF_SCOPE
        redirects = failure.check(RedirectLoop) or error_reason(failure) == keys.TOO_MANY_REDIRECTS
        if failure.check(IgnoreRequest) and not failure.check(HttpError) and not redirects:
            why = "robots_txt" if "robots" in str(failure.value).lower() else "ignored"
            stats.inc_value(keys.SKIPPED + why)
            self.note_stopped(source, why)
            return why
        if failure.check(HttpError):
            self.count_page(source)
        reason = error_reason(failure)
        stats.inc_value(keys.ERRORS + reason)
        stats.inc_value(keys.SOURCE_ERRORS + source.id)
        if request.meta.get("page", 1) == 1:
            stats.set_value(keys.SOURCE_FAILED + source.id, reason)
        self.logger.warning("giving up on %s: %s", request.url, reason)
        return None


STOP_WHY = {
    keys.STOPPED_REPEATING: "only reviews seen before in this crawl",
    keys.STOPPED_EMPTY: "too many pages in a row without a review",
    keys.STOPPED_NO_NEW: "only reviews stored before, unchanged",
}


def page_text(response: Response) -> str:
    """The page as text for telling what kind of page it is (a rough decoding is enough there)."""
    if isinstance(response, TextResponse):
        return response.text
    return response.body.decode("utf-8", "replace")
