"""One batch of reviews into SQLite: match each item to its stored row, then insert or update.

Everything happens inside one ``BEGIN IMMEDIATE`` transaction, reads included: two crawls of
one source may run at once, and a read outside the write lock would let both insert the
same new id (UNIQUE constraint failed, the whole batch lost).

Matching, in order (crawler.identity explains the ids):

1. by id: the same site id in the same listing, or the same content hash;
2. by content key, when the item or the stored row lacks a site id: a page read once by an
   extractor that sees the site id (a platform layout) and once by one that does not
   (microdata) is one review. A stored ``h:`` row that now shows its site id is re-keyed to
   ``site:…`` (its scores follow), so a review's id never depends on the extractor.

A stored row keeps its full text when the page now shows only the start (``truncated``), and
a purged row (``reputation purge``) is never refilled with text, reply or author.
"""

from __future__ import annotations

import json
import operator
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from crawler.aggregates import SourceAggregate
from crawler.identity import stored_content_key
from crawler.items import ReviewItem

# Columns copied from an item to its row as they are; first_seen and the run ids are set here,
# extra (JSON) and content_key are appended by row_values.
REVIEW_COLUMNS = (
    "source_id", "brand_id", "url", "site_review_id", "author_hash", "title", "body", "body_hash",
    "rating", "rating_value", "rating_min", "rating_max", "published_at", "date_precision",
    "date_raw", "language", "extractor", "reply", "truncated",
)  # fmt: skip
DERIVED_COLUMNS = ("extra", "content_key")
NEW_ROW_COLUMNS = (
    "id",
    *REVIEW_COLUMNS,
    *DERIVED_COLUMNS,
    "first_seen",
    "last_seen",
    "first_crawl_run_id",
    "last_crawl_run_id",
)
INSERT_NEW_SQL = (
    f"INSERT INTO reviews ({', '.join(NEW_ROW_COLUMNS)}) VALUES ({', '.join('?' for _ in NEW_ROW_COLUMNS)})"
)
# An extractor that does not see replies or extra facts (JSON-LD) leaves those already stored.
_KEEP_KNOWN = {
    "reply": "COALESCE(:reply, reply)",
    "extra": "CASE WHEN :extra = '{}' THEN extra ELSE :extra END",
}
UPDATE_CHANGED_SQL = (
    "UPDATE reviews SET "
    + ", ".join(f"[{c}] = {_KEEP_KNOWN.get(c, ':' + c)}" for c in (*REVIEW_COLUMNS, *DERIVED_COLUMNS))
    + ", last_seen = :last_seen, last_crawl_run_id = :last_crawl_run_id,"
    " previous_body_hashes = :previous_body_hashes WHERE id = :id"
)
# Same text: the row is seen again; reply, extra and truncation may still have changed.
UPDATE_SEEN_SQL = (
    "UPDATE reviews SET last_seen = ?, last_crawl_run_id = ?, reply = COALESCE(?, reply), truncated = ?,"
    " extra = CASE WHEN ? = '{}' THEN extra ELSE ? END,"
    " content_key = ?, site_review_id = COALESCE(site_review_id, ?) WHERE id = ?"
)
UPDATE_PURGED_SQL = "UPDATE reviews SET last_seen = ?, last_crawl_run_id = ? WHERE id = ?"
INSERT_AGGREGATE_SQL = (
    "INSERT INTO source_aggregates (source_id, crawl_run_id, rating_value, rating_min, rating_max,"
    " review_count, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source_id, crawl_run_id) DO NOTHING"
)
_plain_values = operator.attrgetter("id", *REVIEW_COLUMNS)  # one C call per item, no dict per row
_ROW_FIELDS = "id, body_hash, previous_body_hashes, site_review_id, content_key, purged_at, truncated"
# SQLite's default limit on ? parameters is 32766; batches of a few thousand stay well under it.
_CHUNK = 10_000


@dataclass
class StoredRow:
    id: str
    body_hash: str
    previous_body_hashes: str | None
    site_review_id: str | None
    content_key: str | None
    purged_at: str | None
    truncated: int


def extra_json(item: ReviewItem) -> str:
    return json.dumps(item.extra, sort_keys=True, ensure_ascii=False, default=str) if item.extra else "{}"


def reviews_where_in(
    conn: sqlite3.Connection, fields: str, column: str, values: Sequence[str]
) -> Iterable[tuple[Any, ...]]:
    """``fields`` of the reviews whose ``column`` is one of ``values``, asked in chunks under SQLite's parameter limit."""
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        yield from conn.execute(f"SELECT {fields} FROM reviews WHERE {column} IN ({marks})", chunk)


def _select(conn: sqlite3.Connection, column: str, values: Sequence[str]) -> Iterable[StoredRow]:
    return (StoredRow(*row) for row in reviews_where_in(conn, _ROW_FIELDS, column, values))


