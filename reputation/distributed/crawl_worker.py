"""A crawl worker: ``reputation worker crawl --redis URL`` runs ``run_crawl_worker``.

Start as many as you like, on any machines that reach Redis and the sites. A worker needs no
database: the sources arrive in the start entries ``reputation crawl --redis`` enqueues
(reputation.distributed.enqueue), the author-pseudonym key in Redis (or
``$REPUTATION_AUTHOR_KEY``), and its reviews go to the items stream for the single writer.
The crawl itself is crawler.redis_frontier.run_worker (the ``reviews`` spider on the shared
frontier, spiders.frontier); this module adds the heartbeat ``reputation workers status`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crawler.redis_frontier import run_worker, worker_author_key, worker_name
from crawler.stat_keys import PAGES
from reputation.distributed import streams
from storage.errors import ReputationError


def run_crawl_worker(
    redis_url: str,
    *,
    settings: Mapping[str, Any] | None = None,
    worker: str | None = None,
    lease_ttl: float | None = None,
    idle_exit: float | None = None,
) -> dict[str, Any]:
    """Crawl from the frontier at ``redis_url`` until SIGTERM/SIGINT (or ``idle_exit`` seconds with
    the whole frontier empty); returns the crawl's stats. Blocks; call once per process.

    ``settings`` are Scrapy settings over the project's polite defaults (``-s KEY=VALUE``).
    Waits for Redis when it is down, at start and during the crawl. Raises ReputationError (one
    line for the CLI) when there is no author key to pseudonymise with, or when the crawl could not
    start at all (Scrapy's log says why).
    """
    name = worker or worker_name()
    client = streams.connect(redis_url, wait=True)
    worker_author_key(redis_url)  # checked here too: inside Scrapy it would be a traceback and exit 0
    beat = streams.Heartbeat(client, name, "crawl")
    beat.start()
    done = [0]

    def tick(stats: Mapping[str, Any]) -> None:
        pages = int(stats.get(PAGES, 0))
        beat.beat(processed=pages - done[0])
        done[0] = pages

    stats = run_worker(redis_url, settings=settings, worker=name, lease_ttl=lease_ttl, idle_exit=idle_exit,
                       on_tick=tick)  # fmt: skip
    beat.beat(processed=int(stats.get(PAGES, 0)) - done[0], state="stopped")
    if "finish_reason" not in stats:  # the spider never opened: nothing was crawled
        raise ReputationError("the crawl worker could not start its crawl (the log above says why)")
    return stats
