"""The shared crawl frontier on Redis: scrapy-redis's scheduler and duplicate filter, made safe to kill.

Every crawl worker (``reputation worker crawl --redis URL``) runs the ``reviews`` spider with
these settings (``frontier_settings``). Requests live in one Redis sorted set, the duplicate
filter in one Redis set, both kept when a worker stops (``SCHEDULER_PERSIST``), so any worker
may take any request and a restarted worker resumes where the frontier is.

What this module adds to scrapy-redis 0.9.1 (pinned ``>=0.9.1,<0.10`` in pyproject.toml):

* **Leases, so a killed worker loses no page.** scrapy-redis pops a request and forgets it: a
  worker killed with SIGKILL loses every request it had popped. Here a pop moves the request
  into a lease (one Lua script, atomic) owned by the worker; the lease is released once the
  page's items are in the items stream and its next-page requests are in the frontier (the
  worker spider calls ``release``), or when the request is handed on (a redirect or a retry
  goes back through ``enqueue_request`` first). Each worker refreshes a heartbeat key; any
  worker puts the leases of a worker whose heartbeat expired back in the queue. A request
  whose lease expired ``REPUTATION_FRONTIER_MAX_TRIES`` times goes to the dead-letter stream
  (reason ``too_many_deliveries``) instead of killing workers for ever.
* **Async start (Scrapy >= 2.13).** scrapy-redis 0.9.1 only has ``start_requests()``; Scrapy
  2.13 replaced it by ``async def start()`` (deprecated, then dropped upstream:
  scrapy/scrapy#7490). ``RedisStartAdapter`` provides ``start()``; upstream issue
  rmax/scrapy-redis#305 (PR #316) tracks the same fix in scrapy-redis itself. Remove the
  adapter once a scrapy-redis release has it.
* **Per-domain politeness across workers.** Scrapy's DOWNLOAD_DELAY and
  CONCURRENT_REQUESTS_PER_DOMAIN hold per process only. ``PoliteDownloader`` takes a per-host
  token in Redis (``SET key NX PX delay``) at the moment a download starts, so all workers
  together start at most one request per host per DOWNLOAD_DELAY (AutoThrottle's current
  delay, when larger). robots.txt is fetched and obeyed by each worker (ROBOTSTXT_OBEY).
* **Redis restarts.** The client retries every command with backoff until Redis answers
  (run Redis with ``appendonly yes`` so a restart keeps the frontier).

Requests are pickled (scrapy-redis's default serializer): only trusted processes may write to
this Redis, as only trusted ones may write to the SQLite file.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from time import monotonic
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from scrapy import signals
from scrapy.core.downloader import Downloader, Slot
from scrapy.crawler import CrawlerProcess
from scrapy.http import Request
from scrapy.settings import Settings
from scrapy.utils.asyncio import call_later
from scrapy.utils.httpobj import urlparse_cached
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet import task

from crawler.identity import AUTHOR_KEY_ENV
from storage.errors import ReputationError

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

#: Key prefix of the frontier (the same names as reputation.distributed.streams).
PREFIX = "reputation:crawl"
REQUESTS_KEY = f"{PREFIX}:requests"
DUPEFILTER_KEY = f"{PREFIX}:dupefilter"
START_KEY = f"{PREFIX}:start"
LEASES_KEY = f"{PREFIX}:leases"  # lease id -> the encoded request
LEASE_OWNERS_KEY = f"{PREFIX}:lease_owners"  # lease id -> "worker|score|leased_at"
LEASE_TRIES_KEY = f"{PREFIX}:lease_tries"  # lease id -> times its worker died holding it
ALIVE_PREFIX = f"{PREFIX}:alive:"  # + worker name: heartbeat, expires after the lease TTL
POLITE_PREFIX = f"{PREFIX}:polite:"  # + host: the per-host token of SharedPolitenessMiddleware
DEAD_REQUESTS_KEY = f"{PREFIX}:dead_requests"  # lease id -> encoded request given up on
REQUEUED_KEY = f"{PREFIX}:requeued"  # list of URLs requeued from dead workers' leases (the latest 10,000)
GENERATION_KEY = f"{PREFIX}:generation"  # counter: one more per round (``new_round``)
# Shared with reputation.distributed.streams (this layer cannot import it; a test checks they agree).
DEAD_LETTER_STREAM = "reputation:dead"
DEAD_LETTER_COUNTS = "reputation:dead:counts"
PAGES_STREAM = "reputation:pages"
REASON_TOO_MANY_DELIVERIES = "too_many_deliveries"
REASON_MALFORMED = "malformed"
#: Hash with what workers need from the writer's side (the author-pseudonym key).
CONFIG_KEY = f"{PREFIX}:config"
AUTHOR_KEY_FIELD = "author_key"
#: The spider a crawl worker runs (spiders.frontier).
WORKER_SPIDER = "reviews_frontier"

LEASE_META = "frontier_lease"
# request.meta key: the round (GENERATION_KEY's value) the request belongs to; start entries carry it too.
GENERATION_META = "frontier_generation"
#: Signal (``generation``: str) a worker sends when it meets a request of a newer round than its
#: last: what it remembers of a crawl (pages requested, reviews seen) belongs to the last round.
new_generation = object()
# request.meta key: the page (the id of the response) whose callback yielded the request; popped
# before the request is queued. Set by PageOutputMiddleware, read by FrontierScheduler.enqueue_request.
PAGE_META = "frontier_page"
SPIDER_MIDDLEWARE = "crawler.redis_frontier.PageOutputMiddleware"
DEFAULT_LEASE_TTL = 30.0
DEFAULT_MAX_TRIES = 5

# KEYS: queue, leases, owners. ARGV: worker, now. Pops the best request into a lease.
_POP = """
local r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #r == 0 then return false end
redis.call('ZREM', KEYS[1], r[1])
local id = redis.sha1hex(r[1])
redis.call('HSET', KEYS[2], id, r[1])
redis.call('HSET', KEYS[3], id, ARGV[1] .. '|' .. r[2] .. '|' .. ARGV[2])
return {id, r[1]}
"""

# KEYS: queue, dupefilter, leases, owners, tries. ARGV: fingerprint ('' = do not filter), score, data,
# lease handed on ('' = none). The duplicate filter and the queue change together, so a worker
# killed in between cannot leave a request marked seen but never queued; the lease a redirect or
# retry carries on is released in the same step.
_PUSH = """
local added = 1
if ARGV[1] ~= '' then added = redis.call('SADD', KEYS[2], ARGV[1]) end
if added == 1 then redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[3]) end
if ARGV[4] ~= '' then
  redis.call('HDEL', KEYS[3], ARGV[4])
  redis.call('HDEL', KEYS[4], ARGV[4])
  redis.call('HDEL', KEYS[5], ARGV[4])
