"""The vendor ranking as readers need it: rank, scores with intervals, P(best), verdicts, evidence.

Everything is computed by ``reputation rollup`` (reputation/rollups/build.py) and read here from
``vendor_reputation`` and ``rollup_meta``, so the overview page, ``reputation table`` and an analyst
with ``sqlite3`` see the same numbers. Rules (documented in build.py and statistics.py):

* rank: strict order of the shrunk customer-service score among vendors with at least
  :data:`MIN_RANK_N` customer-service reviews; the others have rank None and status
  "not enough evidence" and no verdict;
* P(best): the share of seeded Monte Carlo draws (one Beta per vendor, centred on its shrunk
  score) in which the vendor scores highest; it sums to 1 over the ranked vendors;
* verdict_vs_next: "ahead" when this vendor's shrunk-score interval lies wholly above the next
  ranked vendor's, else "tied" (cannot be told apart on this evidence).
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

import sqlite_utils

from reputation.rollups.statistics import MIN_PERIOD_N, MIN_RANK_N
from reputation.rollups.views import require_rollups

__all__ = ["MIN_PERIOD_N", "MIN_RANK_N", "Evidence", "RankRow", "ranking", "ranking_meta", "verdict_text"]


class Evidence(TypedDict):
    """What a rank rests on: the brands (n, weight), how many reviews, over which dates."""

    brands: list[dict[str, Any]]
    n_reviews: int
    n_cs: int
    first_review: str | None
    last_review: str | None
    as_of: str | None


class RankRow(TypedDict):
    """One vendor in the ranking (see the module doc for the rules)."""

    vendor_id: str
    vendor_name: str
    rank: int | None
    status: str  # 'ranked' | 'not enough evidence'
    n: int  # customer-service reviews behind the score (n_cs)
    n_reviews: int
    cs_score: float | None
    cs_low: float | None
    cs_high: float | None
    cs_shrunk: float | None
    cs_shrunk_low: float | None
    cs_shrunk_high: float | None
    p_best: float | None
    p_ahead_next: float | None
    verdict_vs_next: str | None  # 'ahead' | 'tied' | None
    verdict_text: str
    evidence: Evidence


def ranking(db: sqlite_utils.Database) -> list[RankRow]:
    """Ranked vendors by rank, then unranked ones by n (most first) and id."""
    require_rollups(db.conn)
    meta = dict(db.execute("SELECT key, value FROM rollup_meta").fetchall())
    cursor = db.conn.execute(
        "SELECT * FROM vendor_reputation ORDER BY rank IS NULL, rank, n_cs DESC, vendor_id"
    )
    names = [c[0] for c in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor]
    min_n = int(meta.get("min_rank_n", MIN_RANK_N))
    out: list[RankRow] = []
    for index, row in enumerate(rows):
        following = rows[index + 1] if index + 1 < len(rows) else None
        if following is not None and following["rank"] is None:
            following = None
        out.append(
            RankRow(
                vendor_id=row["vendor_id"],
                vendor_name=row["vendor_name"],
                rank=row["rank"],
                status=row["rank_status"],
                n=row["n_cs"],
                n_reviews=row["n_reviews"],
                cs_score=row["cs_score"],
                cs_low=row["cs_score_low"],
                cs_high=row["cs_score_high"],
                cs_shrunk=row["shrunk_score"],
                cs_shrunk_low=row["shrunk_score_low"],
                cs_shrunk_high=row["shrunk_score_high"],
                p_best=row["p_best"],
                p_ahead_next=row["p_ahead_next"],
                verdict_vs_next=row["verdict_vs_next"],
                verdict_text=verdict_text(row, following, min_n),
                evidence=Evidence(
                    brands=json.loads(row["brands"]),
                    n_reviews=row["n_reviews"],
                    n_cs=row["n_cs"],
                    first_review=row["first_review_date"],
                    last_review=row["last_review_date"],
                    as_of=meta.get("as_of"),
                ),
            )
        )
    return out


def verdict_text(row: dict[str, Any], following: dict[str, Any] | None, min_n: int = MIN_RANK_N) -> str:
    """Plain language for a vendor's standing against the next ranked vendor (``following``)."""
    name = row["vendor_name"]
    if row["rank"] is None:
        n = row["n_cs"]
        return (
            f"{name}: not enough evidence to rank ({n} customer-service review{'s' if n != 1 else ''}, "
            f"{min_n} needed)"
        )
    if following is None or row["verdict_vs_next"] is None:
        return f"{name} is ranked last of the vendors with enough evidence"
    other = following["vendor_name"]
    if row["verdict_vs_next"] == "ahead":
        return f"{name} is ahead of {other}: the intervals do not overlap"
    return f"{name} and {other} cannot be told apart on this evidence: the intervals overlap"


def ranking_meta(db: sqlite_utils.Database) -> dict[str, Any]:
    """The settings behind the ranking, for a page footer or a JSON envelope."""
    require_rollups(db.conn)
    meta = dict(db.execute("SELECT key, value FROM rollup_meta").fetchall())
    return {
        "as_of": meta.get("as_of"),
        "model_id": meta.get("model_id"),
        "model_revision": meta.get("model_revision"),
        "prior_strength": float(meta["prior_strength"]) if "prior_strength" in meta else None,
        "min_rank_n": int(meta.get("min_rank_n", MIN_RANK_N)),
        "min_period_n": int(meta.get("min_period_n", MIN_PERIOD_N)),
        "verdict_rule": meta.get("rank_verdict_rule"),
        "p_best_draws": int(meta["p_best_draws"]) if "p_best_draws" in meta else None,
        "p_best_seed": int(meta["p_best_seed"]) if "p_best_seed" in meta else None,
    }
