"""Extraction beside the crawl: listing pages are parsed in a worker process while Scrapy fetches.

Scrapy runs every callback and pipeline on one thread, so a page's extraction (lxml parse,
structured data, layout selectors) and the pipelines' per-review work take turns with the
downloads. This downloader middleware hands each listing page (a 200 response to a request that
carries its source) to a worker process and waits for it without blocking the reactor; the
worker extracts the page and fills its reviews' derived fields (crawler.fields, as the normalise
pipeline would), the result rides in the request's meta, and the spider's callback uses it
instead of extracting again (spiders.reviews). The work is the same functions on the same bytes;
only where it runs changes.

Each worker is a forked process joined to the crawl by two pipes that the reactor's asyncio loop
watches: no helper threads in the crawl process (a ProcessPoolExecutor's manager and feeder
threads took the GIL from the reactor on every page), and one length-prefixed pickle each way
per page.

``REPUTATION_EXTRACT_PROCESSES`` sets the pool's size: by default one worker when the machine has
more than one CPU, none (extraction in the crawl process, as before) otherwise or when set to 0.
Workers are forked when the spider opens, so they start with the crawl's modules already
loaded, and a worker's own preparation (the layouts, and extruct's import: see
crawler.extractors.extruct_readers) runs beside the crawl's first requests, not before them.
Anything that goes wrong in a worker (killed, an error) leaves the page to the callback, which
extracts it itself: the workers can make a crawl faster, never lose or change a page.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import struct
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy import signals
from scrapy.exceptions import NotConfigured

from crawler.clock import CLOCK_SETTING, crawl_clock, crawled_at
from crawler.decoding import declared_encoding
from crawler.extractors import ExtractionResult, extract_reviews, prepare
from crawler.fields import normalize_item_counted
from crawler.identity import identify
from crawler.parent_death import die_with_parent
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
    source_id: str
    crawled_at: str
    result: ExtractionResult


def extract_page(
    body: bytes, url: str, layout: str, encoding: str | None, source_id: str, crawled_at: str
) -> ExtractionResult:
    """The worker's job: a page's reviews, extracted, with their derived fields and names filled.

    Each review with text is normalised here (crawler.fields, as the normalise pipeline would,
    against the page's ``crawled_at``) and marked ``normalised``, so the crawl process only
    counts what was replaced; one whose text is still there is then named as its listing's
    (crawler.identity.identify, as the dedupe pipeline would). A review without text is left
    raw for the validate pipeline to drop and count.
    """
    result = extract_reviews(body, url, layout, encoding=encoding)
    moment = datetime.fromisoformat(crawled_at)
    for review in result.reviews:
        if (review.body or "").strip():
            review.crawled_at = crawled_at
            review.invalid_chars_replaced = normalize_item_counted(review, moment).replaced
            review.normalised = True
            if (review.body or "").strip():  # else the normalise pipeline drops it
                review.source_id = source_id
                identify(review)
    return result


_HEADER = struct.Struct("<I")  # a frame: its length, then a pickle
PIPE_BYTES = 1 << 20  # room for several pages, so a page is handed over in one write


def _widen(fd: int) -> None:
    """Give a pipe PIPE_BYTES of room (Linux; 64 KiB, a page or two, otherwise)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or above fs.pipe-max-size
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class WorkerFailed(Exception):
    """A worker could not do a page: its error, or the worker itself is gone."""


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _serve(requests: int, replies: int, crawl_pid: int, foreign: list[int]) -> None:
    """A worker's loop: read a page, reply with its extraction or the error, until the pipe closes.

    ``foreign`` are the crawl's ends of the pipes (this worker's and earlier ones'), inherited by
    the fork: closed here, or the worker would hold its own request pipe open and never see its end.
    """
    die_with_parent(crawl_pid)  # forked with the crawl's descriptors, the writer lock among them
    for fd in foreign:
        os.close(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the crawl's to handle
    prepare()  # layouts and extruct, loaded here beside the crawl, not in the crawl process's start
    out = os.fdopen(replies, "wb", buffering=1 << 16)
    while True:
        try:
            (size,) = _HEADER.unpack(_read_exactly(requests, _HEADER.size))
            task, args = pickle.loads(_read_exactly(requests, size))
        except EOFError:
            return
        reply: tuple[int, bool, Any]
        try:
            reply = (task, True, extract_page(*args))
        except Exception as exc:  # reported to the crawl, which extracts the page itself
            reply = (task, False, f"{type(exc).__name__}: {exc}")
        frame = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
        out.write(_HEADER.pack(len(frame)))
        out.write(frame)
        out.flush()


class _Replies(asyncio.Protocol):
    """The crawl's end of a worker's reply pipe: settles each page's future as its frame arrives."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + size:
                return
            task, ok, value = pickle.loads(self.buffer[_HEADER.size : _HEADER.size + size])
            del self.buffer[: _HEADER.size + size]
            future = self.worker.pending.pop(task, None)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(WorkerFailed(value))

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.lost(exc)


class _Worker:
    """One forked worker and the pipes to it, driven by the running asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, others: list[_Worker]) -> None:
        self.pending: dict[int, asyncio.Future[ExtractionResult]] = {}
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        for fd in (request_write, reply_write):
            _widen(fd)
        context = multiprocessing.get_context("fork")  # starts with the extractors and layouts imported
        self.process = context.Process(
            target=_serve,
            args=(request_read, reply_write, os.getpid(), [request_write, reply_read, *self._ends(others)]),
            daemon=True,
            name="extraction-worker",
        )
        self.process.start()
        os.close(request_read)
        os.close(reply_write)
        self.requests_fd = request_write
        self.replies_fd = reply_read
        self.writer: asyncio.WriteTransport | None = None
        self.gone: asyncio.Future[None] = loop.create_future()  # set when its reply pipe closes
        self.reader: asyncio.BaseTransport | None = None
        self.loop = loop

    @property
    def alive(self) -> bool:
        return not self.gone.done()

    @staticmethod
    def _ends(workers: list[_Worker]) -> list[int]:
        return [fd for w in workers for fd in (w.requests_fd, w.replies_fd)]

    async def connect(self) -> None:
        self.writer, _ = await self.loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(self.requests_fd, "wb", 0)
        )
        self.reader, _ = await self.loop.connect_read_pipe(
            lambda: _Replies(self), os.fdopen(self.replies_fd, "rb", 0)
        )

    def submit(self, task: int, args: tuple[Any, ...]) -> asyncio.Future[ExtractionResult]:
        if not self.alive or self.writer is None or self.writer.is_closing():
            raise WorkerFailed("the worker is gone")
        future: asyncio.Future[ExtractionResult] = self.loop.create_future()
        self.pending[task] = future
        frame = pickle.dumps((task, args), pickle.HIGHEST_PROTOCOL)
        self.writer.writelines((_HEADER.pack(len(frame)), frame))
        return future

    def lost(self, exc: Exception | None) -> None:
        """The reply pipe closed: every page still out comes back as failed."""
        if not self.gone.done():
            self.gone.set_result(None)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(WorkerFailed(f"the worker is gone ({exc or 'pipe closed'})"))
        self.pending.clear()

    async def close(self, timeout: float = 10.0) -> None:
        """End the worker: it reads the end of its pipe and returns; killed if it has not in ``timeout``."""
        if self.writer is not None:
            self.writer.close()  # the loop closes the pipe on its next turn: wait, do not block it
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.gone), timeout)
        self.process.join(0.5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        if self.reader is not None:
            self.reader.close()


def default_processes() -> int:
    """One worker beside the crawl process when there is a second CPU for it."""
    return 1 if (os.cpu_count() or 1) > 1 else 0


def take_pre_extracted(
    meta: dict[str, Any], url: str, layout: str, encoding: str | None, source_id: str
) -> PreExtracted | None:
    """The pool's work on this page when it was extracted with exactly these inputs, else None."""
    found = meta.pop(EXTRACTED_META, None)
    inputs = (url, layout, encoding, source_id)
    if isinstance(found, PreExtracted) and (found.url, found.layout, found.encoding, found.source_id) == inputs:
        return found
    return None


class ExtractionPoolMiddleware:
    """Extracts listing pages in worker processes before they reach the spider (see module doc)."""

    def __init__(self, crawler: Crawler, processes: int) -> None:
        self.crawler = crawler
        self.processes = processes
        self.workers: list[_Worker] = []
        self.starting: asyncio.Future[None] | None = None
        self.tasks = itertools.count()
        self.broken = False
        self.clock = crawl_clock(crawler.settings.get(CLOCK_SETTING))
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPoolMiddleware:
        value = crawler.settings.get(PROCESSES_SETTING)
        processes = default_processes() if value in (None, "") else crawler.settings.getint(PROCESSES_SETTING)
        if processes <= 0:
            raise NotConfigured(f"{PROCESSES_SETTING} is 0: pages are extracted in the crawl process")
        return cls(crawler, processes)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        # Everything alive now (modules, settings, layouts) lives as long as the crawl: out of the
        # collector's sight it is neither scanned by every full collection in either process nor,
        # in a worker, copied page by page when a collection touches it after the fork.
        gc.freeze()
        workers: list[_Worker] = []
        for _ in range(self.processes):
            workers.append(_Worker(loop, workers))
        self.workers = workers
        for worker in workers:
            await worker.connect()

    def _starting(self) -> asyncio.Future[None]:
        """The workers' start, begun on the first call (pages arriving meanwhile wait for it)."""
        if self.starting is None:
            self.starting = asyncio.ensure_future(self._start())
        return self.starting

    def spider_opened(self, spider: Any = None) -> None:
        """Fork the workers now, while the crawl sends its first requests (see module doc)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop running (the middleware driven by hand): the first page forks them
            return
        # a fork that fails is reported to the pages that wait for it; none may come
        self._starting().add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _worker(self) -> _Worker:
        """The live worker with the fewest pages out, forking the workers on first use."""
        await self._starting()
        alive = [w for w in self.workers if w.alive]
        if not alive:
            raise WorkerFailed("every extraction worker is gone")
        return min(alive, key=lambda w: len(w.pending))

    async def process_response(self, request: Request, response: Response) -> Response:
        source = request.meta.get("source")
        if self.broken or source is None or response.status != 200:
            return response
        layout, source_id = str(source.layout), str(source.id)
        encoding = declared_encoding(response.headers.get(b"Content-Type"), response.body)
        moment = crawled_at(self.clock)
        try:
            worker = await self._worker()
            args = (response.body, response.url, layout, encoding, source_id, moment)
            result = await worker.submit(next(self.tasks), args)
        except Exception as exc:  # a broken pool, a layout error: the callback extracts (and reports) it
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value(POOL_FALLBACKS)
            logger.debug("extraction worker could not do %s: %s", response.url, exc)
            if not self.broken and self.workers and not any(w.alive for w in self.workers):
                self.broken = True
                logger.warning("extraction workers are gone (%s); extracting in the crawl process", exc)
            return response
        request.meta[EXTRACTED_META] = PreExtracted(response.url, layout, encoding, source_id, moment, result)
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(POOL_PAGES)
        return response

    async def spider_closed(self, spider: Any = None) -> None:
        workers, self.workers = self.workers, []
        await asyncio.gather(*(worker.close() for worker in workers))
