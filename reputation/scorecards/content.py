"""Vendor scorecards: everything one vendor's report shows, read from the roll-up tables.

A scorecard is a :class:`Scorecard`, a typed dict shaped by the versioned JSON schema
(scorecard.schema.json beside this file, read with :func:`scorecard_schema`), so the JSON
output, the CSV row and the HTML page all come from one structure. Typed dicts rather than
dataclasses because the document is written as JSON exactly as built, key order included.
Nothing here renders; see render.py.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, TypedDict

import sqlite_utils

from reputation.rollups.build import CS_RELEVANCE_THRESHOLD
from reputation.rollups.ranking import RankRow, ranking, ranking_meta
from reputation.rollups.views import RollupsMissingError, require_rollups
from storage.database import utcnow
from storage.errors import NotFoundError

__all__ = ["RollupsMissingError", "Scorecard", "build_scorecards", "file_stem", "scorecard_schema"]

SCHEMA_VERSION = "2.0"
SCHEMA_FILE = "scorecard.schema.json"  # package data of reputation.scorecards
EXCERPTS_PER_SIDE = 3
EXCERPT_MAX_CHARS = 400
# An excerpt is "clearly" negative or positive when its service score is at least this far from 0.
EXCERPT_THRESHOLD = 0.5
# The roll-ups' view of which reviews count for which vendor (copies and out-of-scope excluded).
ATTRIBUTION_VIEW = "vendor_review_attribution"


class RollupInfo(TypedDict):
    """Provenance: the rollup_meta the scorecard was read from."""

    as_of: str | None
    built_at: str | None
    model_id: str | None
    model_revision: str | None


class VendorInfo(TypedDict):
    id: str
    name: str
    website: str | None


class Rank(TypedDict):
    """Where the ranking puts the vendor, and how sure it is."""

    position: int | None  # None: not ranked (not enough evidence)
    of: int  # vendors ranked
    tied: bool  # shares its position with another vendor
    p_best: float | None  # probability of being the best vendor, from the ranking's model
    min_n: int  # customer-service reviews needed before a rank is claimed
    enough_evidence: bool


class Metric(TypedDict):
    """One headline metric: value, 95% interval, n and the comparison with the vendors' median."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    n: int
    median_all_vendors: float | None
    vs_median: float | None


class BrandShare(TypedDict):
    brand_id: str
    brand_name: str
    n: int
    n_cs: int
    weight: float | None


class MonthlyPoint(TypedDict):
    month: str
    n_reviews: int
    n_cs: int
    cs_score: float | None
    cs_score_low: float | None
    cs_score_high: float | None
    mean_score: float | None
    mean_score_low: float | None
    mean_score_high: float | None
    share_positive: float | None
    share_positive_low: float | None
    share_positive_high: float | None
    share_negative: float | None
    share_negative_low: float | None
    share_negative_high: float | None


class QuarterPoint(TypedDict):
    """One quarter of the trend; ``enough`` False: fewer than the minimum n, drawn as a gap."""

    quarter: str  # 'YYYY-Qn'
    n_cs: int
    cs_score: float | None
    cs_score_low: float | None
    cs_score_high: float | None
    enough: bool


class SwitchInfo(TypedDict):
    """A vendor switch at a client brand, seen from this vendor ('in': to it, 'out': away).

    ``other_*`` is the same brand's sentiment in sentences that are not about service: the
    baseline that the service change is compared with. ``*_for_vendor`` are the service
    change and the change beyond the baseline signed from this vendor's point of view
    (positive = points for this vendor): on an 'out' switch, service improving after the client
    left counts against the vendor.
    """

    direction: Literal["in", "out"]
    brand_id: str
    brand_name: str
    from_vendor_id: str | None
    from_vendor_name: str | None
    to_vendor_id: str | None
    to_vendor_name: str | None
    from_end_date: str | None
    switch_date: str | None
    window_days: int
    n_cs_before: int
    cs_before: float | None
    n_cs_after: int
    cs_after: float | None
    n_other_before: int
    other_before: float | None
    n_other_after: int
    other_after: float | None
    cs_change: float | None
    other_change: float | None
    did: float | None
    cs_change_for_vendor: float | None
    did_for_vendor: float | None


class Excerpt(TypedDict):
    review_id: str
    brand_id: str
    brand_name: str
    published_at: str | None
    cs_score: float | None
    cs_relevance: float | None
    title: str | None
    text: str
    url: str | None


class Excerpts(TypedDict):
    """Clearly negative / positive service excerpts; ``threshold``: the |CS score| they all reach."""

    threshold: float
    worst: list[Excerpt]
    best: list[Excerpt]


