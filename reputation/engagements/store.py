"""The ``engagement_candidates`` table: write a discovery's candidates, read them back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from crawler.discovery.candidates import Candidate
from storage.database import transaction, utcnow
from storage.errors import NotFoundError

COLUMNS = ("id", "vendor_id", "brand_name", "brand_id", "relation", "event_date", "scope", "evidence", "url",
           "confidence", "status", "discovered_at", "decided_at", "engagement_id")


@dataclass(frozen=True)
class CandidateRow:
    id: int
    vendor_id: str
    brand_name: str
    brand_id: str | None
    relation: str
    event_date: str | None
    scope: str
    evidence: str
    url: str
    confidence: float
    status: str
    discovered_at: str
    decided_at: str | None
    engagement_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in COLUMNS}


def save_candidates(db: sqlite_utils.Database, candidates: Iterable[Candidate]) -> tuple[int, int]:
    """Insert new candidates, refresh ones seen before (a decided one keeps its decision): (new, seen before)."""
    new = again = 0
    now = utcnow()
    with transaction(db) as conn:
        for c in candidates:
            before = conn.execute(
                "SELECT id FROM engagement_candidates WHERE vendor_id = ? AND brand_name = ? AND relation = ? "
                "AND COALESCE(event_date, '') = COALESCE(?, '') AND scope = ?",
                (c.vendor_id, c.brand_name, c.relation, c.event_date, c.scope)).fetchone()
            if before is None:
                conn.execute(
                    "INSERT INTO engagement_candidates (vendor_id, brand_name, brand_id, relation, event_date, scope, "
                    "evidence, url, confidence, discovered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (c.vendor_id, c.brand_name, c.brand_id, c.relation, c.event_date, c.scope, c.evidence, c.url,
                     c.confidence, now))
                new += 1
            else:
                conn.execute("UPDATE engagement_candidates SET brand_id = COALESCE(brand_id, ?), evidence = ?, "
                             "url = ?, confidence = ? WHERE id = ?",
                             (c.brand_id, c.evidence, c.url, c.confidence, before[0]))
                again += 1
    return new, again


def list_candidates(db: sqlite_utils.Database, *, vendor: str | None = None, status: str | None = None,
                    min_confidence: float = 0.0) -> list[CandidateRow]:
    sql = f"SELECT {', '.join(COLUMNS)} FROM engagement_candidates WHERE confidence >= ?"
    params: list[Any] = [min_confidence]
    if vendor:
        sql += " AND vendor_id = ?"
        params.append(vendor)
    if status:
        sql += " AND status = ?"
        params.append(status)
    sql += " ORDER BY vendor_id, COALESCE(brand_id, brand_name), COALESCE(event_date, ''), id"
    return [CandidateRow(*row) for row in db.execute(sql, params).fetchall()]


def get_candidate(db: sqlite_utils.Database, candidate_id: int) -> CandidateRow:
    row = db.execute(f"SELECT {', '.join(COLUMNS)} FROM engagement_candidates WHERE id = ?",
                     (candidate_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no engagement candidate {candidate_id} (see `reputation vendors candidates`)")
    return CandidateRow(*row)
