"""Reviews a listing no longer shows: marked after a complete full crawl, un-marked when they come back.

A full crawl that walked its listing to the end without a fault marks the source's reviews it
did not see (``mark_removed``: ``reviews.removed_at``, the date; the row, its text and its scores
stay); any crawl un-marks the ones it finds again (``restore_seen``). The store pipeline calls
``record_source_crawls`` in the transaction that closes the run.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from crawler import stat_keys as keys
from crawler.source_status import OK, PARTIAL
from crawler.sources import FULL, INCREMENTAL

__all__ = [
    "REMOVAL_MAX_SHARE",
    "REMOVAL_MAX_SHARE_SETTING",
    "Removal",
    "SourceCrawl",
    "mark_removed",
    "record_source_crawls",
    "record_source_outcomes",
    "restore_seen",
    "source_crawl",
]

# A complete full crawl that would mark more than this share of a source's listed reviews
# removed is more likely a listing that changed its markup or paging than a mass take-down:
# nothing is marked and the run's detail says why (REPUTATION_REMOVAL_MAX_SHARE).
REMOVAL_MAX_SHARE = 0.5
#: The setting that overrides it: a Scrapy setting of the crawl, and the writer's [crawl] settings.
REMOVAL_MAX_SHARE_SETTING = "REPUTATION_REMOVAL_MAX_SHARE"
TOO_MANY_UNSEEN = "too_many_unseen"


@dataclass(frozen=True)
class Removal:
    """What ``mark_removed`` did for one source: reviews marked, or why none were."""

    marked: int
    listed: int  # reviews of the source not marked removed before this crawl
    skipped: str | None = None


def mark_removed(
    conn: sqlite3.Connection,
    source_id: str,
    *,
    crawl_started_at: str,
    today: str,
    max_share: float = REMOVAL_MAX_SHARE,
) -> Removal:
    """Mark the source's listed reviews not seen since ``crawl_started_at`` as removed on ``today``.

    Call only after a full crawl that walked the whole listing without a fault: every review
    still listed has ``last_seen`` at or after the crawl's start (a concurrent crawl of the same
    source only moves it later). Rows are never deleted. When the unseen reviews exceed
    ``max_share`` of those listed, none is marked (``skipped``).
    """
    listed, unseen = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(last_seen < ?), 0) FROM reviews WHERE source_id = ? AND removed_at IS NULL",
        (crawl_started_at, source_id),
    ).fetchone()
    if not unseen:
        return Removal(0, listed)
    if unseen > max_share * listed:
        return Removal(0, listed, TOO_MANY_UNSEEN)
    cursor = conn.execute(
        "UPDATE reviews SET removed_at = ? WHERE source_id = ? AND removed_at IS NULL AND last_seen < ?",
        (today, source_id, crawl_started_at),
    )
    return Removal(cursor.rowcount, listed)


def restore_seen(conn: sqlite3.Connection, source_id: str, *, crawl_started_at: str) -> int:
    """Un-mark the source's removed reviews seen again by this crawl; return how many."""
    cursor = conn.execute(
        "UPDATE reviews SET removed_at = NULL WHERE source_id = ? AND removed_at IS NOT NULL AND last_seen >= ?",
        (source_id, crawl_started_at),
    )
    return cursor.rowcount


@dataclass
class SourceCrawl:
    """How one source was crawled, as the run log's ``detail.crawls`` records it."""

    kind: str  # full or incremental (crawler.sources.crawl_kind)
    pages: int  # pages fetched for it
    stopped: str | None = None  # first reason its walk ended before the listing's end
    complete: bool = False  # a full crawl that walked the whole listing without a fault
    not_complete: str | None = None  # why a full crawl does not count as complete
    pages_saved: int | None = None  # incremental that stopped early: pages of its last full crawl not fetched
    removed: int = 0  # reviews marked removed (complete full crawls only)
    restored: int = 0  # reviews marked removed before and found again
    removal_skipped: str | None = None

    def as_detail(self) -> dict[str, object]:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


def source_crawl(
    stats: Mapping[str, object],
    source: str,
    outcome: str,
    *,
    run_fault: str | None,
    last_full_pages: int | None,
) -> SourceCrawl:
    """Read one source's crawl back from the crawl's stats and decide whether a full one was complete.

    ``run_fault`` names a fault of the whole run that makes no full crawl complete (the crawl
    did not finish, a batch could not be stored, items were dropped). A full crawl is complete
    when, besides, the source ended ``ok`` (reviews, no failed page), no page of it came back
    without reviews and its walk ended at the listing's end (or at a page repeating earlier
    reviews: a site serving its last page for any page number).
    """
    kind = str(stats.get(keys.SOURCE_KIND + source) or FULL)
    pages = stats.get(keys.SOURCE_PAGES + source, 0)
    stopped = stats.get(keys.SOURCE_STOPPED + source)
    crawl = SourceCrawl(
        kind, int(pages) if isinstance(pages, int | float) else 0, str(stopped) if stopped else None
    )
    if kind == INCREMENTAL:
        if crawl.stopped == keys.STOPPED_NO_NEW and last_full_pages is not None:
            crawl.pages_saved = max(0, last_full_pages - crawl.pages)
        return crawl
    reasons = [
        run_fault,
        None if outcome == OK else outcome.partition(":")[0],
        None if crawl.stopped in (None, keys.STOPPED_REPEATING) else crawl.stopped,
        "empty_page" if stats.get(keys.SOURCE_EMPTY + source) else None,
    ]
    crawl.not_complete = next((reason for reason in reasons if reason), None)
    crawl.complete = crawl.not_complete is None
    return crawl


def record_source_crawls(
    conn: sqlite3.Connection,
    crawls: Mapping[str, SourceCrawl],
    outcomes: Mapping[str, str],
    *,
    crawl_started_at: str,
    now: str,
    max_share: float = REMOVAL_MAX_SHARE,
) -> None:
    """Inside the run's closing transaction: un-mark reviews found again, mark removed ones, note full crawls.

    A full crawl that ended ``ok`` becomes the source's last full crawl (its time and page count),
    so the next crawls are incremental until ``full_crawl_interval_hours`` pass.
    """
    for source, crawl in crawls.items():
        crawl.restored = restore_seen(conn, source, crawl_started_at=crawl_started_at)
        if crawl.complete:
            removal = mark_removed(conn, source, crawl_started_at=crawl_started_at, today=now[:10],
                                   max_share=max_share)  # fmt: skip
            crawl.removed, crawl.removal_skipped = removal.marked, removal.skipped
        if crawl.kind == FULL and outcomes.get(source) == OK:
            conn.execute(
                "UPDATE sources SET last_full_crawl_at = ?, last_full_crawl_pages = ? WHERE id = ?",
                (now, crawl.pages, source),
            )


def record_source_outcomes(conn: sqlite3.Connection, outcomes: Mapping[str, str], *, now: str) -> None:
    """Each source's status after a crawl; one that gave reviews (ok, partial) also moves its last
    crawl, so it is next due from now; a failed one stays due."""
    for source, outcome in outcomes.items():
        if outcome in (OK, PARTIAL):
            conn.execute(
                "UPDATE sources SET last_crawl_at = ?, last_crawl_status = ? WHERE id = ?", (now, outcome, source)
            )
        else:
            conn.execute("UPDATE sources SET last_crawl_status = ? WHERE id = ?", (outcome, source))
