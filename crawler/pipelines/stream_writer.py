"""Review items to a Redis stream instead of SQLite: the last pipeline of a crawl worker.

A crawl worker (``reputation worker crawl --redis URL``) has no database: this pipeline takes the
place of StorePipeline and appends each review, as the dedupe pipeline left it (stable id,
pseudonymised author, body hash), to the items stream. The single writer (``reputation
ingest``) moves the stream into SQLite through the same code as a single-machine crawl
(crawler.pipelines.review_writer), so a review stores the same row either way.

The spider yields a listing page's reviews as one item (crawler.items.ReviewPage); each
review is still its own message, the page's sent in one round trip. The append is synchronous:
the page's items are in Redis when it returns; the page's frontier lease is released only once its
items are in the items stream and its next-page requests in the frontier
(crawler.redis_frontier.PageOutputMiddleware), so a release loses nothing. A worker
killed between the append and the release fetches the page again; the writer's idempotent
storage turns the second copy into "unchanged".

Message format (owned by reputation.distributed.streams): fields ``v`` (format version),
``data`` (the item as one JSON object), ``kind=review`` and ``worker``. A listing's own
aggregate rating (crawler.aggregates) travels in the same stream with ``kind=aggregate``, so
the writer stores it in ``source_aggregates`` with the crawl's run.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured

from crawler.aggregates import SourceAggregate, aggregate_found
from crawler.items import TRANSIENT_FIELDS, ReviewItem, ReviewOrPage, reviews_of
from crawler.pipelines.dedupe import DedupePipeline
from crawler.redis_frontier import connect, new_generation, worker_author_key

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

ITEMS_STREAM = "reputation:items"  # reputation.distributed.streams.ITEMS_STREAM (a test checks they agree)
FORMAT_VERSION = "1"  # reputation.distributed.streams.FORMAT_VERSION
STREAMED = "reputation/streamed"  # stats: items appended to the stream


def item_payload(item: ReviewItem) -> dict[str, Any]:
    """The item as a JSON-ready dict (every field of ReviewItem, by name)."""
    payload = dataclasses.asdict(item)
    for name in TRANSIENT_FIELDS:
        del payload[name]
    return payload


def aggregate_fields(found: SourceAggregate, worker: str) -> dict[str, str]:
    """The stream fields of a listing's aggregate rating (``kind=aggregate``)."""
    payload = {"source_id": found.source_id, "seen_at": found.seen_at, **dataclasses.asdict(found.aggregate)}
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return {"kind": "aggregate", "worker": worker, "v": FORMAT_VERSION, "data": data}


def item_fields(item: ReviewItem, worker: str) -> dict[str, str]:
    """The stream fields of one review message."""
    data = json.dumps(item_payload(item), ensure_ascii=False, separators=(",", ":"), default=str)
    return {"kind": "review", "worker": worker, "v": FORMAT_VERSION, "data": data}


class StreamWriterPipeline:
    """XADD each review to the items stream; needs REDIS_URL (else NotConfigured)."""

    def __init__(self, crawler: Crawler) -> None:
        url = crawler.settings.get("REDIS_URL")
        if not url:
            raise NotConfigured("StreamWriterPipeline needs REDIS_URL")
        self.crawler = crawler
        self.server = connect(url)
        self.stream = crawler.settings.get("REPUTATION_ITEMS_STREAM") or ITEMS_STREAM
        self.worker = crawler.settings.get("REPUTATION_FRONTIER_WORKER") or "crawl"
        self.aggregates_sent: set[str] = set()  # sources whose aggregate this worker sent (first wins)
        crawler.signals.connect(self.aggregate_seen, signal=aggregate_found)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StreamWriterPipeline:
        return cls(crawler)

    def aggregate_seen(self, found: SourceAggregate) -> None:
        """A listing's own rating, sent once per source and worker (the writer keeps the first per crawl)."""
        if found.source_id not in self.aggregates_sent:
            self.aggregates_sent.add(found.source_id)
            self.server.xadd(self.stream, aggregate_fields(found, self.worker))  # type: ignore[arg-type]

    def process_item(self, item: ReviewOrPage, spider: Any = None) -> ReviewOrPage:
        """One message per review (a page's reviews sent in one round trip), all in Redis on return."""
        reviews = reviews_of(item)
        if not reviews:
            return item
        pipe = self.server.pipeline(transaction=False)
        for review in reviews:
            pipe.xadd(self.stream, item_fields(review, self.worker))  # type: ignore[arg-type]
        pipe.execute()
        stats = self.crawler.stats
        if stats is not None:
            stats.inc_value(STREAMED, len(reviews))
        return item


class WorkerDedupePipeline(DedupePipeline):
    """The dedupe pipeline with the writer's author key from Redis or ``$REPUTATION_AUTHOR_KEY`` (a worker has no database)."""

    redis_url = ""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WorkerDedupePipeline:
        pipeline = cls(None, crawler.stats)  # type: ignore[arg-type]  # no database in a worker
        pipeline.redis_url = crawler.settings["REDIS_URL"]
        crawler.signals.connect(pipeline.forget_round, signal=new_generation)
        return pipeline

    def forget_round(self, generation: str) -> None:
        """A new round: its reviews are seen anew (a repeat of the last round's is no duplicate)."""
        self.seen.clear()

    def open_spider(self, spider: Any = None) -> None:
        self.key = worker_author_key(self.redis_url)
