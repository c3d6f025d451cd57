"""A distributed crawl round in the run log and on its sources, recorded by the single writer.

``reputation crawl --redis`` enqueues sources and remembers them as the round
(reputation.distributed.enqueue: ``ROUND_KEY``, ``ROUND_SINCE_KEY``). The writer, whichever
command runs it (``reputation ingest``, ``--once`` or ``--follow``, or ``reputation run --redis``):

* opens the round's ``crawl_runs`` row when it first stores the round's items (``round_run``), and
  remembers its id in Redis, so a later writer process adopts the same row: every review of the
  round carries it (``last_crawl_run_id``) and listings' aggregate ratings are stored with it;
* adds each batch's new / updated / unchanged counts to the row in the batch's own transaction
  (items_ingest), so the counts hold across writer processes and restarts;
* closes the round once it is over (``RoundWatch``, which reads the pages stream as it grows: the
  frontier is empty, every item is stored, and every source of the round has a page in the pages
  stream, or the round stayed quiet for ``SETTLE_SECONDS``), as the single-machine store pipeline closes a crawl (``finish_round``): each
  source's ``last_crawl_status`` (ok / partial / empty: REASON / failed: REASON) from the pages the
  workers recorded and the reviews stored, ``last_crawl_at`` (so its next-due time) for sources
  that gave reviews, the last full crawl of a full crawl that ended ok, reviews found again
  un-marked as removed, reviews a complete full crawl no longer found marked removed (none when
  more than ``REPUTATION_REMOVAL_MAX_SHARE`` of a source's would be: ``removal_max_share``), and
  the run's pages, errors and dead letters by reason.

Whether a full crawl was complete is decided as for a single-machine crawl
(crawler.removals.source_crawl) from what the workers' page records say (spiders.frontier):
each page's stop or skip reason, pages without a review, and reviews dropped. A fault of the
round makes no full crawl complete: a dead-lettered item or request (a page never fetched, a
batch never stored), or a dropped review. A source with a page record from a worker that does
not report its walk (an older version) is not complete either (``WALK_NOT_REPORTED``).

Closing is idempotent: the SQLite transaction commits first, then the round's keys go; a writer
killed in between records the same round again with the same result.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
import sqlite_utils

from crawler import stat_keys as keys
from crawler.redis_frontier import REQUESTS_KEY, frontier_empty
from crawler.removals import (
    REMOVAL_MAX_SHARE,
    REMOVAL_MAX_SHARE_SETTING,
    SourceCrawl,
    record_source_crawls,
    record_source_outcomes,
    source_crawl,
)
from crawler.source_status import FAILED, SourceOutcome, source_status
from crawler.sources import FULL
from reputation.distributed import streams
from reputation.distributed.enqueue import ROUND_KEY, ROUND_RUN_KEY, ROUND_SINCE_KEY
from reputation.distributed.items_ingest import items_pending
from storage.database import transaction, utcnow
from storage.errors import ReputationError
from storage.runlog import RunStatus, finish_run, start_run, this_host

#: Seconds the round must stay quiet (RoundWatch's reset rule) before a round whose sources did not
#: all record a page (a start entry never fetched, say) is closed anyway (``--follow``, ``run --redis``).
SETTLE_SECONDS = 30.0
#: A source of the round with no page in the pages stream: it was never fetched.
NOT_FETCHED = "not_fetched"
#: Why a source's full crawl is not complete: a page record without the walk's report (an older worker).
WALK_NOT_REPORTED = "redis_walk_end_not_reported"
#: Round faults that make no full crawl complete (crawler.removals.source_crawl's ``run_fault``).
DEAD_LETTERS = "dead_letters"
ITEMS_DROPPED = "items_dropped"
# What an older worker recorded as the error of a page it did not fetch (an exception's class
# name): counted as skipped, as the single-machine spider does. Current workers name the skip.
_LEGACY_SKIPS = {"IgnoreRequest": "robots_or_ignored", "OutOfScopeRedirect": keys.OUT_OF_SCOPE}
_SCAN = 10_000  # stream entries read per XRANGE

# Forget the sources a closed round recorded; keep the round going for any enqueued meanwhile.
# KEYS: round, since, run. ARGV: now (stream id), source ids... Returns the sources left.
_FORGET = """
for i = 2, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('DEL', KEYS[3])
local left = redis.call('HLEN', KEYS[1])
if left == 0 then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], ARGV[1]) end
return left
"""


def removal_max_share(settings: Mapping[str, Any] | None) -> float:
    """The removal guard's share from crawl settings (``[crawl] settings`` of the config file), read
    as the store pipeline reads it (Scrapy's ``getfloat``: ``float(value)``, the default when absent);
    ReputationError (one line) for a value that is not a number."""
    value = (settings or {}).get(REMOVAL_MAX_SHARE_SETTING, REMOVAL_MAX_SHARE)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ReputationError(f"{REMOVAL_MAX_SHARE_SETTING}: expected a number, got {value!r}") from None


@dataclass
class PageTally:
    """What the pages stream says about one source's pages in the round."""

    pages: int = 0
    with_items: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # reason -> pages
    skipped: Counter[str] = field(default_factory=Counter)
    first_failed: str | None = None  # reason its earliest page failed, if it did
    stopped: str | None = None  # first reason its walk ended before the listing's end
    empty: int = 0  # pages fetched without a review
    empty_kind: str | None = None  # what its first page without a review looked like (classify_empty_page)
    dropped: int = 0  # reviews the workers dropped, reported with its pages
    reported: bool = True  # every page record carries the walk's report (``stop``)

    def note_stopped(self, reason: str) -> None:
        """The spider's rule (crawler.stat_keys.later_stop_replaces): a repeating page gives way to any later reason."""
        if keys.later_stop_replaces(self.stopped):
            self.stopped = reason

    def stats(self, source: str, kind: str) -> dict[str, object]:
        """The source's part of a crawl's stats, as crawler.removals.source_crawl reads it."""
        return {keys.SOURCE_KIND + source: kind, keys.SOURCE_PAGES + source: self.pages,
                keys.SOURCE_STOPPED + source: self.stopped, keys.SOURCE_EMPTY + source: "empty" if self.empty else None}  # fmt: skip


@dataclass
class RoundResult:
    """What closing a round recorded."""

    run_id: int
    status: RunStatus
    sources: dict[str, str]  # source id -> last_crawl_status
    pages: int
    by_status: dict[str, int] = field(init=False)  # last_crawl_status -> sources, for the summaries

    def __post_init__(self) -> None:
        self.by_status = dict(Counter(self.sources.values()))


def round_sources(client: redis.Redis) -> dict[str, dict[str, str]]:
    """The round's sources: id -> {"at": enqueued at, "kind": full / incremental}."""
    raw: Any = client.hgetall(ROUND_KEY) or {}
    out: dict[str, dict[str, str]] = {}
    for source, value in raw.items():
        try:
            mark = json.loads(value)
        except ValueError:
            mark = None
        out[str(source)] = mark if isinstance(mark, dict) else {"at": str(value), "kind": FULL}
    return out


def round_since(client: redis.Redis) -> str:
    return str(client.get(ROUND_SINCE_KEY) or "0-0")


def round_run(
    client: redis.Redis, db: sqlite_utils.Database, *, selection: Mapping[str, Any] | None = None
) -> int | None:
    """The ``crawl_runs`` row of the round in progress (None when no round is): the one an earlier
    writer opened, adopted by this process, else a new one. The caller holds the writer lock."""
    if not client.hlen(ROUND_KEY):
        return None
    known = client.get(ROUND_RUN_KEY)
    if known:
        run_id = int(known)
        row = db.execute(
            "SELECT status FROM crawl_runs WHERE id = ? AND stage = 'crawl'", (run_id,)
        ).fetchone()
        if row is not None and row[0] in ("running", "interrupted"):
            with transaction(db) as conn:  # this writer owns it now (start_run's rule for 'interrupted')
                conn.execute("UPDATE crawl_runs SET status = 'running', finished_at = NULL, pid = ?, host = ? "
                             "WHERE id = ?", (os.getpid(), this_host(), run_id))  # fmt: skip
            return run_id
    run_id = start_run(db, "crawl", selection={"redis": True, **(selection or {})}, detail={"mode": "redis"})
    client.set(ROUND_RUN_KEY, run_id)
    return run_id


def _entries(client: redis.Redis, stream: str, since: str) -> Any:
    """Every entry of ``stream`` from ``since`` on, in chunks."""
    start = since
    while True:
        chunk: Any = client.xrange(stream, min=start, count=_SCAN)
        yield from chunk
        if len(chunk) < _SCAN:
            return
        start = f"({chunk[-1][0]}"


def _page_reason(fields: Mapping[str, str]) -> str | None:
    """Why a page record says its page failed (``http_STATUS``, else the error the worker named), or None."""
    status = int(fields.get("status") or 0)
    if status >= 400:
        return f"http_{status}"
    return fields.get("error") or None


def tally_page(tallies: dict[str, PageTally], fields: Mapping[str, str]) -> None:
    """Add one page record of the pages stream to its source's tally."""
    tally = tallies.setdefault(str(fields.get("source_id") or ""), PageTally())
    tally.reported = tally.reported and "stop" in fields
    tally.dropped += int(fields.get("dropped") or 0)
    reason = _page_reason(fields)
    first = tally.pages == 0 and not tally.skipped and not tally.errors
    skipped = fields.get("skipped") or _LEGACY_SKIPS.get(reason or "")
    if fields.get("stop"):
        tally.note_stopped(str(fields["stop"]))
    tally.empty_kind = tally.empty_kind or fields.get("empty") or None
    if skipped:
        tally.skipped[skipped] += 1
        return
    tally.pages += 1
    items = int(fields.get("items") or 0)
    tally.with_items += int(items > 0)
    if reason is not None:
        tally.errors[reason] += 1
        if first:
            tally.first_failed = reason
    elif not items:
        tally.empty += 1


def round_pages(client: redis.Redis, since: str) -> dict[str, PageTally]:
    """Source id -> what its pages in the round gave, from the whole pages stream since ``since``
    (RoundWatch keeps the same tallies as the records arrive)."""
    tallies: dict[str, PageTally] = {}
    for _, fields in _entries(client, streams.PAGES_STREAM, since):
        tally_page(tallies, fields)
    return tallies


def round_dead_letters(client: redis.Redis, since: str) -> dict[str, Counter[str]]:
    """Items and frontier requests dead-lettered during the round: {"items": reasons, "requests": reasons}."""
    out: dict[str, Counter[str]] = {"items": Counter(), "requests": Counter()}
    for _, fields in _entries(client, streams.DEAD_LETTER_STREAM, since):
        stream = fields.get("stream")
        if stream == streams.ITEMS_STREAM:
            out["items"][fields.get("reason") or "?"] += 1
        elif stream == REQUESTS_KEY:
            out["requests"][fields.get("reason") or "?"] += 1
    return out


@dataclass
class RoundWatch:
    """The writer's view of the open round: its pages read once, as they arrive, and when it is over.

    The writer polls ``over`` after each batch it moves; each poll reads only the page records
    added since the last one (from the last stream id seen) into ``pages``, and ``finish``
    records the round with those tallies (``finish_round``), so the pages stream is read once.
    A round that begins anew (another ``ROUND_SINCE_KEY``) starts the tallies afresh.

    A round is over when it has sources, the frontier is empty (nothing queued, leased or waiting
    to start), every item is stored, and each source recorded a page; or, when some source never
    recorded one (a start entry dead-lettered, say), once the round stayed quiet (the frontier
    empty, every item stored) for ``settle`` seconds without moving. Reset rule: the settle timer
    starts at the first quiet poll and restarts at every poll that sees the round move: the
    frontier not empty or items pending (the timer stops until the next quiet poll), items the
    writer handled since the last poll (``progress``), new page records of the round, or its
    sources or start changed (sources enqueued, a round closed). Each of these says a worker, the
    writer or the enqueuer is still at work, so quiet before it proves nothing. Scores moved by
    the writer are no part of the crawl round and do not count.
    """

    settle: float = SETTLE_SECONDS
    clock: Callable[[], float] = time.monotonic
    max_share: float = REMOVAL_MAX_SHARE  # the removal guard finish_round applies (removal_max_share)
    pages: dict[str, PageTally] = field(default_factory=dict)  # source id -> tally, of the round ``since``
    since: str | None = None  # the round's start (stream id) the tallies belong to
    last_id: str | None = None  # the last page record read; None: none yet of this round
    sources: frozenset[str] = frozenset()  # the round's sources at the last poll
    quiet_since: float | None = None  # the settle timer: since when the round is quiet and still

    def read(self, client: redis.Redis) -> int:
        """Tally the page records added since the last read; returns how many were read."""
        since = round_since(client)
        if since != self.since:
            self.pages, self.since, self.last_id = {}, since, None
        start = since if self.last_id is None else f"({self.last_id}"
        read = 0
        for entry_id, fields in _entries(client, streams.PAGES_STREAM, start):
            tally_page(self.pages, fields)
            self.last_id = str(entry_id)
            read += 1
        return read

    def over(self, client: redis.Redis, *, progress: bool = False) -> bool:
        """One poll: whether the round can be closed now (see the class docstring). ``progress``:
        the writer handled item messages since the last poll."""
        ids: Any = client.hkeys(ROUND_KEY)  # the ids alone: a round may hold many sources
        sources = frozenset(str(source) for source in ids)
        if not sources:  # no round: nothing to read or time
            self.sources, self.quiet_since = sources, None
            return False
        quiet = frontier_empty(client) and not items_pending(client)
        began = self.since
        moved = bool(self.read(client)) or progress or sources != self.sources or self.since != began
        self.sources = sources
        if not quiet:
            self.quiet_since = None
            return False
        now = self.clock()
        if moved or self.quiet_since is None:
            self.quiet_since = now
        if all(s in self.pages for s in sources):
            return True
        return now - self.quiet_since >= self.settle

    def finish(self, client: redis.Redis, db: sqlite_utils.Database) -> RoundResult | None:
        """Record the round (``finish_round``) with the tallies read so far and any page recorded
        since the last poll; then watch the next round from its start. None when there is no round."""
        if not client.hlen(ROUND_KEY):
            return None
        self.read(client)
        try:
            return finish_round(client, db, pages=self.pages, max_share=self.max_share)
        finally:
            self.pages, self.since, self.last_id, self.quiet_since = {}, None, None, None


def round_fault(dead: Mapping[str, Counter[str]], pages: Mapping[str, PageTally]) -> str | None:
    """What makes no full crawl of the round complete, as a crawl that did not finish or dropped
    reviews makes none complete on one machine; None when nothing does."""
    if sum(dead["items"].values()) or sum(dead["requests"].values()):
        return DEAD_LETTERS
    if any(t.dropped for t in pages.values()):
        return ITEMS_DROPPED
    return None


def finish_round(
    client: redis.Redis,
    db: sqlite_utils.Database,
    *,
    pages: Mapping[str, PageTally] | None = None,
    max_share: float = REMOVAL_MAX_SHARE,
) -> RoundResult | None:
    """Record the round as a single-machine crawl records itself (see the module docstring); None
    when there is no round. Call once the round is over (RoundWatch.over); the caller holds the
    writer lock. ``pages``: the round's tallies already read (RoundWatch), else read here.
    ``max_share``: a complete full crawl marks none of a source's reviews removed when more than
    this share of them would be (crawler.removals.mark_removed; the detail says ``too_many_unseen``)."""
    sources = round_sources(client)
    if not sources:
        return None
    run_id = round_run(client, db)
    assert run_id is not None
    since = round_since(client)
    if pages is None:
        pages = round_pages(client, since)
    dead = round_dead_letters(client, since)
    reviews = dict(db.execute("SELECT source_id, COUNT(*) FROM reviews WHERE last_crawl_run_id = ? GROUP BY source_id",
                              (run_id,)).fetchall())  # fmt: skip
    outcomes: dict[str, str] = {}
    crawls: dict[str, SourceCrawl] = {}
    fault = round_fault(dead, pages)
    for source, mark in sources.items():
        tally = pages.get(source)
        if tally is None:
            outcome = SourceOutcome(reviews=int(reviews.get(source, 0)), failed=NOT_FETCHED)
        else:
            outcome = SourceOutcome(reviews=int(reviews.get(source, 0)), errors=sum(tally.errors.values()),
                                    failed=tally.first_failed, empty=tally.empty_kind)  # fmt: skip
        outcomes[source] = source_status(outcome)
        kind = str(mark.get("kind") or FULL)
        tally = tally or PageTally()
        crawls[source] = source_crawl(tally.stats(source, kind), source, outcomes[source], last_full_pages=None,
                                      run_fault=fault if tally.reported else WALK_NOT_REPORTED)  # fmt: skip
    errors: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for tally in pages.values():
        errors.update(tally.errors)
        skipped.update(tally.skipped)
    errors.update({f"request_{k}": v for k, v in dead["requests"].items()})
    failed_all = all(o.startswith(FAILED) for o in outcomes.values())
    status: RunStatus = "failed" if failed_all else "ok"
    now = utcnow()
    page_count = sum(t.pages for s, t in pages.items() if s in sources)
    with transaction(db) as conn:  # the row and the sources' outcomes land together
        started = conn.execute("SELECT started_at FROM crawl_runs WHERE id = ?", (run_id,)).fetchone()[0]
        record_source_crawls(conn, crawls, outcomes, crawl_started_at=started, now=now, max_share=max_share)
        detail = {
            "mode": "redis",
            "enqueued": len(sources),
            "crawl_kinds": dict(Counter(c.kind for c in crawls.values())),
            "pages_with_reviews": sum(t.with_items for t in pages.values()),
            "skipped": dict(skipped),
            "sources": outcomes,
            "crawls": {source: crawl.as_detail() for source, crawl in crawls.items()},
            "removed": sum(c.removed for c in crawls.values()),
            "restored": sum(c.restored for c in crawls.values()),
        }
        finish_run(db, run_id, status, pages=page_count, dropped_by_reason=dict(dead["items"]),
                   errors_by_reason=dict(errors), detail=detail)  # fmt: skip
        record_source_outcomes(conn, outcomes, now=now)
    client.eval(_FORGET, 3, ROUND_KEY, ROUND_SINCE_KEY, ROUND_RUN_KEY,
                streams.server_stream_id(client), *sources)  # fmt: skip
    return RoundResult(run_id, status, outcomes, page_count)
