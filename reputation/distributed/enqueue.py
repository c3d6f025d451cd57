"""``reputation crawl --redis URL``: put the due sources in the shared crawl frontier.

The writer's side (the machine with the SQLite file) selects the sources exactly as a
single-machine crawl does (crawler.sources.select_sources, the same full / incremental choice)
and pushes one start entry per source onto the frontier's start list (JSON: ``url``, ``source``
with every column of its row, ``kind``). Crawl workers turn each entry into the source's first
page request. The author-pseudonym key is published in Redis for the workers (or give them
``$REPUTATION_AUTHOR_KEY`` yourself): secure Redis like the key file.

A round is the crawl of the sources enqueued while the frontier had work: when the frontier is
empty, the duplicate filter of the last round is cleared first, so pages are fetched again;
while a round runs, a source enqueued again adds nothing (its first page is a duplicate).
The sources enqueued in the round are remembered (``ROUND_KEY``, with the kind of crawl and when)
with the moment the round began (``ROUND_SINCE_KEY``, a stream id), so the writer can record the
round as a single-machine crawl records itself once the frontier drained and every item is stored
(reputation.distributed.rounds). A round the writer has not closed yet keeps its sources: sources
enqueued after the frontier drained join it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
import sqlite_utils

from crawler.extractors.platforms.urls import first_page, newest_first
from crawler.identity import author_key
from crawler.launcher import check_layouts
from crawler.redis_frontier import AUTHOR_KEY_FIELD, CONFIG_KEY, START_KEY, current_generation, new_round
from crawler.sources import FULL, crawl_kind, select_sources
from reputation.distributed import streams
from storage.database import connect, utcnow
from storage.records import Source

#: Hash source id -> JSON {"at": when it was enqueued (ISO), "kind": full / incremental}, for the
#: sources of the round the writer has not closed yet.
ROUND_KEY = "reputation:crawl:round"
#: Stream id (Redis server time) at which the round began: its pages and dead letters come after it.
ROUND_SINCE_KEY = "reputation:crawl:round:since"
#: Id of the round's crawl_runs row, once the writer opened it (reputation.distributed.rounds).
ROUND_RUN_KEY = "reputation:crawl:round:run"


@dataclass(frozen=True)
class Enqueued:
    """What one enqueue did: sources pushed, whether it began a new round, full vs incremental."""

    sources: int
    new_round: bool
    full: int
    incremental: int

    def line(self) -> str:
        """One line for the CLI."""
        return (f"enqueued {self.sources} sources ({self.full} full, {self.incremental} incremental)"
                + ("; new crawl round" if self.new_round else "; added to the running round"))  # fmt: skip


def start_entry(
    source: Source, *, now: datetime, full: bool = False, generation: str = ""
) -> dict[str, object]:
    """The start entry of one source: its first page, the source row, the kind of crawl and the
    round it belongs to (crawler.redis_frontier.GENERATION_KEY: workers start afresh on a new one)."""
    kind = crawl_kind(source, now, full=full)
    url = source.url if kind == FULL else first_page(newest_first(source.url))
    return {"url": url, "source": dataclasses.asdict(source), "kind": kind, "generation": generation}


def enqueue_sources(client: redis.Redis, sources: Iterable[Source], *, full: bool = False,
                    now: datetime | None = None) -> Enqueued:  # fmt: skip
    """Push start entries for ``sources`` (one MULTI/EXEC: all or none)."""
    moment = now or datetime.now(UTC)
    fresh = new_round(client)
    generation = current_generation(client)
    entries = [start_entry(s, now=moment, full=full, generation=generation) for s in sources]
    stamp = utcnow()
    since = streams.server_stream_id(client)
    pipe = client.pipeline(transaction=True)
    if entries:
        pipe.set(ROUND_SINCE_KEY, since, nx=True)
    for entry in entries:
        pipe.rpush(START_KEY, json.dumps(entry, sort_keys=True))
        mark = json.dumps({"at": stamp, "kind": entry["kind"]})
        pipe.hsetnx(ROUND_KEY, str(entry["source"]["id"]), mark)  # type: ignore[index]
    pipe.execute()
    kinds = [e["kind"] for e in entries]
    return Enqueued(len(entries), fresh, kinds.count(FULL), len(kinds) - kinds.count(FULL))


def publish_author_key(client: redis.Redis, db: sqlite_utils.Database) -> None:
    """Give the workers the writer's author key, so they pseudonymise authors as the writer would."""
    client.hset(CONFIG_KEY, AUTHOR_KEY_FIELD, author_key(db).decode("utf-8"))


def enqueue_due(
    db: sqlite_utils.Database,
    redis_url: str,
    *,
    vendors: Iterable[str] | None = None,
    brands: Iterable[str] | None = None,
    due_only: bool = True,
    full: bool = False,
) -> Enqueued:
    """Select sources as ``reputation crawl`` does and enqueue them on the frontier at ``redis_url``.

    Raises LayoutError / NotFoundError before anything is enqueued, RedisUnavailableError when
    Redis cannot be reached.
    """
    check_layouts()
    sources = select_sources(db, vendors=vendors, brands=brands, due_only=due_only)
    client = streams.connect(redis_url, wait=False)
    try:
        publish_author_key(client, db)
        return enqueue_sources(client, sources, full=full)
    finally:
        client.close()


def enqueue_due_at(db_path: str, redis_url: str, **selection: Any) -> Enqueued:
    """``enqueue_due`` on the database at ``db_path`` (opened and closed here)."""
    db = connect(db_path)
    try:
        return enqueue_due(db, redis_url, **selection)
    finally:
        db.close()