def rekey(conn: sqlite3.Connection, old_id: str, new_id: str, site_review_id: str | None) -> None:
    """Give a stored review a new id; its scores and frozen copy links follow (keys checked at commit)."""
    conn.execute("PRAGMA defer_foreign_keys = ON")  # reset by SQLite when the transaction ends
    conn.execute("UPDATE review_sentiment SET review_id = ? WHERE review_id = ?", (new_id, old_id))
    conn.execute("UPDATE purged_review_copies SET review_id = ? WHERE review_id = ?", (new_id, old_id))
    conn.execute("UPDATE purged_review_copies SET original_id = ? WHERE original_id = ?", (new_id, old_id))
    conn.execute(
        "UPDATE reviews SET id = ?, site_review_id = ? WHERE id = ?", (new_id, site_review_id, old_id)
    )


def write_batch(
    conn: sqlite3.Connection,
    batch: list[ReviewItem],
    *,
    run_id: int | None,
    now: str,
    aggregates: Iterable[SourceAggregate] = (),
) -> Counter[str]:
    """Store ``batch`` (and the listings' aggregates) on ``conn``, already inside the write transaction.

    Returns counts: new, updated (text edited), unchanged, rekeyed, and merged (a second item of
    this batch that matched the same stored row, which is dropped).
    """
    counts: Counter[str] = Counter()
    keys = [stored_content_key(item) for item in batch]  # one per item, in batch order
    known = {row.id: row for row in _select(conn, "id", [item.id for item in batch if item.id])}
    missing_keys = list({key for item, key in zip(batch, keys, strict=True) if item.id not in known})
    by_key: dict[str, list[StoredRow]] = {}
    for row in _select(conn, "content_key", missing_keys):
        by_key.setdefault(row.content_key or "", []).append(row)
    claimed: set[str] = set()
    kept: list[tuple[ReviewItem, str]] = []
    for item, key in zip(batch, keys, strict=True):
        assert item.id is not None
        candidates = by_key.get(key) if item.id not in known else None
        if candidates:  # stored rows with this content key and no site id on one side
            match = next(
                (row for row in candidates if row.site_review_id is None or item.site_review_id is None), None
            )
            if match is not None:
                if item.site_review_id and match.site_review_id is None:
                    rekey(conn, match.id, item.id, item.site_review_id)
                    counts["rekeyed"] += 1
                    match.id, match.site_review_id = item.id, item.site_review_id
                else:
                    item.id = match.id
                known[match.id] = match
                candidates.remove(match)
        if item.id in claimed:
            counts["merged"] += 1
            continue
        claimed.add(item.id)
        kept.append((item, key))

    new_rows: list[tuple[Any, ...]] = []
    changed: list[dict[str, Any]] = []
    seen: list[tuple[Any, ...]] = []
    purged: list[tuple[Any, ...]] = []
    for item, key in kept:
        extra = extra_json(item)
        stored = known.get(item.id or "")
        if stored is None:
            new_rows.append((*_plain_values(item), extra, key, now, now, run_id, run_id))
        elif stored.purged_at is not None:
            purged.append((now, run_id, item.id))
        elif stored.body_hash == item.body_hash:
            seen.append(
                (
                    now,
                    run_id,
                    item.reply,
                    int(item.truncated),
                    extra,
                    extra,
                    key,
                    item.site_review_id,
                    item.id,
                )
            )
        elif item.truncated and not stored.truncated:
            # only the start of a text stored whole: keep the whole text
            seen.append(
                (now, run_id, item.reply, 0, extra, extra, stored.content_key, item.site_review_id, item.id)
            )
        else:
            history = json.loads(stored.previous_body_hashes or "[]")
            if stored.body_hash not in history:
                history.append(stored.body_hash)
            values: dict[str, Any] = {"id": item.id, **{c: getattr(item, c) for c in REVIEW_COLUMNS}}
            values.update(extra=extra, content_key=key, last_seen=now, last_crawl_run_id=run_id,
                          previous_body_hashes=json.dumps(history))  # fmt: skip
            changed.append(values)
    if new_rows:
        # One prepared statement for the batch: sqlite-utils' insert_all would build SQL per
        # chunk and commit through the connection's context manager, ending the transaction early.
        conn.executemany(INSERT_NEW_SQL, new_rows)
    if changed:
        # A plain UPDATE: an upsert's INSERT half would trip NOT NULL first_seen.
        conn.executemany(UPDATE_CHANGED_SQL, changed)
    if seen:
        conn.executemany(UPDATE_SEEN_SQL, seen)
    if purged:
        conn.executemany(UPDATE_PURGED_SQL, purged)
    if run_id is not None:
        conn.executemany(
            INSERT_AGGREGATE_SQL,
            [(a.source_id, run_id, a.aggregate.rating_value, a.aggregate.rating_min, a.aggregate.rating_max,
              a.aggregate.review_count, a.seen_at) for a in aggregates],
        )  # fmt: skip
    counts.update(new=len(new_rows), updated=len(changed), unchanged=len(seen) + len(purged))
    return counts
