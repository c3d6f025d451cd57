"""The ``reviews`` spider on the shared Redis frontier: what a crawl worker runs.

Navigation and extraction are the ``reviews`` spider's own (this subclasses it); what differs:

* start entries come from the frontier's start list (pushed by ``reputation crawl --redis``,
  reputation.distributed.enqueue), each carrying its source row, so no database is read;
* requests are taken from and pushed to the shared frontier (crawler.redis_frontier), and each
  page, once its items are in the items stream and its next pages in the frontier (counted by
  crawler.redis_frontier.PageOutputMiddleware, not at the callback's end), is recorded in the
  pages stream and its lease released;
* the page budget and the repeating-page stop count per worker and round (each sees the pages it
  fetched; a worker that outlives a round forgets it when the next begins: ``enter_generation``),
  and an incremental crawl does not stop early at known reviews (that needs the database): it
  reads the listing newest first to its end and the writer stores known reviews as unchanged.

Each page record in the pages stream says what the writer needs to close the round as a
single-machine crawl closes itself (reputation.distributed.rounds): ``status``, ``items``,
``error`` (why the page failed, named by spiders.reviews.error_reason as in a local crawl's
``errors_by_reason``), ``stop`` (why the walk did not go on from this page: the reviews
spider's stop or skip reason, as ``reputation/source_stopped/`` keeps it; empty when it went
on or the listing ended there), ``skipped`` (the skip reason when the page was not fetched:
robots_txt, ignored, out_of_scope), ``empty`` (what a page without a review looked like:
crawler.source_status.classify_empty_page) and ``dropped`` (reviews this worker dropped,
duplicates within its crawl apart, since its previous record: a dropped review's row would look
removed).

Run by crawler.redis_frontier.run_worker (``reputation worker crawl --redis URL``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import scrapy
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from scrapy_redis.spiders import RedisMixin
from twisted.python.failure import Failure

from crawler import stat_keys as keys
from crawler.items import ReviewPage
from crawler.redis_frontier import (
    DEAD_LETTER_COUNTS,
    DEAD_LETTER_STREAM,
    GENERATION_META,
    PAGES_STREAM,
    REASON_MALFORMED,
    START_KEY,
    RedisStartAdapter,
    connect,
    frontier_depth,
    new_generation,
    release,
)
from crawler.source_status import OUT_OF_SCOPE_REDIRECT, classify_empty_page
from crawler.sources import SOURCE_COLUMNS
from spiders.reviews import ReviewsSpider, error_reason, page_text
from storage.records import Source

logger = logging.getLogger(__name__)

#: The pages stream is for checks, status and closing rounds; bounded so it never grows without end.
PAGES_STREAM_MAXLEN = 1_000_000


def source_from_entry(entry: Mapping[str, Any]) -> Source:
    """The Source a start entry carries (ValueError names what is wrong)."""
    raw = entry.get("source")
    if not isinstance(raw, dict):
        raise ValueError("start entry has no 'source' object")
    missing = [c for c in ("id", "brand_id", "url") if not raw.get(c)]
    if missing:
        raise ValueError(f"start entry's source lacks {', '.join(missing)}")
    return Source(**{k: v for k, v in raw.items() if k in SOURCE_COLUMNS})


@dataclass
class OpenPage:
    """A fetched page whose lease is held until everything its callback yielded is in Redis."""

    response: Response
    done: int = 0  # outputs in Redis: items out of the pipelines, requests in the frontier
    outputs: int | None = None  # what the callback handed the engine; None until it ended
    items: int = 0  # items among ``done`` (for the pages stream)
    stop: str = ""  # why the walk did not go on from this page (ReviewsSpider.page_decided)
    error: str = ""  # why the page could not be read (layout_error: its layout is misconfigured here)
    empty: str = ""  # what it looked like when it had no review (ReviewsSpider.note_empty)


class FrontierReviewsSpider(RedisStartAdapter, RedisMixin, ReviewsSpider):  # type: ignore[misc,unused-ignore]
    """The ``reviews`` spider reading its start entries and requests from the shared frontier."""

    name = "reviews_frontier"
    # Start entries taken per idle check: their first-page requests go straight back to the shared
    # queue (any worker may fetch them), so taking many at once only spreads the sources sooner.
    redis_batch_size = 256
    idle_exit: float | None = None  # seconds the whole frontier may stay empty before the worker stops
    empty_since: float | None = None
    worker = "crawl"
    open_pages: dict[int, OpenPage]  # id(response) -> the page awaiting its outputs
    generation = ""  # the round (crawler.redis_frontier.GENERATION_KEY) this worker's state belongs to
    drops_reported = 0  # this worker's drops already counted in a page record

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> FrontierReviewsSpider:
        # Not ReviewsSpider.from_crawler: a worker selects no sources from a database.
        spider: FrontierReviewsSpider = scrapy.Spider.from_crawler.__func__(cls, crawler, *args, **kwargs)  # type: ignore[attr-defined]
        settings = crawler.settings
        spider.sources = []
        spider.allowed_domains = []  # scope per source: crawler.scope and RedirectScopeMiddleware
        spider.max_pages = max(1, settings.getint("REPUTATION_MAX_PAGES_PER_SOURCE", 1000))
        spider.max_empty_pages = max(1, settings.getint("REPUTATION_MAX_EMPTY_PAGES", 3))
        spider.selection = {"redis": True}
        idle = settings.getfloat("REPUTATION_WORKER_IDLE_EXIT", -1.0)  # negative: run until stopped
        spider.idle_exit = idle if idle >= 0 else None
        spider.setup_redis(crawler)
        spider.server = connect(settings["REDIS_URL"])  # retries through Redis restarts
        spider.count_size = spider.server.llen
        spider.worker = settings["REPUTATION_FRONTIER_WORKER"]
        spider.open_pages = {}
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(spider.item_finished, signal=signal)
        crawler.signals.connect(spider.page_error, signal=signals.spider_error)
        return spider

    def make_request_from_data(self, data: bytes | str) -> list[scrapy.Request]:
        """A start entry (JSON: url, source, kind) -> the source's first page request."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        try:
            entry = json.loads(text)
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                raise ValueError("start entry is not a JSON object with a 'url'")
            source = source_from_entry(entry)
        except (ValueError, TypeError) as exc:
            self.crawler.stats.inc_value("reputation/frontier/bad_start_entry")
            pipe = self.server.pipeline(transaction=True)
            pipe.xadd(DEAD_LETTER_STREAM, {
                "stream": START_KEY, "group": "crawl", "id": "", "reason": REASON_MALFORMED,
                "detail": str(exc)[:2000], "deliveries": "1", "fields": text[:100_000], "at": f"{time.time():.3f}",
            })  # fmt: skip
            pipe.hincrby(DEAD_LETTER_COUNTS, f"{START_KEY}|{REASON_MALFORMED}", 1)
            pipe.execute()
            logger.error("dead-lettered a start entry: %s", exc)
            return []
        self.enter_generation(entry.get("generation"))
        return [self.page_request(entry["url"], source, page=1)]

    def enter_generation(self, generation: Any) -> None:
        """Forget the last round when a request of a newer one arrives.

        A worker outlives rounds: the pages it requested (which it would not request again), the
        reviews it saw (a page of them would stop the walk as repeating), each source's page
        budget and its dedupe pipeline's ids belong to one round. Rounds begin only when the
        frontier is empty, so no page of the last round is still in hand.
        """
        if not isinstance(generation, str) or not generation.isdigit():
            return  # an entry from an older enqueuer: no rounds to tell apart
        if self.generation.isdigit() and int(generation) <= int(self.generation):
            return
        self.generation = generation
        self.requested.clear()
        self.pages_requested.clear()
        self.over_budget.clear()
        self.seen_reviews.clear()
        self.crawler.signals.send_catch_log(signal=new_generation, generation=generation)

    def page_request(self, url: str, source: Source, *, page: int, empty_run: int = 0) -> scrapy.Request:
        request = super().page_request(url, source, page=page, empty_run=empty_run)
        if self.generation:
            request.meta[GENERATION_META] = self.generation
        return request

    def parse_page(self, response: Response) -> Iterator[ReviewPage | scrapy.Request]:
        # Its outputs are counted by crawler.redis_frontier.PageOutputMiddleware as they reach the
        # engine; what the walk decides on it comes through page_decided and note_empty.
        self.open_pages[id(response)] = OpenPage(response)
        self.enter_generation(response.meta.get(GENERATION_META))
        yield from super().parse_page(response)

    def page_decided(self, response: Response, *, stop: str = "", error: str = "") -> None:
        """Keep what the walk decided on the page for its record: its first stop, or why it could not be read."""
        state = self.open_pages.get(id(response))
        if state is not None:
            state.stop = state.stop or stop
            state.error = state.error or error

    def note_empty(self, source: Source, response: Response) -> str | None:
        """Every page without a review is recorded with what it looked like, read from it once."""
        kind = super().note_empty(source, response) or classify_empty_page(page_text(response))
        state = self.open_pages.get(id(response))
        if state is not None:
            state.empty = kind
        return kind

    def tracks_page(self, response: Any) -> bool:
        """Whether the page's outputs are awaited before its lease is released (PageOutputMiddleware asks)."""
        return id(response) in self.open_pages

    def outputs_ended(self, response: Response, outputs: int) -> None:
        """The page's callback handed the engine ``outputs`` items and requests (PageOutputMiddleware)."""
        state = self.open_pages.get(id(response))
        if state is not None:
            state.outputs = outputs
            self.output_done(id(response), 0)

    def item_finished(self, item: Any, response: Response | None = None, **kwargs: Any) -> None:
        """An item left the pipelines (streamed, or dropped with its reason counted)."""
        state = self.open_pages.get(id(response)) if response is not None else None
        if state is not None:
            state.items += 1
            self.output_done(id(response))

    def page_error(self, failure: Any, response: Any = None, **kwargs: Any) -> None:
        """The callback raised: its page is dead-lettered and released (FrontierScheduler.spider_error), not awaited."""
        if response is not None:
            self.open_pages.pop(id(response), None)

    def request_queued(self, page: int) -> None:
        """A request the page yielded is in the frontier, or was already (FrontierScheduler.enqueue_request)."""
        self.output_done(page)

    def output_done(self, page: int, done: int = 1) -> None:
        """Release the page once its callback ended and every item and request it yielded is in Redis.

        Not at the callback's end, nor when its items are streamed: Scrapy takes a callback's
        output ahead of handling it (scrapy.utils.asyncio._parallel_asyncio), so a next-page
        request may still wait in Scrapy's queue; a worker killed then would lose the rest of the
        listing, as the released page is never fetched again.
        """
        state = self.open_pages.get(page)
        if state is None:
            return
        state.done += done
        if state.outputs is not None and state.done >= state.outputs:
            del self.open_pages[page]
            empty = "" if state.items or state.error else state.empty
            self.page_done(state.response.request, state.response.status, state.items, error=state.error,
                           stop=state.stop, empty=empty)  # fmt: skip

    def page_failed(self, failure: Failure) -> None:
        """Count it as a local crawl does; record it with the same reason (a skip notes a stop, an error does not)."""
        skipped = self.count_failure(failure)
        request = failure.request  # type: ignore[attr-defined]
        response = getattr(failure.value, "response", None)
        status = getattr(response, "status", 0) or 0
        if skipped:  # a listing that redirects off its site at once is "empty", as in a local crawl
            first = skipped == keys.OUT_OF_SCOPE and request.meta.get("page", 1) == 1
            self.page_done(
                request,
                status,
                0,
                stop=skipped,
                skipped=skipped,
                empty=OUT_OF_SCOPE_REDIRECT if first else "",
            )
        else:
            self.page_done(request, status, 0, error=error_reason(failure))

    def page_done(self, request: scrapy.Request | None, status: int, items: int, *, error: str = "", stop: str = "",
                  skipped: str = "", empty: str = "") -> None:  # fmt: skip
        """Record the page in the pages stream, then release its frontier lease."""
        if request is None:
            return
        source: Source | None = request.meta.get("source")
        self.server.xadd(
            PAGES_STREAM,
            {"url": request.url, "source_id": source.id if source else "", "status": str(status),
             "items": str(items), "error": error, "stop": stop, "skipped": skipped, "empty": empty,
             "dropped": str(self.new_drops()), "worker": self.worker},
            maxlen=PAGES_STREAM_MAXLEN, approximate=True,
        )  # fmt: skip
        release(self.crawler, request)

    def new_drops(self) -> int:
        """Reviews dropped (duplicates within this worker's crawl apart) since the last page record.

        A page's drops happen before its record (its lease waits for its items), so the records of
        a round add up to at least every drop of its pages.
        """
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        total = keys.lost_reviews(keys.by_prefix(stats, keys.DROPPED))
        new, self.drops_reported = total - self.drops_reported, total
        return max(0, new)

    def spider_idle(self) -> None:
        """Take more start entries; with ``idle_exit``, stop once the whole frontier stayed empty that long."""
        self.schedule_next_requests()
        if self.idle_exit is not None:
            if any(frontier_depth(self.server).values()):
                self.empty_since = None
            elif self.empty_since is None:
                self.empty_since = time.monotonic()
            elif time.monotonic() - self.empty_since >= self.idle_exit:
                return  # let the spider close
        raise DontCloseSpider
