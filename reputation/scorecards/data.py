"""Vendor scorecards: everything one vendor's report shows, read from the roll-up tables.

A scorecard is a plain dict shaped by the versioned JSON schema in
reputation/scorecards/scorecard.schema.json, so the JSON output, the CSV row and the HTML page
all come from one structure. Nothing here renders; see scorecard_render.py.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from reputation.rollups.build import CS_RELEVANCE_THRESHOLD
from storage.database import utcnow
from storage.errors import NotFoundError, ReputationError

SCHEMA_VERSION = "1.0"
EXCERPTS_PER_SIDE = 3
EXCERPT_MAX_CHARS = 400
REQUIRED_TABLES = ("rollup_meta", "vendor_reputation")
# The roll-ups' view of which reviews count for which vendor (copies and out-of-scope excluded).
ATTRIBUTION_VIEW = "vendor_review_attribution"


class RollupsMissingError(ReputationError):
    """The database has no roll-ups yet, so there is nothing to report."""


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

MONTHLY_FIELDS = (
    "n_reviews", "n_cs", "cs_score", "cs_score_low", "cs_score_high",
    "mean_score", "mean_score_low", "mean_score_high",
    "share_positive", "share_positive_low", "share_positive_high",
    "share_negative", "share_negative_low", "share_negative_high",
)
SWITCH_FIELDS = (
    "from_end_date", "switch_date", "window_days", "n_cs_before", "cs_before", "n_cs_after", "cs_after",
    "n_other_before", "other_before", "n_other_after", "other_after", "cs_change", "other_change", "did",
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
    present = set(db.table_names()) | set(db.view_names())
    missing = [t for t in (*REQUIRED_TABLES, ATTRIBUTION_VIEW) if t not in present]
    if missing or not db.execute("SELECT 1 FROM vendor_reputation LIMIT 1").fetchone():
        raise RollupsMissingError(
            "no roll-ups in this database (missing or empty: "
            f"{', '.join(missing) or 'vendor_reputation'}); run `reputation rollup` first"
        )
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


def _metric(row: dict[str, Any], spec: MetricSpec, median: float | None) -> dict[str, Any]:
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


def _medians(all_rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Median of each metric over vendors that have a value (vendors with n=0 do not count)."""
    out: dict[str, float | None] = {}
    for spec in METRICS:
        values = [float(r[spec.column]) for r in all_rows if r.get(spec.column) is not None]
        out[spec.key] = statistics.median(values) if values else None
    return out


def _rank(row: dict[str, Any]) -> int | None:
    if row.get("rank") is None or row.get("shrunk_score") is None:
        return None
    return int(row["rank"])


def _brands(row: dict[str, Any]) -> list[dict[str, Any]]:
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


def _monthly(db: sqlite_utils.Database, vendor_id: str) -> list[dict[str, Any]]:
    if "vendor_monthly" not in db.table_names():
        return []
    out = []
    for r in _rows(db, "SELECT * FROM vendor_monthly WHERE vendor_id = ? ORDER BY month", (vendor_id,)):
        entry: dict[str, Any] = {"month": str(r["month"])}
        for name in MONTHLY_FIELDS:
            if name.startswith("n_"):
                entry[name] = _int(r.get(name))
            elif name.endswith(("_low", "_high")):
                entry[name] = _bounded(r.get(name), name)
            else:
                entry[name] = _num(r.get(name))
        out.append(entry)
    return out


def _switches(db: sqlite_utils.Database, vendor_id: str) -> list[dict[str, Any]]:
    if "vendor_switches" not in db.table_names():
        return []
    sql = """
        SELECT s.*, b.name AS brand_name, fv.name AS from_vendor_name, tv.name AS to_vendor_name
        FROM vendor_switches s
        LEFT JOIN brands b ON b.id = s.brand_id
        LEFT JOIN vendors fv ON fv.id = s.from_vendor_id
        LEFT JOIN vendors tv ON tv.id = s.to_vendor_id
        WHERE s.from_vendor_id = :v OR s.to_vendor_id = :v
        ORDER BY s.switch_date, s.brand_id
    """
    out = []
    for r in _rows(db, sql, {"v": vendor_id}):
        entry: dict[str, Any] = {
            "direction": "in" if r["to_vendor_id"] == vendor_id else "out",
            "brand_id": str(r["brand_id"]),
            "brand_name": str(r.get("brand_name") or r["brand_id"]),
            "from_vendor_id": r.get("from_vendor_id"),
            "from_vendor_name": r.get("from_vendor_name"),
            "to_vendor_id": r.get("to_vendor_id"),
            "to_vendor_name": r.get("to_vendor_name"),
        }
        for name in SWITCH_FIELDS:
            value = r.get(name)
            if name.endswith("_date"):
                entry[name] = None if value is None else str(value)
            elif name.startswith("n_") or name == "window_days":
                entry[name] = _int(value)
            else:
                entry[name] = _num(value)
        out.append(entry)
    return out