end
return added
"""

# KEYS: queue, leases, owners, tries, dead stream, dead counts, dead requests.
# ARGV: alive prefix, max tries, now. Requeues the leases of workers whose heartbeat expired.
_RECLAIM = """
local owners = redis.call('HGETALL', KEYS[3])
local requeued = {}
local dead = 0
for i = 1, #owners, 2 do
  local id, v = owners[i], owners[i + 1]
  local worker, score = string.match(v, '^(.-)|([^|]*)|')
  if worker == nil or redis.call('EXISTS', ARGV[1] .. worker) == 0 then
    local data = redis.call('HGET', KEYS[2], id)
    local tries = redis.call('HINCRBY', KEYS[4], id, 1)
    if data then
      if tries >= tonumber(ARGV[2]) then
        redis.call('HSET', KEYS[7], id, data)
        redis.call('XADD', KEYS[5], '*', 'stream', KEYS[1], 'group', 'crawl', 'id', id,
          'reason', 'too_many_deliveries',
          'detail', 'a worker died holding this request ' .. tries .. ' times; request kept in ' .. KEYS[7],
          'deliveries', tostring(tries), 'fields', '{}', 'at', ARGV[3])
        redis.call('HINCRBY', KEYS[6], KEYS[1] .. '|too_many_deliveries', 1)
        redis.call('HDEL', KEYS[4], id)
        dead = dead + 1
      else
        redis.call('ZADD', KEYS[1], tonumber(score) or 0, data)
        table.insert(requeued, data)
      end
    end
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
  end
