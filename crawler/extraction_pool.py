"""Extraction beside the crawl: listing pages are parsed in a worker process while Scrapy fetches.

Scrapy runs every callback and pipeline on one thread, so a page's extraction (lxml parse,
structured data, layout selectors) and the pipelines' per-review work take turns with the
downloads. This downloader middleware hands each listing page (a 200 response to a request that
carries its source) to a process pool and waits for it without blocking the reactor; the result
rides in the request's meta, and the spider's callback uses it instead of extracting again
(spiders.reviews). The work is the same function on the same bytes (crawler.extractors
.extract_reviews); only where it runs changes.

``REPUTATION_EXTRACT_PROCESSES`` sets the pool's size: by default one worker when the machine has
more than one CPU, none (extraction in the crawl process, as before) otherwise or when set to 0.
Workers are forked when the first page arrives, so they start with the crawl's modules and
layouts already loaded. Anything that goes wrong in the pool (a worker killed, an error) leaves
the page to the callback, which extracts it itself: the pool can make a crawl faster, never
lose or change a page.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler.decoding import declared_encoding
from crawler.extractors import ExtractionResult, extract_reviews
from crawler.stat_keys import COUNTED

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response

logger = logging.getLogger(__name__)

PROCESSES_SETTING = "REPUTATION_EXTRACT_PROCESSES"
EXTRACTED_META = "reputation_extracted"  # request.meta key of a PreExtracted
# Counted in crawl_runs.detail["counted"]: pages extracted in the pool, and pages it could not do.
POOL_PAGES = COUNTED + "extracted_in_pool"
POOL_FALLBACKS = COUNTED + "extract_pool_fallback"


class PreExtracted(NamedTuple):
    """A page's extraction done in the pool, and the inputs it was done with."""

    url: str
    layout: str
    encoding: str | None
    result: ExtractionResult


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_crawl(crawl_pid: int) -> None:
    """Worker initializer: the kernel SIGKILLs the worker when the crawl process dies (Linux).

    A worker is forked with the crawl's descriptors, the launcher's writer lock among them
    (crawler.launcher), so it must not outlive a killed crawl and keep the lock held.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != crawl_pid:  # the crawl died before the hook ran: nobody will signal us
        os._exit(1)


def default_processes() -> int:
    """One worker beside the crawl process when there is a second CPU for it."""
    return 1 if (os.cpu_count() or 1) > 1 else 0


def take_pre_extracted(meta: dict[str, Any], url: str, layout: str, encoding: str | None) -> ExtractionResult | None:
    """The pool's result for this page when it was extracted with exactly these inputs, else None."""
    found = meta.pop(EXTRACTED_META, None)
    if isinstance(found, PreExtracted) and (found.url, found.layout, found.encoding) == (url, layout, encoding):
        return found.result
    return None


class ExtractionPoolMiddleware:
    """Extracts listing pages in a process pool before they reach the spider (see module doc)."""

    def __init__(self, crawler: Crawler, processes: int) -> None:
        self.crawler = crawler
        self.processes = processes
        self.pool: ProcessPoolExecutor | None = None
        self.broken = False
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPoolMiddleware:
        value = crawler.settings.get(PROCESSES_SETTING)
        processes = default_processes() if value in (None, "") else crawler.settings.getint(PROCESSES_SETTING)
        if processes <= 0:
            raise NotConfigured(f"{PROCESSES_SETTING} is 0: pages are extracted in the crawl process")
        return cls(crawler, processes)

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            # fork: the workers start with the extractors and layouts already imported
            self.pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("fork"),
                initializer=_die_with_crawl, initargs=(os.getpid(),),
            )  # fmt: skip
        return self.pool

    async def process_response(self, request: Request, response: Response) -> Response:
        source = request.meta.get("source")
        if self.broken or source is None or response.status != 200:
            return response
        layout = str(source.layout)
        encoding = declared_encoding(response.headers.get(b"Content-Type"), response.body)
        try:
            future = self._pool().submit(extract_reviews, response.body, response.url, layout, encoding=encoding)
            result = await asyncio.wrap_future(future)
        except Exception as exc:  # a broken pool, a layout error: the callback extracts (and reports) it
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value(POOL_FALLBACKS)
            if not isinstance(exc, ValueError | LookupError):
                logger.debug("extraction pool could not take %s: %r", response.url, exc)
            if type(exc).__name__ == "BrokenProcessPool":
                self.broken = True
                logger.warning("extraction pool broke (%r); extracting in the crawl process", exc)
            return response
        request.meta[EXTRACTED_META] = PreExtracted(response.url, layout, encoding, result)
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(POOL_PAGES)
        return response

    def spider_closed(self, spider: Any = None) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