def _excerpt_text(cs_sentences: str | None, body: str) -> str:
    """The customer-service sentences when the model kept them, else the start of the body."""
    text = ""
    if cs_sentences:
        try:
            sentences = json.loads(cs_sentences)
        except ValueError:
            sentences = []
        if isinstance(sentences, list):
            text = " ".join(str(s).strip() for s in sentences if str(s).strip())
    text = text or body.strip()
    if len(text) > EXCERPT_MAX_CHARS:
        text = text[: EXCERPT_MAX_CHARS - 1].rstrip() + "…"
    return text


def _excerpts(db: sqlite_utils.Database, vendor_id: str, meta: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Worst and best customer-service excerpts among the reviews the roll-ups attributed to the vendor.

    Same inputs as the customer-service score: attributed (syndicated copies excluded),
    English, relevant enough, and scored by the roll-ups' model revision.
    """
    sql = f"""
        SELECT DISTINCT r.id AS review_id, r.brand_id, b.name AS brand_name, r.published_at, r.url,
               r.title, r.body, rs.cs_sentences, rs.cs_score
        FROM {ATTRIBUTION_VIEW} a
        JOIN reviews r ON r.id = a.review_id
        JOIN brands b ON b.id = r.brand_id
        JOIN review_sentiment rs ON rs.review_id = r.id AND rs.model_id = :model AND rs.model_revision = :revision
        WHERE a.vendor_id = :v AND rs.cs_score IS NOT NULL AND rs.cs_relevance >= :min_rel
              AND COALESCE(lower(substr(COALESCE(rs.language, r.language), 1, 2)), 'en') = 'en'
              AND r.id NOT IN (SELECT value FROM json_each(:exclude))
        ORDER BY rs.cs_score {{order}}, r.id
        LIMIT {EXCERPTS_PER_SIDE}
    """
    params: dict[str, Any] = {
        "v": vendor_id, "min_rel": CS_RELEVANCE_THRESHOLD, "exclude": "[]",
        "model": meta.get("model_id"), "revision": meta.get("model_revision"),
    }
    worst = _rows(db, sql.format(order="ASC"), params)
    params["exclude"] = json.dumps([r["review_id"] for r in worst])
    best = _rows(db, sql.format(order="DESC"), params)

    def shape(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "review_id": str(r["review_id"]),
            "brand_id": str(r["brand_id"]),
            "brand_name": str(r["brand_name"]),
            "published_at": r["published_at"],
            "cs_score": _num(r["cs_score"]),
            "title": r["title"],
            "text": _excerpt_text(r["cs_sentences"], r["body"] or ""),
            "url": r["url"],
        }

    return {"worst": [shape(r) for r in worst], "best": [shape(r) for r in best]}


def build_scorecards(db: sqlite_utils.Database, vendor_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Scorecards for the vendors asked for (all rolled-up vendors when None or empty)."""
    meta = check_rollups(db)
    wanted = resolve_vendors(db, vendor_ids)
    all_rows = _rows(
        db,
        "SELECT vr.*, v.website AS vendor_website FROM vendor_reputation vr "
        "LEFT JOIN vendors v ON v.id = vr.vendor_id ORDER BY vr.vendor_id",
    )
    by_id = {r["vendor_id"]: r for r in all_rows}
    medians = _medians(all_rows)
    # Vendors without a score are not ranked (the table puts them last); rank among those with one.
    ranked = sum(1 for r in all_rows if r.get("shrunk_score") is not None)
    generated_at = utcnow()
    cards = []
    for vendor_id in wanted:
        row = by_id[vendor_id]
        n_reviews = _int(row.get("n_reviews"))
        cards.append(
            {
                "schema_version": SCHEMA_VERSION,
                "generated_at": generated_at,
                "rollup": {
                    "as_of": meta.get("as_of"),
                    "built_at": meta.get("built_at"),
                    "model_id": meta.get("model_id"),
                    "model_revision": meta.get("model_revision"),
                },
                "vendor": {
                    "id": str(vendor_id),
                    "name": str(row.get("vendor_name") or vendor_id),
                    "website": row.get("vendor_website"),
                },
                "status": "ok" if n_reviews > 0 else "no_attributable_reviews",
                "n_reviews": n_reviews,
                "n_brands": _int(row.get("n_brands")),
                "rank": {"position": _rank(row), "of": ranked},
                "metrics": {spec.key: _metric(row, spec, medians[spec.key]) for spec in METRICS},
                "brands": _brands(row),
                "monthly": _monthly(db, vendor_id),
                "switches": _switches(db, vendor_id),
                "excerpts": _excerpts(db, vendor_id, meta),
            }
        )
    return cards