end
return {dead, requeued}
"""


def reclaim_leases(server: redis.Redis, queue_key: str = REQUESTS_KEY, max_tries: int = DEFAULT_MAX_TRIES) -> tuple[int, list[bytes]]:
    """Put the leases of workers whose heartbeat expired back in the queue (one Lua script).

    Returns (requests dead-lettered, encoded requests requeued). A request whose worker died
    holding it ``max_tries`` times goes to the dead-letter stream instead (too_many_deliveries).
    """
    dead, requeued = server.eval(
        _RECLAIM, 7, queue_key, LEASES_KEY, LEASE_OWNERS_KEY, LEASE_TRIES_KEY,
        DEAD_LETTER_STREAM, DEAD_LETTER_COUNTS, DEAD_REQUESTS_KEY,
        ALIVE_PREFIX, max_tries, f"{time.time():.3f}",
    )  # fmt: skip
    return int(dead), list(requeued)


def connect(url: str) -> redis.Redis:
    """A binary client (pickled requests) that waits out connection loss: every command retries with backoff."""
    return redis.Redis.from_url(
        url,
        socket_timeout=30.0,
        socket_connect_timeout=5.0,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=10.0, base=0.1), -1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
    )


def worker_name() -> str:
    """Unique per process, so a restarted worker never inherits a dead one's leases."""
    return f"crawl@{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def frontier_settings(redis_url: str, *, worker: str | None = None, lease_ttl: float = DEFAULT_LEASE_TTL) -> dict[str, Any]:
    """Scrapy settings that make a crawl take its requests from the shared frontier at ``redis_url``."""
    return {
        "REDIS_URL": redis_url,
        "SCHEDULER": "crawler.redis_frontier.FrontierScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.redis_frontier.LeasedPriorityQueue",
        "SCHEDULER_QUEUE_KEY": REQUESTS_KEY,
        "SCHEDULER_DUPEFILTER_KEY": DUPEFILTER_KEY,
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": True,  # a stopping worker leaves the frontier to the others
        "REDIS_START_URLS_KEY": START_KEY,
        "REPUTATION_FRONTIER_WORKER": worker or worker_name(),
        "REPUTATION_FRONTIER_LEASE_TTL": lease_ttl,
        "REPUTATION_FRONTIER_MAX_TRIES": DEFAULT_MAX_TRIES,
    }


_schedulers: weakref.WeakKeyDictionary[Crawler, FrontierScheduler] = weakref.WeakKeyDictionary()


class LeasedPriorityQueue(PriorityQueue):  # type: ignore[misc,unused-ignore]  # scrapy-redis has no type hints
    """scrapy-redis's priority queue whose pop leases the request to this worker (see the module doc)."""

    worker = "crawl@unknown"

    def pop(self, timeout: int = 0) -> Request | None:
        got = self.server.eval(_POP, 3, self.key, LEASES_KEY, LEASE_OWNERS_KEY, self.worker, f"{time.time():.3f}")
        if not got:
            return None
        lease, data = got
        request: Request = self._decode_request(data)
        request.meta[LEASE_META] = lease.decode() if isinstance(lease, bytes) else str(lease)
        return request


