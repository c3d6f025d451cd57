"""The overview: every vendor on one page, ranked, with how sure the ranking is.

Built from :func:`reputation.rollups.ranking.ranking` (rank by shrunk customer-service score,
its 95% interval, P(best), the verdict against the next vendor); this module only shapes it
into the document that overview.json is, and that index.html and overview.csv are rendered
from. Vendors below the minimum n stay in the document with "not enough evidence" and no
score, rank or probability, so no output suggests a precision the evidence does not have.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Literal, TypedDict

import sqlite_utils

from reputation.rollups.ranking import RankRow, ranking, ranking_meta
from reputation.scorecards.content import (
    SCHEMA_VERSION,
    RollupInfo,
    check_rollups,
    file_stem,
    rollup_info,
    tied_flags,
)
from storage.database import utcnow

__all__ = ["Overview", "build_overview", "overview_schema"]

NOT_ENOUGH = "not enough evidence"
SCHEMA_FILE = "overview.schema.json"  # package data of reputation.scorecards


def overview_schema() -> dict[str, Any]:
    """The JSON schema overview.json follows, read from the installed package."""
    text = resources.files("reputation.scorecards").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class EvidenceBrand(TypedDict):
    brand_id: str
    brand_name: str
    n_cs: int


class OverviewVendor(TypedDict):
    """One vendor's line: rank, score with interval, n, P(best), the evidence and its card."""

    vendor_id: str
    vendor_name: str
    card: str  # the card's file name, beside index.html
    status: Literal["ranked", "not_enough_evidence"]
    rank: int | None
    tied: bool  # cannot be told apart from the vendor above or below
    score: float | None  # shrunk customer-service score: what the rank is decided on
    score_low: float | None
    score_high: float | None
    cs_score: float | None  # the plain (unshrunk) customer-service mean, for reference
    n_cs: int
    n_reviews: int
    p_best: float | None
    verdict_vs_next: Literal["ahead", "tied"] | None
    p_ahead_next: float | None
    verdict_text: str
    brands: list[EvidenceBrand]
    first_review: str | None
    last_review: str | None


class Verdict(TypedDict):
    """The verdict on one adjacent pair of ranked vendors, upper above lower."""

    upper_id: str
    upper_name: str
    lower_id: str
    lower_name: str
    verdict: Literal["ahead", "tied"]
    p_upper_ahead: float | None
    text: str


class Overview(TypedDict):
    schema_version: str
    generated_at: str
    rollup: RollupInfo
    min_rank_n: int
    verdict_rule: str | None
    n_ranked: int
    vendors: list[OverviewVendor]
    verdicts: list[Verdict]


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _verdict(value: str | None) -> Literal["ahead", "tied"] | None:
    return "ahead" if value == "ahead" else "tied" if value == "tied" else None


def _vendor(row: RankRow, tied: bool) -> OverviewVendor:
    ranked = row["rank"] is not None
    evidence = row["evidence"]
    return {
        "vendor_id": row["vendor_id"],
        "vendor_name": row["vendor_name"] or row["vendor_id"],
        "card": f"{file_stem(row['vendor_id'])}.html",
        "status": "ranked" if ranked else "not_enough_evidence",
        "rank": row["rank"],
        "tied": tied,
        "score": _round(row["cs_shrunk"]) if ranked else None,
        "score_low": _round(row["cs_shrunk_low"]) if ranked else None,
        "score_high": _round(row["cs_shrunk_high"]) if ranked else None,
        "cs_score": _round(row["cs_score"]) if ranked else None,
        "n_cs": int(row["n"] or 0),
        "n_reviews": int(row["n_reviews"] or 0),
        "p_best": _round(row["p_best"]) if ranked else None,
        "verdict_vs_next": _verdict(row["verdict_vs_next"]) if ranked else None,
        "p_ahead_next": _round(row["p_ahead_next"]) if ranked else None,
        "verdict_text": row["verdict_text"] or (NOT_ENOUGH if not ranked else ""),
        "brands": [
            {"brand_id": str(b["brand_id"]), "brand_name": str(b.get("brand_name") or b["brand_id"]),
             "n_cs": int(b.get("n_cs") or 0)}
            for b in evidence.get("brands", [])
        ],
        "first_review": evidence.get("first_review"),
        "last_review": evidence.get("last_review"),
    }


def build_overview(db: sqlite_utils.Database) -> Overview:
    """The overview document of every rolled-up vendor, ranked ones first, in rank order."""
    meta = check_rollups(db)
    rows = ranking(db)
    tied = tied_flags(rows)
    vendors = [_vendor(r, tied[r["vendor_id"]]) for r in rows]
    ranked = [v for v in vendors if v["rank"] is not None]
    verdicts: list[Verdict] = []
    for upper, lower in zip(ranked, ranked[1:], strict=False):
        verdict = upper["verdict_vs_next"] or "tied"
        verdicts.append({
            "upper_id": upper["vendor_id"],
            "upper_name": upper["vendor_name"],
            "lower_id": lower["vendor_id"],
            "lower_name": lower["vendor_name"],
            "verdict": verdict,
            "p_upper_ahead": upper["p_ahead_next"],
            "text": upper["verdict_text"],
        })
    extra = ranking_meta(db)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": utcnow(),
        "rollup": rollup_info(meta),
        "min_rank_n": int(extra["min_rank_n"]),
        "verdict_rule": extra.get("verdict_rule"),
        "n_ranked": len(ranked),
        "vendors": vendors,
        "verdicts": verdicts,
    }
