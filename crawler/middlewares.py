"""Scrapy hooks: backing off when a site says it is overloaded, keeping redirects in scope, quiet logging.

BackoffMiddleware (downloader middleware, 429 / 503):

RetryMiddleware alone retries at once; a site that answers 429 with ``Retry-After``
has told us when to come back. Here the site's download slot is slowed and paused
until then, and the retry is handed back only after the wait (a timer, not a sleep:
other sites keep crawling).

RedirectScopeMiddleware (downloader middleware, before RedirectMiddleware):

A redirect (3xx or <meta http-equiv="refresh">) must obey the same scope as a link
(crawler.scope.in_scope): a listing that redirects to another host or out of the source's
path is not followed (OutOfScopeRedirect), and a redirect back to a URL already in the chain
ends it (RedirectLoop) instead of being dropped without a word by the duplicate filter. Both are IgnoreRequest, so the request's
errback (the spider) counts them. Requests carry their scope in ``meta["reputation_scope"]``;
requests without it (robots.txt) are left to Scrapy. Longer chains end at REDIRECT_MAX_TIMES.

QuietItemLogFormatter (LOG_FORMATTER): Scrapy builds a "Scraped from" DEBUG record for every
item even when the log level discards it; a crawl yields tens of thousands of items.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import monotonic
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import HtmlResponse
from scrapy.logformatter import LogFormatter, LogFormatterResult
from scrapy.utils.response import get_meta_refresh
from w3lib.url import safe_url_string

from crawler.scope import in_scope

try:  # Scrapy >= 2.18
    from scrapy.utils.asyncio import sleep
except ImportError:  # pragma: no cover - older Scrapy
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    async def sleep(seconds: float) -> None:
        await deferLater(reactor, seconds)


if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

BACKOFF_CODES = frozenset({429, 503})
MIN_SLOT_DELAY = 1.0  # seconds between requests to a site once it has pushed back


def parse_retry_after(value: str | bytes | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class BackoffMiddleware:
    """On 429/503: honour Retry-After (capped), slow the site's slot, retry after the wait."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured("retries are disabled")
        self.crawler = crawler
        self.max_delay = settings.getfloat("BACKOFF_MAX_DELAY", 300.0)
        self.default_delay = settings.getfloat("BACKOFF_DEFAULT_DELAY", 5.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffMiddleware:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in BACKOFF_CODES or request.meta.get("dont_retry", False):
            return response
        wait = self.wait_seconds(response, request)
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("reputation/backoff/count")
        stats.inc_value(f"reputation/backoff/status_{response.status}")
        stats.max_value("reputation/backoff/max_wait", wait)
        self._slow_slot(request, wait)
        spider = self.crawler.spider
        assert spider is not None
        retry = get_retry_request(request, spider=spider, reason=f"backoff_{response.status}")
        if retry is None:
            # Out of retries: let the response through, and keep RetryMiddleware from retrying it again.
            request.meta["dont_retry"] = True
            return response
        logger.info("%s answered %s; retrying in %.1fs", request.url, response.status, wait)
        await sleep(wait)
        return retry

    def wait_seconds(self, response: Response, request: Request) -> float:
        """Retry-After if given, else an exponential default; never above BACKOFF_MAX_DELAY."""
        stated = parse_retry_after(response.headers.get(b"Retry-After"))
        if stated is None:
            stated = self.default_delay * 2 ** int(request.meta.get("retry_times", 0))
        return min(stated, self.max_delay)

    def _slow_slot(self, request: Request, wait: float) -> None:
        """Double the site's delay and hold its queue until the wait is over."""
        engine: Any = self.crawler.engine
        downloader = getattr(engine, "downloader", None)
        slots = getattr(downloader, "slots", None)
        if downloader is None or slots is None:
            return
        slot = slots.get(downloader.get_slot_key(request))
        if slot is None:
            return
        slot.delay = min(max(slot.delay * 2, MIN_SLOT_DELAY), self.max_delay)
        # The slot starts its next download at lastseen + delay: push that to now + wait.
        slot.lastseen = max(slot.lastseen, monotonic() + wait - slot.delay)


SCOPE_META = "reputation_scope"  # the source URL whose scope a request must stay in
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class OutOfScopeRedirect(IgnoreRequest):
    """A redirect leads off the source's host or path; it is not followed."""


class RedirectLoop(IgnoreRequest):
    """A redirect leads back to a URL already in its own chain."""


def location_url(request: Request, location: bytes) -> str:
    """The absolute URL a Location header points at, as RedirectMiddleware would resolve it."""
    url = safe_url_string(location)
    if location.startswith(b"//"):
        url = request.url.split(":", 1)[0] + "://" + url.lstrip("/")
    return urldefrag(urljoin(request.url, url)).url


class RedirectScopeMiddleware:
    """Refuses redirects out of the request's scope and ends loops, before Scrapy follows them.

    Sits above RedirectMiddleware (600) and MetaRefreshMiddleware (580), so it sees a 3xx and a
    page with ``<meta http-equiv="refresh">`` first, and reads the target as they would.
    """

    def __init__(self, settings: BaseSettings) -> None:
        self.meta_refresh = settings.getbool("METAREFRESH_ENABLED")
        self.ignore_tags = settings.getlist("METAREFRESH_IGNORE_TAGS")
        self.max_delay = settings.getfloat("METAREFRESH_MAXDELAY")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedirectScopeMiddleware:
        return cls(crawler.settings)

    def process_response(self, request: Request, response: Response) -> Response:
        scope = request.meta.get(SCOPE_META)
        if not scope or request.meta.get("dont_redirect"):
            return response
        target = self.redirect_target(request, response)
        if target is None:
            return response
        if not in_scope(target, scope):
            raise OutOfScopeRedirect(f"{request.url} redirects to {target}, outside {scope}")
        chain = {urldefrag(url).url for url in (*request.meta.get("redirect_urls", ()), request.url)}
        if target in chain:
            raise RedirectLoop(f"{request.url} redirects back to {target}")
        return response

    def redirect_target(self, request: Request, response: Response) -> str | None:
        """Where Scrapy would send this response's request next, or None if it would not."""
        if response.status in REDIRECT_CODES:
            location = response.headers.get(b"Location")
            return location_url(request, location) if location else None
        if self.meta_refresh and isinstance(response, HtmlResponse):
            interval, url = get_meta_refresh(response, ignore_tags=self.ignore_tags)
            if url and interval is not None and interval < self.max_delay:
                return urldefrag(url).url
        return None


class QuietItemLogFormatter(LogFormatter):
    """Scrapy's log formatter, minus the per-item record when LOG_LEVEL is above DEBUG."""

    def __init__(self, log_level: int = logging.DEBUG) -> None:
        self.log_level = log_level

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> QuietItemLogFormatter:
        level = crawler.settings.get("LOG_LEVEL", "DEBUG")
        numeric = level if isinstance(level, int) else logging.getLevelName(str(level).upper())
        return cls(numeric if isinstance(numeric, int) else logging.DEBUG)

    def scraped(  # type: ignore[override]  # Scrapy documents None as "do not log"
        self, item: Any, response: Response | Failure | None, spider: Spider
    ) -> LogFormatterResult | None:
        if self.log_level > logging.DEBUG:
            return None
        return super().scraped(item, response, spider)