class FrontierScheduler(Scheduler):  # type: ignore[misc,unused-ignore]
    """scrapy-redis's scheduler with leases, a heartbeat and re-queueing of dead workers' leases."""

    crawler: Crawler | None = None
    worker = "crawl@unknown"
    lease_ttl = DEFAULT_LEASE_TTL
    max_tries = DEFAULT_MAX_TRIES
    heartbeat: task.LoopingCall | None = None
    poller: task.LoopingCall | None = None
    poll_seconds = 0.1
    requeued_urls: list[str]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierScheduler:
        instance: FrontierScheduler = super().from_crawler(crawler)
        # scrapy-redis builds its own client from REDIS_PARAMS; ours retries through outages.
        instance.server = connect(crawler.settings["REDIS_URL"])
        settings = crawler.settings
        instance.crawler = crawler
        instance.worker = settings.get("REPUTATION_FRONTIER_WORKER") or worker_name()
        instance.lease_ttl = settings.getfloat("REPUTATION_FRONTIER_LEASE_TTL", DEFAULT_LEASE_TTL)
        instance.max_tries = settings.getint("REPUTATION_FRONTIER_MAX_TRIES", DEFAULT_MAX_TRIES)
        instance.heartbeat = None
        instance.requeued_urls = []
        _schedulers[crawler] = instance
        crawler.signals.connect(instance.spider_error, signal=signals.spider_error)
        return instance

    @classmethod
    def of(cls, crawler: Crawler) -> FrontierScheduler | None:
        return _schedulers.get(crawler)

    def open(self, spider: Any) -> None:
        super().open(spider)
        if self.df is not None:
            self.df.server = self.server
        self.queue.worker = self.worker
        self.queue.server = self.server
        self.beat()
        self.reclaim()
        self.heartbeat = task.LoopingCall(self.tick)
        self.heartbeat.start(max(0.2, self.lease_ttl / 3), now=False)
        self.poller = task.LoopingCall(self.poll)
        self.poller.start(self.poll_seconds, now=False)

    def close(self, reason: str) -> None:
        for loop in (self.heartbeat, self.poller):
            if loop is not None and loop.running:
                loop.stop()
        super().close(reason)
        # A clean stop hands its leases back at once (a killed worker's wait for their TTL).
        self.server.delete(ALIVE_PREFIX + self.worker)
        self.reclaim()

    def tick(self) -> None:
        try:
            self.beat()
            self.reclaim()
        except Exception:  # noqa: BLE001 - the heartbeat must keep running; the next tick retries
            logger.exception("frontier heartbeat failed")

    def poll(self) -> None:
        """Wake the engine when the shared queue has requests.

        Scrapy's engine asks its scheduler for more after each download and otherwise only every
        5 s (its slot heartbeat): fine for a local queue, but here other workers fill the queue,
        and a worker that found it empty would sit idle for up to 5 s per page chain. The engine
        has no public wake-up call; its slot's ``nextcall`` is what it schedules itself.
        """
        try:
            slot = getattr(getattr(self.crawler, "engine", None), "_slot", None)
            if slot is not None and self.server.zcard(self.queue.key):
                slot.nextcall.schedule()
        except Exception:  # noqa: BLE001 - a stopped poller would leave the worker idle; retry next time
            logger.exception("frontier poll failed")

    def beat(self) -> None:
        self.server.set(ALIVE_PREFIX + self.worker, f"{time.time():.3f}", px=int(self.lease_ttl * 1000))

    def reclaim(self) -> int:
        """Requeue the leases of workers whose heartbeat expired; returns how many were requeued."""
        dead, requeued = reclaim_leases(self.server, self.queue.key, self.max_tries)
        for data in requeued:
            url = self.queue._decode_request(data).url
            self.requeued_urls.append(url)
            self.server.lpush(REQUEUED_KEY, url)
            self.server.ltrim(REQUEUED_KEY, 0, 9_999)
            logger.warning("requeued %s (its worker stopped answering)", url)
            if self.stats:
                self.stats.inc_value("reputation/frontier/requeued")
        if dead:
            logger.error("dead-lettered %d requests whose workers kept dying", dead)
            if self.stats:
                self.stats.inc_value("reputation/frontier/dead_lettered", dead)
        return len(requeued)

    def enqueue_request(self, request: Request) -> bool:
        """Push unless seen (one script with the duplicate filter); release the lease it carried on.

        A redirect or a retry of a leased request comes back here carrying the lease: the new
        request is queued and the old lease released together.
        """
        lease = request.meta.pop(LEASE_META, None) or ""
        page = request.meta.pop(PAGE_META, None)
        fingerprint = "" if request.dont_filter else self.df.request_fingerprint(request)
        data = self.queue._encode_request(request)
        added = bool(self.server.eval(
            _PUSH, 5, self.queue.key, self.df.key, LEASES_KEY, LEASE_OWNERS_KEY, LEASE_TRIES_KEY,
            fingerprint, -request.priority, data, lease,
        ))  # fmt: skip
        if not added:
            self.df.log(request, self.spider)
        elif self.stats:
            self.stats.inc_value("scheduler/enqueued/redis", spider=self.spider)
        if page is not None:  # queued (or already seen): one less thing its page waits for
            handed_on = getattr(self.spider, "request_queued", None)
            if handed_on is not None:
                handed_on(page)
        return added

    def release(self, request: Request) -> None:
        """The request's page is done: its items and next requests are stored in Redis."""
        lease = request.meta.pop(LEASE_META, None)
        if lease:
            self.release_lease(lease)

    def release_lease(self, lease: str) -> None:
        pipe = self.server.pipeline(transaction=True)
        pipe.hdel(LEASES_KEY, lease)
        pipe.hdel(LEASE_OWNERS_KEY, lease)
        pipe.hdel(LEASE_TRIES_KEY, lease)
        pipe.execute()

    def spider_error(self, failure: Any, response: Any, spider: Any) -> None:
        """A callback raised: the same page would fail the same way on every worker, so dead-letter it."""
        request = getattr(response, "request", None)
        lease = request.meta.pop(LEASE_META, None) if request is not None else None
        if not lease or request is None:
            return
        pipe = self.server.pipeline(transaction=True)
        pipe.xadd(DEAD_LETTER_STREAM, {
            "stream": self.queue.key, "group": "crawl", "id": lease, "reason": "callback_error",
            "detail": f"{request.url}: {failure.getErrorMessage()}"[:2000], "deliveries": "1",
            "fields": json.dumps({"url": request.url}), "at": f"{time.time():.3f}",
        })  # fmt: skip
        pipe.hincrby(DEAD_LETTER_COUNTS, f"{self.queue.key}|callback_error", 1)
        pipe.execute()
        self.release_lease(lease)

    def has_pending_requests(self) -> bool:
        return len(self) > 0


