"""Rendering in a headless browser, for sources whose reviews only a script writes into the page.

A source registered with ``render: browser`` has its pages opened by a real browser and read
after its scripts ran; every other source is fetched over plain HTTP, the default.

- The spider marks the requests of such a source (``meta[BROWSER_META] = True``), and only those.
- ``BrowserRendering``, a Scrapy add-on (``ADDONS`` in crawler.settings), looks at the crawl's
  sources once the spider has them. Without a browser source it changes nothing: a plain crawl
  never loads Playwright nor starts a browser, and runs where the package is not installed.
  With one, it routes those sources' scheme (http or https) through scrapy-playwright's download
  handler, which hands unmarked requests to Scrapy's own HTTP handler and starts the browser at
  the first marked one, and adds ``BrowserGuardMiddleware``.
- The browser is the machine's own Chromium (``REPUTATION_BROWSER_PATH``, Debian's
  /usr/bin/chromium by default; ``make browser`` installs it), so ``playwright install`` and its
  browser download are never needed.
- When scrapy-playwright or the browser is missing, or the browser does not start, every marked
  request fails with ``BrowserUnavailable``: the source ends ``failed: browser_unavailable`` and
  the log says once what is missing. The rest of the crawl goes on.
- Politeness is the same as over HTTP: marked requests pass robots.txt, the per-site download
  slots, DOWNLOAD_DELAY and AutoThrottle, and carry the crawl's User-Agent (scrapy-playwright
  sets it on the page's own requests too). The page's images, media and fonts are not fetched.
  The scripts' own requests (an API call filling the reviews) go straight from the browser, not
  through Scrapy's scheduler. A rendered page that ends outside its source's scope (a redirect, a
  script navigating away) is refused like an out-of-scope redirect.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.middlewares import SCOPE_META, OutOfScopeRedirect
from crawler.scope import in_scope
from storage.records import RENDER_BROWSER, RENDER_HTTP

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

BROWSER_META = "playwright"  # scrapy-playwright's own mark: render this request in the browser
BROWSER_UNAVAILABLE = "browser_unavailable"  # the reason a marked request fails without a browser
# Set by the add-on when the crawl wants a browser it cannot have: why, in one line.
UNAVAILABLE_SETTING = "REPUTATION_BROWSER_UNAVAILABLE"
HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
PROVIDER = "crawler.browser_provider.SystemBrowserProvider"
GUARD_ORDER = 950  # next to the download itself: after robots.txt, retries and the User-Agent
SKIPPED_RESOURCES = frozenset({"image", "media", "font"})  # not needed to read a page's text


class BrowserUnavailable(Exception):
    """A request marked for the browser, in a crawl that has no working browser (the message says why)."""


def browser_sources(sources: Any) -> list[Any]:
    """The sources (``storage.records.Source``) that want the browser."""
    return [s for s in sources or () if getattr(s, "render", RENDER_HTTP) == RENDER_BROWSER]


def missing_piece(settings: BaseSettings) -> str | None:
    """What keeps this machine from rendering pages, in one line; None when nothing does."""
    try:
        import scrapy_playwright.handler  # noqa: F401  # imported here: only a crawl with a browser source needs it
    except ImportError as exc:
        return f"scrapy-playwright is not installed ({exc}); install it with: pip install 'reputation[browser]'"
    path = settings.get("REPUTATION_BROWSER_PATH") or ""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return f"no browser at {path or '(REPUTATION_BROWSER_PATH is empty)'}; install Chromium with `make browser`"
    return None


def skip_resource(request: Any) -> bool:
    """PLAYWRIGHT_ABORT_REQUEST: the page's images, media and fonts are not fetched."""
    return str(getattr(request, "resource_type", "")) in SKIPPED_RESOURCES


class BrowserRendering:
    """Scrapy add-on: turns browser rendering on for a crawl that has a ``render: browser`` source."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BrowserRendering:
        return cls(crawler)

    def update_settings(self, settings: BaseSettings) -> None:
        # Add-ons are applied after the spider is built, so its ``sources`` are known here.
        wanted = browser_sources(getattr(self.crawler.spider, "sources", None))
        if not wanted:
            return
        settings.set_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", BrowserGuardMiddleware, GUARD_ORDER
        )
        missing = missing_piece(settings)
        if missing is not None:
            settings.set(UNAVAILABLE_SETTING, missing, priority="addon")
            logger.warning(
                "browser rendering unavailable, %d source(s) will end failed: %s: %s",
                len(wanted), BROWSER_UNAVAILABLE, missing,
            )
            return
        # Only the schemes of those sources (their pages never leave it: crawler.scope): each
        # handler starts a Playwright driver of its own.
        schemes = {urlsplit(source.url).scheme for source in wanted}
        handlers = {**settings.getdict("DOWNLOAD_HANDLERS"), **dict.fromkeys(schemes, HANDLER)}
        settings.set("DOWNLOAD_HANDLERS", handlers, priority="addon")
        settings.set("PLAYWRIGHT_BROWSER_TYPE", "chromium", priority="addon")
        settings.set("PLAYWRIGHT_BROWSER_PROVIDER", PROVIDER, priority="addon")
        launch = {"executable_path": settings.get("REPUTATION_BROWSER_PATH"), "headless": True}
        settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", launch, priority="addon")
        settings.set("PLAYWRIGHT_ABORT_REQUEST", skip_resource, priority="addon")
        # The page's load (scripts and their requests included) gets the time a plain download gets.
        timeout_ms = settings.getfloat("DOWNLOAD_TIMEOUT", 30.0) * 1000
        settings.set("PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT", timeout_ms, priority="addon")
        logger.info("browser rendering on for %d source(s), with %s", len(wanted), launch["executable_path"])


class BrowserGuardMiddleware:
    """Downloader middleware for crawls with a browser source.

    Fails marked requests with BrowserUnavailable when the crawl has no browser, tells the
    browser how long to wait for a page's scripts (REPUTATION_BROWSER_WAIT_UNTIL), and keeps a
    rendered page that ended up outside its source's scope out of the crawl.
    """

    def __init__(self, unavailable: str | None, wait_until: str) -> None:
        self.unavailable = unavailable
        self.wait_until = wait_until

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BrowserGuardMiddleware:
        settings = crawler.settings
        return cls(settings.get(UNAVAILABLE_SETTING), settings.get("REPUTATION_BROWSER_WAIT_UNTIL") or "load")

    def process_request(self, request: Request) -> None:
        if not request.meta.get(BROWSER_META):
            return
        if self.unavailable is not None:
            raise BrowserUnavailable(self.unavailable)
        # A fresh dict each time: scrapy-playwright edits the one it is given.
        request.meta.setdefault("playwright_page_goto_kwargs", {"wait_until": self.wait_until})

    def process_response(self, request: Request, response: Response) -> Response:
        scope = request.meta.get(SCOPE_META)
        if scope and "playwright" in response.flags and not in_scope(response.url, scope):
            raise OutOfScopeRedirect(f"{request.url} ended at {response.url} in the browser, outside {scope}")
        return response
