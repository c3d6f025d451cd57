"""Incremental re-crawls: which reviews of a page are already stored, unchanged.

An incremental crawl reads a listing newest first and stops at the first page that brings
nothing new or changed compared with the database (not just with the run); ``fresh_reviews``
tells the spider which reviews of a page the store would insert or change. Reviews a listing
no longer shows are found by full crawls (crawler.removals).
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlite_utils

from crawler.fields import normalize_item_counted
from crawler.identity import identify
from crawler.items import ReviewItem
from crawler.pipelines.normalize import crawled_moment
from crawler.pipelines.review_writer import reviews_where_in

__all__ = ["Identified", "fresh_reviews", "identified"]

_STORED_FIELDS = "id, body_hash, site_review_id, content_key, truncated, purged_at, removed_at"


@dataclass(frozen=True)
class _Stored:
    id: str
    body_hash: str
    site_review_id: str | None
    content_key: str | None
    truncated: int
    purged_at: str | None
    removed_at: str | None


@dataclass(frozen=True)
class Identified:
    """A page's review as the pipelines will store it: id, content key, text hash."""

    id: str
    content_key: str
    body_hash: str
    site_review_id: str | None
    truncated: bool


def identified(item: ReviewItem) -> Identified | None:
    """The id and hashes the pipelines will give ``item``; None when they would drop it (no text).

    A copy is normalised by the same function as the normalise pipeline (the id and hash are
    made of the cleaned text and parsed date), then named by crawler.identity as the dedupe
    pipeline names it (a review the extraction worker named keeps its names). The item itself is
    left as it was.
    """
    if item.source_id is None or not (item.body or "").strip():
        return None
    twin = copy.copy(item)
    if not twin.normalised:
        normalize_item_counted(twin, crawled_moment(twin))
    if not (twin.body or "").strip():
        return None
    if not twin.identified:
        identify(twin)
    assert twin.id is not None and twin.content_key is not None and twin.body_hash is not None
    return Identified(
        id=twin.id,
        content_key=twin.content_key,
        body_hash=twin.body_hash,
        site_review_id=twin.site_review_id,
        truncated=bool(twin.truncated),
    )


def _select(conn: sqlite3.Connection, column: str, values: Sequence[str]) -> Iterable[_Stored]:
    return (_Stored(*row) for row in reviews_where_in(conn, _STORED_FIELDS, column, values))


def _unchanged(found: Identified, stored: _Stored) -> bool:
    """Whether the store would only move ``last_seen`` (crawler.pipelines.review_writer's rules)."""
    if stored.removed_at is not None:
        return False  # back on the listing: un-marking it is a change
    if stored.purged_at is not None or stored.body_hash == found.body_hash:
        return True
    return found.truncated and not stored.truncated  # only the start of a text stored whole


def fresh_reviews(db: sqlite_utils.Database, items: Iterable[ReviewItem]) -> list[ReviewItem]:
    """The items the store would insert or change: not stored, edited, or back after removal.

    Matched as the store matches them: by id, else by content key when the item or the stored
    row has no site id (one review read by extractors that do and do not see its site id).
    Items the pipelines would drop (no text) are not fresh: they bring nothing to store.
    """
    found = [(item, identified(item)) for item in items]
    named = [(item, ident) for item, ident in found if ident is not None]
    conn = db.conn
    by_id = {row.id: row for row in _select(conn, "id", sorted({ident.id for _, ident in named}))}
    missing = sorted({ident.content_key for _, ident in named if ident.id not in by_id})
    by_key: dict[str, list[_Stored]] = {}
    for row in _select(conn, "content_key", missing):
        by_key.setdefault(row.content_key or "", []).append(row)
    fresh: list[ReviewItem] = []
    for item, ident in named:
        stored = by_id.get(ident.id)
        if stored is None:
            stored = next(
                (row for row in by_key.get(ident.content_key, ())
                 if row.site_review_id is None or ident.site_review_id is None),
                None,
            )  # fmt: skip
        if stored is None or not _unchanged(ident, stored):
            fresh.append(item)
    return fresh
