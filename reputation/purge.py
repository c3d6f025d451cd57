"""Retention: remove the personal text of old reviews while keeping every number built on them.

``purge_reviews(db, before)`` empties ``body`` and clears ``title``, ``reply``, ``author_hash``,
``content_key`` and ``extra`` of every review published before ``before`` (undated reviews:
first seen before it), empties the customer-service sentences quoted in ``review_sentiment``
and stamps ``purged_at``. Rows, ids, dates, ratings and scores stay, so roll-ups over the same
scores give the same numbers. Syndicated-copy links need the author pseudonym and the text,
so the links that involve a purged review are computed first and kept in
``purged_review_copies``. One transaction; SQLite's ``secure_delete`` overwrites the freed
text in the file, and a WAL checkpoint afterwards moves it out of the write-ahead log too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlite_utils

from reputation.rollups.syndication import candidate_reviews, find_duplicates
from storage.database import transaction, utcnow

# Undated reviews count from when they were first seen.
REVIEW_DAY_SQL = "COALESCE(published_at, substr(first_seen, 1, 10))"


@dataclass(frozen=True)
class PurgeResult:
    before: date
    reviews: int  # reviews whose text and author were removed now
    scores_cleaned: int  # review_sentiment rows whose quoted sentences were removed
    copy_links: int  # syndicated-copy links kept for purged reviews


def purge_reviews(db: sqlite_utils.Database, before: date) -> PurgeResult:
    """Purge the text and author of every not-yet-purged review from before ``before``."""
    cutoff = before.isoformat()
    conn = db.conn
    conn.execute("PRAGMA secure_delete = ON")
    try:
        with transaction(db):
            targets = {
                row[0]
                for row in conn.execute(
                    f"SELECT id FROM reviews WHERE purged_at IS NULL AND {REVIEW_DAY_SQL} < ?", (cutoff,)
                )
            }
            links = [
                d for d in find_duplicates(candidate_reviews(db, "1 = 1", {}))
                if d.review_id in targets or d.original_id in targets
            ]  # fmt: skip
            now = utcnow()
            conn.executemany(
                "INSERT OR REPLACE INTO purged_review_copies (review_id, original_id, similarity, recorded_at)"
                " VALUES (?, ?, ?, ?)",
                [(d.review_id, d.original_id, d.similarity, now) for d in links],
            )
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS _purge_targets (id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM _purge_targets")
            conn.executemany("INSERT INTO _purge_targets (id) VALUES (?)", [(t,) for t in targets])
            scores = conn.execute(
                "UPDATE review_sentiment SET cs_sentences = '[]'"
                " WHERE review_id IN (SELECT id FROM _purge_targets) AND COALESCE(cs_sentences, '[]') <> '[]'"
            ).rowcount
            conn.execute(
                "UPDATE reviews SET body = '', title = NULL, reply = NULL, author_hash = NULL, content_key = NULL,"
                " extra = '{}', purged_at = ? WHERE id IN (SELECT id FROM _purge_targets)",
                (now,),
            )
            conn.execute("DROP TABLE temp._purge_targets")
    finally:
        conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return PurgeResult(before=before, reviews=len(targets), scores_cleaned=scores, copy_links=len(links))