class Period(TypedDict):
    first: str | None  # first and last published day among the vendor's attributed reviews
    last: str | None


class Scorecard(TypedDict):
    """One vendor's scorecard; the JSON document is this, as is."""

    schema_version: str
    generated_at: str
    rollup: RollupInfo
    vendor: VendorInfo
    status: Literal["ok", "not_enough_evidence", "no_attributable_reviews"]
    n_reviews: int
    n_brands: int
    period: Period
    rank: Rank
    metrics: dict[str, Metric]  # keyed by MetricSpec.key, in METRICS order
    brands: list[BrandShare]
    min_period_n: int  # customer-service reviews a quarter needs to be drawn
    quarterly: list[QuarterPoint]
    monthly: list[MonthlyPoint]
    switches: list[SwitchInfo]
    excerpts: Excerpts


def scorecard_schema() -> dict[str, Any]:
    """The JSON schema scorecards follow, read from the installed package."""
    text = resources.files("reputation.scorecards").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    column: str
    n_column: str


# Headline metrics, in display order. Intervals are read from <column>_low/_high when present.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("cs_sentiment", "Customer-service sentiment", "cs_score", "n_cs"),
    MetricSpec("shrunk_score", "Shrunk customer-service score", "shrunk_score", "n_cs"),
    MetricSpec("recency_score", "Recency-weighted score", "recency_score", "n_cs"),
    MetricSpec("overall_sentiment", "Overall sentiment", "mean_score", "n_scored"),
    MetricSpec("share_positive", "Share positive", "share_positive", "n_scored"),
    MetricSpec("share_negative", "Share negative", "share_negative", "n_scored"),
)


def _num(value: Any) -> float | None:
    """Floats rounded for reports; NULL stays None (never 0.0)."""
    if value is None:
        return None
    return round(float(value), 4)


def _bounded(value: Any, column: str) -> float | None:
    """An interval end clipped to the range of its measure (shares 0..1, scores -1..1):
    a normal-approximation interval near the edge can spill past a value that cannot occur."""
    number = _num(value)
    if number is None:
        return None
    low = 0.0 if "share" in column else -1.0
    return min(1.0, max(low, number))


def _int(value: Any) -> int:
    return int(value or 0)