class PageOutputMiddleware:
    """Engine-side spider middleware: tells the spider what a page's callback finally handed the engine.

    A page's lease may only be released once its items are in the items stream *and* its next-page
    requests are in the frontier. Scrapy takes the callback's output ahead of handling it (a small
    queue, scrapy.utils.asyncio._parallel_asyncio): the callback can end, and its items leave
    the pipelines, while a next-page request still waits in that queue. A worker killed then
    would lose the rest of the listing. So this middleware, the last one before the engine,
    counts every output that will reach it and marks each request with its page (``PAGE_META``);
    the spider (spiders.frontier) releases the page once that many outputs are done: each item
    through the pipelines (item signals), each request through ``FrontierScheduler.enqueue_request``.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageOutputMiddleware:
        return cls(crawler)

    def _ended(self, response: Any) -> Callable[[Any, int], None] | None:
        """The spider's ``outputs_ended`` when it awaits this page's outputs, else None.

        Asked once the callback has started (after its first output, or its end): the spider
        opens a page in the callback, which runs only when this middleware pulls from it.
        """
        spider = self.crawler.spider
        tracks = getattr(spider, "tracks_page", None)
        return getattr(spider, "outputs_ended", None) if tracks is not None and tracks(response) else None

    def process_spider_output(self, response: Any, result: Any) -> Any:
        ended: Callable[[Any, int], None] | None = None
        outputs = 0
        for output in result:
            ended = ended or self._ended(response)
            outputs += self._mark(output, response, ended)
            yield output
        ended = ended or self._ended(response)
        if ended is not None:
            ended(response, outputs)

    async def process_spider_output_async(self, response: Any, result: Any) -> AsyncIterator[Any]:
        ended: Callable[[Any, int], None] | None = None
        outputs = 0
        async for output in result:
            ended = ended or self._ended(response)
            outputs += self._mark(output, response, ended)
            yield output
        ended = ended or self._ended(response)
        if ended is not None:
            ended(response, outputs)

    @staticmethod
    def _mark(output: Any, response: Any, ended: Callable[[Any, int], None] | None) -> int:
        """1 for an output the page waits for (an item, or a request marked with its page), else 0."""
        if ended is None or output is None:
            return 0
        if isinstance(output, Request):
            output.meta[PAGE_META] = id(response)
        return 1


def release(crawler: Crawler, request: Request) -> None:
    """Release ``request``'s lease in ``crawler``'s frontier scheduler (no-op without one)."""
    scheduler = FrontierScheduler.of(crawler)
    if scheduler is not None:
        scheduler.release(request)


def frontier_depth(client: redis.Redis) -> dict[str, int]:
    """Requests waiting, leased (being fetched) and start entries not yet taken."""
    pipe = client.pipeline(transaction=False)
    pipe.zcard(REQUESTS_KEY)
    pipe.hlen(LEASES_KEY)
    pipe.llen(START_KEY)
    queued, leased, start = pipe.execute()
    return {"queued": int(queued), "leased": int(leased), "start": int(start)}


def frontier_empty(client: redis.Redis) -> bool:
    return not any(frontier_depth(client).values())


def new_round(client: redis.Redis) -> bool:
    """Forget the last round's duplicate filter when the frontier is empty, and count one more
    round (``GENERATION_KEY``); True if it was.

    The filter persists so restarted workers do not fetch a page twice within a round; the next
    round (tomorrow's crawl of the same sources) must fetch the pages again, and running workers
    must forget what they requested and saw in the last one (``new_generation``).
    """
    if not frontier_empty(client):
        return False
    pipe = client.pipeline(transaction=True)
    pipe.delete(DUPEFILTER_KEY, LEASE_TRIES_KEY)
    pipe.incr(GENERATION_KEY)
    pipe.execute()
    return True


def current_generation(client: redis.Redis) -> str:
    """The round the frontier is in (``new_round`` counts them); "" before the first."""
    value = client.get(GENERATION_KEY)
    return value.decode() if isinstance(value, bytes) else str(value or "")


class RedisStartAdapter:
    """``async start()`` for scrapy-redis's RedisMixin under Scrapy >= 2.13.

    Upstream: rmax/scrapy-redis#305 ("Asynchronous start method compatible with new Scrapy
    versions", fix proposed in PR #316). scrapy-redis 0.9.1 feeds start requests through the
    deprecated ``start_requests()``; this yields the first batch from the start key and leaves
    the rest to RedisMixin's ``spider_idle`` handler, as scrapy-redis does.
    """

    async def start(self) -> AsyncIterator[Request]:
        for request in self.next_requests():  # type: ignore[attr-defined]
            yield request


class PoliteDownloader(Downloader):
    """Scrapy's downloader whose per-host delay holds across all workers: a token per host in Redis.

    Scrapy enforces DOWNLOAD_DELAY (and AutoThrottle's delay) per process, in the downloader's
    per-host slot. Here, the moment a slot is about to start a download, it must also take the
    host's token (``SET polite:<host> NX PX <delay>``); when another worker holds it, the slot
    waits out the token's remaining time. So all workers together start at most one request per
    host per delay. The token lasts the slot's base delay (AutoThrottle's current one when
    larger), not the randomised one. Off (no Redis traffic) when the delay is 0.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.server = connect(crawler.settings["REDIS_URL"])
        self.waits = 0

    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall or not slot.queue or slot.free_transfer_slots() <= 0 or slot.delay <= 0:
            super()._process_queue(slot)
            return
        if slot.delay - monotonic() + slot.lastseen > 0:  # this worker's own delay comes first
            super()._process_queue(slot)
            return
        host = urlparse_cached(slot.queue[0][0]).hostname or ""
        if not self.server.set(POLITE_PREFIX + host, "1", nx=True, px=max(1, int(slot.delay * 1000))):
            wait_ms = max(int(self.server.pttl(POLITE_PREFIX + host)), 5)
            self.waits += 1
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("reputation/politeness/waits")
            slot.latercall = call_later(wait_ms / 1000, self._latercall, slot)
            return
        # Token taken: start the download now (the local delay has passed, a transfer slot is free).
        slot.lastseen = -slot.delay
        super()._process_queue(slot)


def worker_author_key(redis_url: str) -> bytes:
    """The writer's author key: ``$REPUTATION_AUTHOR_KEY``, else the one ``reputation crawl --redis`` published."""
    override = os.environ.get(AUTHOR_KEY_ENV)
    if override:
        return override.encode("utf-8")
    client = connect(redis_url)
    try:
        key = client.hget(CONFIG_KEY, AUTHOR_KEY_FIELD)
    finally:
        client.close()
    if not key:
        raise ReputationError(
            f"no author key in Redis ({CONFIG_KEY}) and {AUTHOR_KEY_ENV} is not set: "
            "run `reputation crawl --redis URL` (it publishes the key) before starting crawl workers"
        )
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def worker_settings(
    redis_url: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    worker: str | None = None,
    lease_ttl: float | None = None,
    idle_exit: float | None = None,
) -> Settings:
    """The project's crawl settings, switched to the shared frontier and the items stream."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    frontier = frontier_settings(redis_url, worker=worker, lease_ttl=lease_ttl or DEFAULT_LEASE_TTL)
    pipelines = dict(settings.getdict("ITEM_PIPELINES"))
    pipelines.pop("crawler.pipelines.StorePipeline", None)
    pipelines.pop("crawler.pipelines.DedupePipeline", None)
    pipelines["crawler.pipelines.stream_writer.WorkerDedupePipeline"] = 300
    pipelines["crawler.pipelines.stream_writer.StreamWriterPipeline"] = 900
    settings.setdict(
        {
            **frontier,
            "ITEM_PIPELINES": pipelines,
            "DOWNLOADER": "crawler.redis_frontier.PoliteDownloader",  # one per-host delay for all workers
            "REPUTATION_DB": None,
            "REPUTATION_WORKER_IDLE_EXIT": -1 if idle_exit is None else idle_exit,  # -1: never
            **(overrides or {}),
        },
        priority="cmdline",
    )
    # Added last, so it stays whatever the overrides set: a page's lease is released by what this
    # middleware counts. Closest to the engine (below StartSpiderMiddleware's 25): it sees what
    # reaches the engine.
    middlewares = {**settings.getdict("SPIDER_MIDDLEWARES"), SPIDER_MIDDLEWARE: 10}
    settings.set("SPIDER_MIDDLEWARES", middlewares, priority="cmdline")
    return settings


def run_worker(
    redis_url: str,
    *,
    settings: Mapping[str, Any] | None = None,
    worker: str | None = None,
    lease_ttl: float | None = None,
    idle_exit: float | None = None,
    on_tick: Callable[[Mapping[str, Any]], None] | None = None,
    tick_seconds: float = 5.0,
) -> dict[str, Any]:
    """Run the frontier spider in this process until stopped (SIGTERM/SIGINT) or, with ``idle_exit``,
    until the whole frontier stayed empty that many seconds; returns the crawl's stats.

    Blocks (it runs the Twisted reactor): once per process. ``on_tick(stats)`` runs every
    ``tick_seconds`` while crawling (a heartbeat).
    """
    # Scrapy's log on stderr (LOG_INSTALL_ROOT_HANDLER, on by default; at LOG_LEVEL).
    process = CrawlerProcess(
        worker_settings(redis_url, overrides=settings, worker=worker, lease_ttl=lease_ttl, idle_exit=idle_exit)
    )
    crawler = process.create_crawler(WORKER_SPIDER)
    loops: list[task.LoopingCall] = []

    def start_ticks(spider: Any) -> None:
        if on_tick is None:
            return
        # Built once the crawl installed its reactor: a LoopingCall made earlier installs the default one.
        loop = task.LoopingCall(lambda: on_tick(crawler.stats.get_stats() if crawler.stats else {}))
        loop.start(tick_seconds, now=False)
        loops.append(loop)

    crawler.signals.connect(start_ticks, signal=signals.spider_opened, weak=False)
    process.crawl(crawler)
    process.start()
    for loop in loops:
        if loop.running:
            loop.stop()
    return dict(crawler.stats.get_stats()) if crawler.stats else {}