def _rows(db: sqlite_utils.Database, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def check_rollups(db: sqlite_utils.Database) -> dict[str, str]:
    """The roll-up metadata; raises with the command to run when roll-ups are missing."""
    require_rollups(db.conn)
    return {str(k): str(v) for k, v in db.execute("SELECT key, value FROM rollup_meta").fetchall()}


def known_vendors(db: sqlite_utils.Database) -> list[str]:
    if "vendors" not in db.table_names():
        return []
    return [row[0] for row in db.execute("SELECT id FROM vendors ORDER BY id")]


def resolve_vendors(db: sqlite_utils.Database, vendor_ids: list[str] | None) -> list[str]:
    """Vendor ids to report on: all rolled-up vendors, or the ones asked for (checked)."""
    rolled = [row[0] for row in db.execute("SELECT vendor_id FROM vendor_reputation ORDER BY vendor_id")]
    if not vendor_ids:
        return rolled
    known = known_vendors(db)
    unknown = [v for v in vendor_ids if v not in known]
    if unknown:
        listing = ", ".join(known) if known else "none (load a registry with `reputation vendors load`)"
        raise NotFoundError(f"unknown vendor {', '.join(map(repr, unknown))}; known vendors: {listing}")
    stale = [v for v in vendor_ids if v not in rolled]
    if stale:
        raise RollupsMissingError(
            f"vendor {', '.join(map(repr, stale))} has no roll-up row (registered after the last roll-up); "
            "run `reputation rollup` again"
        )
    return list(dict.fromkeys(vendor_ids))


def _metric(row: dict[str, Any], spec: MetricSpec, median: float | None) -> Metric:
    value = _num(row.get(spec.column))
    return {
        "label": spec.label,
        "value": value,
        "low": _bounded(row.get(f"{spec.column}_low"), spec.column),
        "high": _bounded(row.get(f"{spec.column}_high"), spec.column),
        "n": _int(row.get(spec.n_column)),
        "median_all_vendors": _num(median),
        "vs_median": _num(value - median) if value is not None and median is not None else None,
    }


def _medians(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Median of each metric over the ranked vendors (too little evidence does not move it)."""
    out: dict[str, float | None] = {}
    for spec in METRICS:
        values = [float(r[spec.column]) for r in rows if r.get(spec.column) is not None]
        out[spec.key] = statistics.median(values) if values else None
    return out


def _hidden(metric: Metric) -> Metric:
    """A metric of a vendor with too little evidence: n only, no number that would look precise."""
    return {**metric, "value": None, "low": None, "high": None, "vs_median": None}


def _brands(row: dict[str, Any]) -> list[BrandShare]:
    raw = row.get("brands")
    items = json.loads(raw) if isinstance(raw, str) and raw else (raw or [])
    return [
        {
            "brand_id": str(b.get("brand_id")),
            "brand_name": str(b.get("brand_name") or b.get("brand_id")),
            "n": _int(b.get("n")),
            "n_cs": _int(b.get("n_cs")),
            "weight": _num(b.get("weight")),
        }
        for b in items
    ]


def _interval(row: dict[str, Any], column: str) -> tuple[float | None, float | None]:
    return _bounded(row.get(f"{column}_low"), column), _bounded(row.get(f"{column}_high"), column)


def _monthly(db: sqlite_utils.Database, vendor_id: str) -> list[MonthlyPoint]:
    out: list[MonthlyPoint] = []
    for r in _rows(db, "SELECT * FROM vendor_monthly WHERE vendor_id = ? ORDER BY month", (vendor_id,)):
        cs_low, cs_high = _interval(r, "cs_score")
        mean_low, mean_high = _interval(r, "mean_score")
        pos_low, pos_high = _interval(r, "share_positive")
        neg_low, neg_high = _interval(r, "share_negative")
        out.append({
            "month": str(r["month"]),
            "n_reviews": _int(r.get("n_reviews")),
            "n_cs": _int(r.get("n_cs")),
            "cs_score": _num(r.get("cs_score")), "cs_score_low": cs_low, "cs_score_high": cs_high,
            "mean_score": _num(r.get("mean_score")), "mean_score_low": mean_low, "mean_score_high": mean_high,
            "share_positive": _num(r.get("share_positive")),
            "share_positive_low": pos_low, "share_positive_high": pos_high,
            "share_negative": _num(r.get("share_negative")),
            "share_negative_low": neg_low, "share_negative_high": neg_high,
        })
    return out


def _date(value: Any) -> str | None:
    return None if value is None else str(value)


def _switches(db: sqlite_utils.Database, vendor_id: str) -> list[SwitchInfo]:
    sql = """
        SELECT s.*, b.name AS brand_name, fv.name AS from_vendor_name, tv.name AS to_vendor_name
        FROM vendor_switches s
        LEFT JOIN brands b ON b.id = s.brand_id
        LEFT JOIN vendors fv ON fv.id = s.from_vendor_id
        LEFT JOIN vendors tv ON tv.id = s.to_vendor_id
        WHERE s.from_vendor_id = :v OR s.to_vendor_id = :v
        ORDER BY s.switch_date, s.brand_id
    """
    return [
        {
            "direction": "in" if r["to_vendor_id"] == vendor_id else "out",
            "brand_id": str(r["brand_id"]),
            "brand_name": str(r.get("brand_name") or r["brand_id"]),
            "from_vendor_id": r.get("from_vendor_id"),
            "from_vendor_name": r.get("from_vendor_name"),
            "to_vendor_id": r.get("to_vendor_id"),
            "to_vendor_name": r.get("to_vendor_name"),
            "from_end_date": _date(r.get("from_end_date")),
            "switch_date": _date(r.get("switch_date")),
            "window_days": _int(r.get("window_days")),
            "n_cs_before": _int(r.get("n_cs_before")),
            "cs_before": _num(r.get("cs_before")),
            "n_cs_after": _int(r.get("n_cs_after")),
            "cs_after": _num(r.get("cs_after")),
            "n_other_before": _int(r.get("n_other_before")),
            "other_before": _num(r.get("other_before")),
            "n_other_after": _int(r.get("n_other_after")),
            "other_after": _num(r.get("other_after")),
            "cs_change": _num(r.get("cs_change")),
            "other_change": _num(r.get("other_change")),
            "did": _num(r.get("did")),
            "cs_change_for_vendor": _for_vendor(r.get("cs_change"), r["to_vendor_id"] == vendor_id),
            "did_for_vendor": _for_vendor(r.get("did"), r["to_vendor_id"] == vendor_id),
        }
        for r in _rows(db, sql, {"v": vendor_id})
    ]


def _for_vendor(change: Any, came_in: bool) -> float | None:
    """A brand's change signed for the vendor: better service after it took over counts for it,
    better service after the client left it counts against it."""
    value = _num(change)
    if value is None:
        return None
    return value if came_in else _num(-value)


def _sentences(cs_sentences: str | None) -> list[str]:
    try:
        sentences = json.loads(cs_sentences) if cs_sentences else []
    except ValueError:
        sentences = []
    return [str(x).strip() for x in sentences if str(x).strip()] if isinstance(sentences, list) else []


def _excerpt_text(cs_sentences: str | None, body: str) -> str:
    """The customer-service sentences when the model kept them, else the start of the body."""
    text = " ".join(_sentences(cs_sentences)) or body.strip()
    if len(text) > EXCERPT_MAX_CHARS:
        text = text[: EXCERPT_MAX_CHARS - 1].rstrip() + "…"
    return text


def _pick(candidates: list[dict[str, Any]], exclude: set[str]) -> list[dict[str, Any]]:
    """Up to EXCERPTS_PER_SIDE candidates, one per brand first and never the same text twice.

    Candidates arrive best-first (most about service, then most extreme), so the choice does not
    hinge on which of many saturated scores is a hair higher.
    """
    chosen: list[dict[str, Any]] = []
    seen_text: set[str] = set()
    for one_per_brand in (True, False):
        brands = {c["brand_id"] for c in chosen}
        for c in candidates:
            if len(chosen) == EXCERPTS_PER_SIDE:
                return chosen
            text = c["_text"].casefold()
            if c["review_id"] in exclude or text in seen_text or (one_per_brand and c["brand_id"] in brands):
                continue
            chosen.append(c)
            seen_text.add(text)
            brands.add(c["brand_id"])
            exclude.add(c["review_id"])
    return chosen


def _excerpts(db: sqlite_utils.Database, vendor_id: str, meta: dict[str, str]) -> Excerpts:
    """Clearly negative and clearly positive customer-service excerpts of the vendor's reviews.

    Same inputs as the customer-service score: attributed (syndicated copies excluded), English,
    relevant enough, scored by the roll-ups' model revision. A "worst" excerpt must have a service
    score of -EXCERPT_THRESHOLD or below *and* a review the model did not label positive overall
    (and the mirror for "best"), so a mostly-positive review is never shown as the worst; among those, the
    reviews most about service come first. Too few clear cases give fewer excerpts, not weaker ones.
    """
    sql = f"""
        SELECT DISTINCT r.id AS review_id, r.brand_id, b.name AS brand_name, r.published_at, r.url,
               r.title, r.body, rs.cs_sentences, rs.cs_score, rs.cs_relevance, rs.score, rs.label
        FROM {ATTRIBUTION_VIEW} a
        JOIN reviews r ON r.id = a.review_id
        JOIN brands b ON b.id = r.brand_id
        JOIN review_sentiment rs ON rs.review_id = r.id AND rs.model_id = :model AND rs.model_revision = :revision
        WHERE a.vendor_id = :v AND rs.cs_score IS NOT NULL AND rs.cs_relevance >= :min_rel
              AND COALESCE(lower(substr(COALESCE(rs.language, r.language), 1, 2)), 'en') = 'en'
              AND rs.cs_score * :sign >= :threshold
              AND COALESCE(rs.label, '') <> :opposite
        ORDER BY round(rs.cs_relevance, 2) DESC, rs.cs_score * :sign DESC, r.published_at DESC, r.id
        LIMIT 200
    """
    params: dict[str, Any] = {
        "v": vendor_id, "min_rel": CS_RELEVANCE_THRESHOLD, "threshold": EXCERPT_THRESHOLD,
        "model": meta.get("model_id"), "revision": meta.get("model_revision"),
    }
    exclude: set[str] = set()
    picked: dict[str, list[dict[str, Any]]] = {}
    for side, sign, opposite in (("worst", -1, "positive"), ("best", 1, "negative")):
        rows = _rows(db, sql, {**params, "sign": sign, "opposite": opposite})
        for r in rows:
            r["_text"] = _excerpt_text(r["cs_sentences"], r["body"] or "")
        picked[side] = _pick(rows, exclude)

    def shape(r: dict[str, Any]) -> Excerpt:
        return {
            "review_id": str(r["review_id"]),
            "brand_id": str(r["brand_id"]),
            "brand_name": str(r["brand_name"]),
            "published_at": r["published_at"],
            "cs_score": _num(r["cs_score"]),
            "cs_relevance": _num(r["cs_relevance"]),
            "title": r["title"],
            "text": r["_text"],
            "url": r["url"],
        }

    return {"threshold": EXCERPT_THRESHOLD, "worst": [shape(r) for r in picked["worst"]],
            "best": [shape(r) for r in picked["best"]]}


def _quarterly(db: sqlite_utils.Database, vendor_id: str) -> list[QuarterPoint]:
    """The trend: calendar quarters with an interval; a quarter under the minimum n is a gap."""
    out: list[QuarterPoint] = []
    for r in _rows(db, "SELECT * FROM vendor_quarterly WHERE vendor_id = ? ORDER BY quarter", (vendor_id,)):
        low, high = _interval(r, "cs_score")
        out.append({
            "quarter": str(r["quarter"]),
            "n_cs": _int(r.get("n_cs")),
            "cs_score": _num(r.get("cs_score")),
            "cs_score_low": low,
            "cs_score_high": high,
            "enough": bool(r.get("enough")),
        })
    return out


def tied_flags(rows: Sequence[RankRow]) -> dict[str, bool]:
    """Vendors whose verdict with the vendor above or below is 'tied' (cannot be told apart)."""
    ranked = [r for r in rows if r["rank"] is not None]
    flags = dict.fromkeys((r["vendor_id"] for r in rows), False)
    for upper, lower in zip(ranked, ranked[1:], strict=False):
        if upper["verdict_vs_next"] == "tied":
            flags[upper["vendor_id"]] = flags[lower["vendor_id"]] = True
    return flags


def file_stem(vendor_id: str) -> str:
    """A file name from a vendor id: registry slugs pass unchanged, anything else is made safe."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", vendor_id).strip("_")
    return stem or "vendor"


def rollup_info(meta: dict[str, str]) -> RollupInfo:
    return {
        "as_of": meta.get("as_of"),
        "built_at": meta.get("built_at"),
        "model_id": meta.get("model_id"),
        "model_revision": meta.get("model_revision"),
    }


def build_scorecards(db: sqlite_utils.Database, vendor_ids: list[str] | None = None) -> list[Scorecard]:
    """Scorecards for the vendors asked for (all rolled-up vendors when None or empty)."""
    meta = check_rollups(db)
    wanted = resolve_vendors(db, vendor_ids)
    all_rows = _rows(
        db,
        "SELECT vr.*, v.website AS vendor_website FROM vendor_reputation vr "
        "LEFT JOIN vendors v ON v.id = vr.vendor_id ORDER BY vr.vendor_id",
    )
    by_id = {r["vendor_id"]: r for r in all_rows}
    ranks = {r["vendor_id"]: r for r in ranking(db)}
    tied = tied_flags(list(ranks.values()))
    ranked = sum(1 for r in ranks.values() if r["rank"] is not None)
    medians = _medians([r for r in all_rows if ranks[r["vendor_id"]]["rank"] is not None])
    settings = ranking_meta(db)
    min_n, min_period_n = int(settings["min_rank_n"]), int(settings["min_period_n"])
    generated_at = utcnow()
    cards: list[Scorecard] = []
    for vendor_id in wanted:
        row, rank = by_id[vendor_id], ranks[vendor_id]
        n_reviews = _int(row.get("n_reviews"))
        enough = rank["rank"] is not None
        metrics = {spec.key: _metric(row, spec, medians[spec.key]) for spec in METRICS}
        if not enough:
            metrics = {key: _hidden(m) for key, m in metrics.items()}
        evidence = rank["evidence"]
        cards.append(
            {
                "schema_version": SCHEMA_VERSION,
                "generated_at": generated_at,
                "rollup": rollup_info(meta),
                "vendor": {
                    "id": str(vendor_id),
                    "name": str(row.get("vendor_name") or vendor_id),
                    "website": row.get("vendor_website"),
                },
                "status": "ok" if enough else "not_enough_evidence" if n_reviews > 0 else "no_attributable_reviews",
                "n_reviews": n_reviews,
                "n_brands": _int(row.get("n_brands")),
                "period": {"first": evidence.get("first_review"), "last": evidence.get("last_review")},
                "rank": {
                    "position": rank["rank"],
                    "of": ranked,
                    "tied": tied[vendor_id],
                    "p_best": _num(rank["p_best"]) if enough else None,
                    "min_n": min_n,
                    "enough_evidence": enough,
                },
                "metrics": metrics,
                "brands": _brands(row),
                "min_period_n": min_period_n,
                "quarterly": _quarterly(db, vendor_id),
                "monthly": _monthly(db, vendor_id),
                "switches": _switches(db, vendor_id),
                "excerpts": _excerpts(db, vendor_id, meta),
            }
        )
    return cards
