"""Rebuild the roll-up tables (per brand, per vendor, per vendor-month and -quarter, vendor switches).

SQLite does the heavy work (queries in reputation/rollups/views.py): one pass over the in-scope reviews,
joined to their sentiment (one model revision), sums them per (brand, day); a second pass
applies the attribution and recency weights (both depend on the day only) and yields weighted
sufficient statistics per (brand, vendor, month). Python merges those few thousand groups into
the published metrics (reputation/rollups/statistics.py), so review rows never enter Python.

Rules (details in attribution.py and syndication.py beside this file):

* Copies of a syndicated review count once (``n_duplicates``); non-English reviews are counted
  (``n_non_english``) but not scored into means.
* Customer-service (CS) metrics use reviews with ``cs_relevance >= CS_RELEVANCE_THRESHOLD`` and a
  ``cs_score``.
* ``shrunk_score`` is the Bayesian average of the CS score toward the pooled all-vendor (for
  brands: all-brand) CS mean with ``prior_strength`` pseudo-reviews (default 20, as review sites
  do); the effective n of the CS score is the n. Its 95% interval and P(best) come from one Beta
  distribution per vendor (statistics.shrunk_distribution, statistics.rank_probabilities, fixed seed).
* ``rank`` orders vendors by the shrunk score, strictly (ties broken by vendor id), among vendors
  with at least ``MIN_RANK_N`` CS reviews; the others get rank NULL and ``rank_status`` 'not
  enough evidence'. ``verdict_vs_next`` compares each ranked vendor with the next one: 'ahead'
  when its shrunk-score interval lies wholly above the next one's (they do not overlap), else
  'tied' (cannot be told apart on this evidence); ``p_ahead_next`` gives P(A > B) beside it.
  Non-overlap is the rule because a reader can check it on the chart; it is stricter than
  P(A > B) >= 0.95, so "ahead" is never claimed on a coin-flip.
* Intervals are bounded (statistics.bounded_mean_interval): they stay within -1..1 at any n.
* ``vendor_quarterly``: per calendar quarter, CS score and the non-service ("other") score of the
  same reviews with intervals; ``enough`` = 1 when n_cs >= ``MIN_PERIOD_N``.
* ``recency_score`` weights CS reviews by 0.5 ** (age / half_life_days), age counted back from
  ``as_of``; undated reviews have no age and are left out of it.
* Brand balance: a vendor's metric is a weighted mean over its brands where brand b weighs
  sqrt(n_b) (each review 1/sqrt(n_b)), so a client with 10,000 reviews outweighs one with 100 by
  10x, not 100x, and cannot hide the others. ``brands`` (JSON) lists each brand's n and weight.

Everything runs in one write transaction: readers see the old tables or the new ones, never a
half-built mix, and a second run on the same data writes the same rows (only ``built_at`` moves).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils

from reputation.rollups import views
from reputation.rollups.attribution import (
    CHANNEL_RULES_KEY,
    CHANNELS,
    SWITCH_MAX_GAP_DAYS,
    SWITCH_WINDOW_DAYS,
    UNDATED,
    Engagement,
    Switch,
    attribution_periods,
    channel_brands,
    find_switches,
    load_engagements,
    multi_vendor_brands,
    scan_channels,
    vendor_brands,
)
from reputation.rollups.statistics import (
    MIN_PERIOD_N,
    MIN_RANK_N,
    RANK_DRAWS,
    RANK_SEED,
    Group,
    Moments,
    ScoreDistribution,
    bayesian_average,
    brand_weights,
    merge_balanced,
    rank_probabilities,
    shrunk_distribution,
)
from reputation.rollups.syndication import (
    Duplicate,
    find_duplicates_saved,
    frozen_duplicates,
)
from reputation.rollups.views import (
    AGGREGATE_SQL,
    DAILY_SQL,
    REVIEW_MARKS_SQL,
    SCOPE_SQL,
    TABLES,
    WINDOW_SQL,
    create_tables,
)
from storage.database import transaction, utcnow
from storage.errors import NotFoundError, ReputationError

CS_RELEVANCE_THRESHOLD = 0.5
DEFAULT_PRIOR_STRENGTH = 20.0
DEFAULT_HALF_LIFE_DAYS = 180.0
RANKED = "ranked"
NOT_ENOUGH = "not enough evidence"
VERDICT_RULE = "ahead when the shrunk-score 95% intervals do not overlap, else tied"


class RollupError(ReputationError):
    """The roll-ups cannot be built from what is in the database (or the options are wrong)."""


@dataclass(frozen=True)
class RollupSummary:
    as_of: date
    model_id: str
    model_revision: str
    n_reviews: int  # in scope, copies excluded
    n_duplicates: int
    n_non_english: int
    n_undated: int
    n_brands: int
    n_vendors: int
    n_vendors_ranked: int
    n_switches: int
    seconds: float


def metric_values(group: Group, prior: float | None, prior_strength: float) -> dict[str, Any]:
    """The published columns of one slice; every score NULL when nothing backs it."""
    m = group.moments
    scored, cs, recent = m["scored"], m["cs"], m["recent"]
    values: dict[str, Any] = {
        "n_reviews": _count(group.counts["reviews"]),
        "n_scored": _count(scored.n),
        "n_cs": _count(cs.n),
    }
    for column, moments, interval in (
        ("mean_score", scored, scored.interval()),
        ("cs_score", cs, cs.interval()),
        ("share_positive", m["positive"], m["positive"].share_interval()),
        ("share_negative", m["negative"], m["negative"].share_interval()),
    ):
        values[column] = moments.mean
        values[f"{column}_low"], values[f"{column}_high"] = interval
    values["shrunk_score"] = bayesian_average(cs.mean, cs.n_eff, prior, prior_strength)
    dist = shrunk_distribution(values["shrunk_score"], cs.n_eff, cs.dispersion, prior_strength)
    values["shrunk_score_low"], values["shrunk_score_high"] = dist.interval() if dist else (None, None)
    values["recency_score"] = recent.mean
    values["recency_score_low"], values["recency_score_high"] = recent.interval()
    values["n_eff_scored"] = scored.n_eff if scored.n else None
    values["n_eff_cs"] = cs.n_eff if cs.n else None
    values["n_undated"] = _count(group.counts["undated"])
    values["n_relative_date"] = _count(group.counts["relative"])
    values["n_non_english"] = _count(group.counts["non_english"])
    values["n_duplicates"] = _count(group.counts["duplicates"])
    return values


def _count(value: float) -> int:
    """Counts summed from attribution weights are whole numbers up to float rounding."""
    return round(value)


def choose_model(db: sqlite_utils.Database, model_id: str | None) -> tuple[str, str]:
    """The (model id, revision) with the most scores; ``model_id`` may be ``ID`` or ``ID@REVISION``."""
    where, params = "", []
    if model_id:
        name, _, revision = model_id.partition("@")
        where = "WHERE model_id = ?" + (" AND model_revision = ?" if revision else "")
        params = [name, revision] if revision else [name]
    row = db.execute(
        f"SELECT model_id, model_revision FROM review_sentiment {where} "
        "GROUP BY model_id, model_revision ORDER BY count(*) DESC, model_id, model_revision LIMIT 1",
        params,
    ).fetchone()
    if row:
        return str(row[0]), str(row[1])
    if model_id:
        known = [
            f"{mid}@{rev}"
            for mid, rev in db.execute("SELECT DISTINCT model_id, model_revision FROM review_sentiment")
        ]
        raise NotFoundError(f"no sentiment scores from model {model_id!r}; scored models: {known or 'none'}")
    raise RollupError("no review has a sentiment score yet; run `reputation score` first")


@dataclass
class Aggregates:
    """Pass 2's weighted groups: per brand, per vendor and brand, per vendor-month and brand."""

    brands: dict[str, Group] = field(default_factory=lambda: defaultdict(Group))
    vendor_parts: dict[str, dict[str, Group]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Group))
    )
    month_parts: dict[tuple[str, str], dict[str, Group]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Group))
    )
    quarter_parts: dict[tuple[str, str], dict[str, Group]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Group))
    )


@dataclass
class RollupRows:
    """Every row the rebuild writes, by table, plus the pooled priors recorded in rollup_meta."""

    brands: list[dict[str, Any]]
    vendors: list[dict[str, Any]]
    monthly: list[dict[str, Any]]
    quarterly: list[dict[str, Any]]
    switches: list[dict[str, Any]]
    meta: dict[str, str]


def build_rollups(
    db: sqlite_utils.Database,
    *,
    as_of: date | None = None,
    model_id: str | None = None,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    prior_strength: float = DEFAULT_PRIOR_STRENGTH,
) -> RollupSummary:
    """Rebuild every roll-up table as it would have been computed on ``as_of`` (default today, UTC)."""
    started = time.perf_counter()
    as_of = as_of or datetime.now(UTC).date()
    params = _query_params(as_of, half_life_days, prior_strength)
    _ensure_pow(db)
    with transaction(db):
        engagements = _load(db, as_of, model_id, params)
        aggregates = _aggregate(db, params)
        # switch rows read pass 1's daily sums, so they are taken before the temp table goes
        switch_rows = [_switch_row(db, s) for s in find_switches(engagements, SWITCH_MAX_GAP_DAYS)]
        db.conn.execute("DROP TABLE temp.rollup_daily")
        rows = _rollup_rows(db, aggregates, engagements, switch_rows, params, prior_strength)
        _write(db, rows)
    views.ensure_search(db)
    return _summary(as_of, params, aggregates, rows, time.perf_counter() - started)


def _query_params(as_of: date, half_life_days: float, prior_strength: float) -> dict[str, Any]:
    """The options checked, as the named parameters of the roll-up queries."""
    if not half_life_days > 0:
        raise RollupError(f"half-life must be a positive number of days, got {half_life_days}")
    if not prior_strength >= 0:
        raise RollupError(f"prior strength must be zero or more pseudo-reviews, got {prior_strength}")
    return {
        "as_of": as_of.isoformat(),
        "next_day": (as_of + timedelta(days=1)).isoformat(),
        "half_life": float(half_life_days),
        "cs_threshold": CS_RELEVANCE_THRESHOLD,
    }


def _load(
    db: sqlite_utils.Database, as_of: date, model_id: str | None, params: dict[str, Any]
) -> list[Engagement]:
    """Check there is work, pick the model, and lay down the inputs of the two passes.

    Re-creates the roll-up tables, fills review_duplicates and attribution_periods, and builds
    pass 1's daily sums in ``temp.rollup_daily``; returns the engagements known on ``as_of``.
    """
    _check_scope(db, as_of, params)
    params["model_id"], params["model_revision"] = choose_model(db, model_id)
    engagements = load_engagements(db, as_of)
    create_tables(db)
    duplicates = _find_copies(db, params)
    found = {d.review_id for d in duplicates}
    duplicates += [d for d in frozen_duplicates(db, SCOPE_SQL, params) if d.review_id not in found]
    db.conn.executemany(
        "INSERT INTO review_duplicates VALUES (?, ?, ?)",
        [(d.review_id, d.original_id, d.similarity) for d in duplicates],
    )
    channel_keys = _detect_channels(db, engagements, params)
    db.conn.executemany(
        "INSERT INTO attribution_periods (brand_id, vendor_id, channels, start_date, end_date, weight, basis) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (p.brand_id, p.vendor_id, p.channels, p.start_date, p.end_date, p.weight, p.basis)
            for p in attribution_periods(engagements, as_of, channel_keys)
        ],
    )
    db.conn.execute("DROP TABLE IF EXISTS temp.rollup_daily")
    db.conn.execute("DROP TABLE IF EXISTS temp.rollup_review_marks")
    for statement in REVIEW_MARKS_SQL:
        db.conn.execute(statement)
    db.conn.execute("DROP TABLE temp.rollup_channel_scope")
    db.conn.execute(f"CREATE TEMP TABLE rollup_daily AS {DAILY_SQL}", params)
    db.conn.execute("DROP TABLE temp.rollup_review_marks")
    return engagements


def _find_copies(db: sqlite_utils.Database, params: dict[str, Any]) -> list[Duplicate]:
    """Syndicated copies among the in-scope reviews, comparing texts only in new or changed groups.

    Each (author, brand) group's result is saved in review_copy_groups with its fingerprint;
    groups with no candidates on this ``as_of`` (gone, or not yet in scope) lose their saved row.
    """
    saved = db.conn.execute(
        "SELECT author_hash, brand_id, group_key, copies FROM review_copy_groups ORDER BY author_hash, brand_id"
    )
    search = find_duplicates_saved(db, SCOPE_SQL, params, saved)
    db.conn.executemany("DELETE FROM review_copy_groups WHERE author_hash = ? AND brand_id = ?", search.stale)
    db.conn.executemany(
        "INSERT INTO review_copy_groups VALUES (?, ?, ?, ?) ON CONFLICT (author_hash, brand_id) DO UPDATE "
        "SET group_key = excluded.group_key, copies = excluded.copies",
        search.fresh,
    )
    return search.duplicates


def _detect_channels(
    db: sqlite_utils.Database, engagements: list[Engagement], params: dict[str, Any]
) -> dict[str, set[str]]:
    """Fill review_channels for brands with a channel-scoped engagement; their channel keys by brand.

    Only those brands' reviews are read: elsewhere a channel cannot change the attribution. The
    same rows stay in ``temp.rollup_channel_scope``, keyed by the reviews rowid, for the daily
    pass's marks (REVIEW_MARKS_SQL); empty when no brand is channel-scoped.
    """
    db.conn.execute("DROP TABLE IF EXISTS temp.rollup_channel_scope")
    db.conn.execute(
        "CREATE TEMP TABLE rollup_channel_scope "
        "(rid INTEGER PRIMARY KEY, review_id TEXT NOT NULL, brand_id TEXT NOT NULL, channels TEXT, keywords TEXT)"
    )
    brands = sorted(channel_brands(engagements))
    keys: dict[str, set[str]] = defaultdict(set)
    if not brands:
        return keys
    query = {"next_day": params["next_day"], "brands": json.dumps(brands), "rules": CHANNEL_RULES_KEY}
    # The in-scope reviews of those brands with their saved scans, in SQL. A saved scan is right
    # while its rules key and the review's rowid are current (triggers on reviews delete a
    # review's scan when its text or id changes), so only reviews without one are read and
    # scanned in Python.
    db.conn.execute(
        "INSERT INTO temp.rollup_channel_scope "
        "SELECT r.rowid, r.id, r.brand_id, c.channels, c.keywords FROM reviews r "
        "LEFT JOIN review_channel_scans c ON c.review_id = r.id AND c.review_rowid = r.rowid AND c.scan_key = :rules "
        f"WHERE {SCOPE_SQL} AND r.brand_id IN (SELECT value FROM json_each(:brands))",
        query,
    )
    fresh = scan_channels(
        db.conn.execute(
            "SELECT s.rid, s.review_id, r.title, r.body FROM temp.rollup_channel_scope s "
            "CROSS JOIN reviews r ON r.rowid = s.rid WHERE s.channels IS NULL"
        )
    )
    db.conn.executemany(
        "UPDATE temp.rollup_channel_scope SET channels = ?, keywords = ? WHERE rid = ?",
        [(channels, words, rid) for rid, _review_id, channels, words in fresh],
    )
    db.conn.executemany(
        "INSERT INTO review_channel_scans VALUES (?, ?, ?, ?, ?) ON CONFLICT (review_id) DO UPDATE "
        "SET review_rowid = excluded.review_rowid, scan_key = excluded.scan_key, channels = excluded.channels, "
        "keywords = excluded.keywords",
        [(review_id, rid, CHANNEL_RULES_KEY, channels, words) for rid, review_id, channels, words in fresh],
    )
    db.conn.execute(
        "INSERT INTO review_channels SELECT review_id, brand_id, channels, keywords FROM temp.rollup_channel_scope"
    )
    for brand_id, channels in db.conn.execute(
        "SELECT DISTINCT brand_id, channels FROM temp.rollup_channel_scope"
    ):
        keys[brand_id].add(channels)
    return keys


def _aggregate(db: sqlite_utils.Database, params: dict[str, Any]) -> Aggregates:
    """Pass 2: the weighted (brand, vendor, month) sums merged into groups per published slice."""
    cursor = db.conn.execute(AGGREGATE_SQL, params)
    names = [c[0] for c in cursor.description]
    out = Aggregates()
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        out.brands[row["brand_id"]].add(Group.from_row(row, brand_level=True))
        if row["vendor_id"] is not None:
            part = Group.from_row(row, brand_level=False)
            out.vendor_parts[row["vendor_id"]][row["brand_id"]].add(part)
            if row["month"] is not None:
                out.month_parts[(row["vendor_id"], row["month"])][row["brand_id"]].add(part)
                out.quarter_parts[(row["vendor_id"], _quarter(row["month"]))][row["brand_id"]].add(part)
    return out


def _rollup_rows(
    db: sqlite_utils.Database,
    aggregates: Aggregates,
    engagements: list[Engagement],
    switch_rows: list[dict[str, Any]],
    params: dict[str, Any],
    prior_strength: float,
) -> RollupRows:
    """The published rows: metrics with intervals, shrinkage toward the pooled priors, ranks."""
    served = vendor_brands(engagements)
    shared = multi_vendor_brands(engagements)
    brand_prior = _pooled_cs(aggregates.brands.values())
    vendor_prior = _pooled_cs(g for parts in aggregates.vendor_parts.values() for g in parts.values())
    brand_rows = _brand_rows(
        db,
        aggregates.brands,
        engagements_by_brand=_count_vendors(served),
        prior=brand_prior,
        k=prior_strength,
    )
    vendor_rows = _vendor_rows(
        db, aggregates.vendor_parts, aggregates.brands, served, shared, prior=vendor_prior, k=prior_strength
    )
    monthly_rows = [
        {"vendor_id": vendor, "month": month, **_monthly_values(merge_balanced(parts.values()))}
        for (vendor, month), parts in sorted(aggregates.month_parts.items())
    ]
    quarterly_rows = [
        {
            "vendor_id": vendor,
            "quarter": quarter,
            **_quarterly_values(quarter, merge_balanced(parts.values())),
        }
        for (vendor, quarter), parts in sorted(aggregates.quarter_parts.items())
    ]
    meta = {
        "as_of": params["as_of"],
        "model_id": params["model_id"],
        "model_revision": params["model_revision"],
        "built_at": utcnow(),
        "prior_strength": repr(float(prior_strength)),
        "half_life_days": repr(params["half_life"]),
        "cs_relevance_threshold": repr(CS_RELEVANCE_THRESHOLD),
        "prior_cs_score_vendors": repr(vendor_prior),
        "prior_cs_score_brands": repr(brand_prior),
        "brand_balance": "sqrt",
        "switch_window_days": str(SWITCH_WINDOW_DAYS),
        "switch_max_gap_days": str(SWITCH_MAX_GAP_DAYS),
        "undated_period_key": UNDATED,
        "min_rank_n": str(MIN_RANK_N),
        "min_period_n": str(MIN_PERIOD_N),
        "rank_verdict_rule": VERDICT_RULE,
        "p_best_draws": str(RANK_DRAWS),
        "p_best_seed": str(RANK_SEED),
        "channel_rule": "a review revealing one channel that an engagement's scope names goes to that "
        f"engagement; channels: {', '.join(CHANNELS)} (see reputation/rollups/attribution.py)",
    }
    return RollupRows(brand_rows, vendor_rows, monthly_rows, quarterly_rows, switch_rows, meta)


def _write(db: sqlite_utils.Database, rows: RollupRows) -> None:
    """Insert every table's rows and re-create the views (inside the rebuild's transaction)."""
    for table, table_rows in (
        ("brand_reputation", rows.brands),
        ("vendor_reputation", rows.vendors),
        ("vendor_monthly", rows.monthly),
        ("vendor_quarterly", rows.quarterly),
        ("vendor_switches", rows.switches),
        ("rollup_meta", [{"key": k, "value": v} for k, v in rows.meta.items()]),
    ):
        _insert(db, table, table_rows)
    views.create_views(db)


def _summary(
    as_of: date, params: dict[str, Any], aggregates: Aggregates, rows: RollupRows, seconds: float
) -> RollupSummary:
    totals = Group()
    for group in aggregates.brands.values():
        totals.add(group)
    return RollupSummary(
        as_of=as_of,
        model_id=params["model_id"],
        model_revision=params["model_revision"],
        n_reviews=_count(totals.counts["reviews"]),
        n_duplicates=_count(totals.counts["duplicates"]),
        n_non_english=_count(totals.counts["non_english"]),
        n_undated=_count(totals.counts["undated"]),
        n_brands=len(rows.brands),
        n_vendors=len(rows.vendors),
        n_vendors_ranked=sum(1 for r in rows.vendors if r["rank"] is not None),
        n_switches=len(rows.switches),
        seconds=seconds,
    )


def _ensure_pow(db: sqlite_utils.Database) -> None:
    """SQLite builds without the math functions get Python's pow (same numbers, a little slower)."""
    try:
        db.conn.execute("SELECT pow(0.5, 1.0)").fetchone()
    except Exception:
        db.conn.create_function("pow", 2, math.pow, deterministic=True)


def _check_scope(db: sqlite_utils.Database, as_of: date, params: dict[str, Any]) -> None:
    """Fail early with a useful message; the full-table min() only runs when there is nothing to do."""
    if db.execute(f"SELECT 1 FROM reviews r WHERE {SCOPE_SQL} LIMIT 1", params).fetchone() is not None:
        return
    first = db.execute("SELECT min(first_seen) FROM reviews").fetchone()[0]
    if first is None:
        raise RollupError("the database has no reviews yet; run `reputation crawl` first")
    raise RollupError(f"no reviews on or before {as_of.isoformat()} (the first was seen on {first[:10]})")


def _pooled_cs(groups: Iterable[Group]) -> float | None:
    """Mean CS score over every review once (attribution weights of one review add up to 1)."""
    pooled = Moments()
    for group in groups:
        pooled.add(group.moments["cs"])
    return pooled.mean


def _count_vendors(served: dict[str, set[str]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for brand_ids in served.values():
        for brand_id in brand_ids:
            counts[brand_id] += 1
    return counts


def _brand_rows(
    db: sqlite_utils.Database,
    groups: dict[str, Group],
    *,
    engagements_by_brand: dict[str, int],
    prior: float | None,
    k: float,
) -> list[dict[str, Any]]:
    rows = []
    for brand_id, name in db.execute("SELECT id, name FROM brands ORDER BY id"):
        values = metric_values(groups.get(brand_id, Group()), prior, k)
        rows.append(
            {
                "brand_id": brand_id,
                "brand_name": name,
                **values,
                "n_vendors": engagements_by_brand.get(brand_id, 0),
            }
        )
    return rows


def _vendor_rows(
    db: sqlite_utils.Database,
    parts_by_vendor: dict[str, dict[str, Group]],
    brand_groups: dict[str, Group],
    served: dict[str, set[str]],
    shared: set[str],
    *,
    prior: float | None,
    k: float,
) -> list[dict[str, Any]]:
    brand_names = dict(db.execute("SELECT id, name FROM brands").fetchall())
    rows = []
    dists: dict[str, ScoreDistribution | None] = {}
    for vendor_id, name in db.execute("SELECT id, name FROM vendors ORDER BY id"):
        parts = parts_by_vendor.get(vendor_id, {})
        merged = merge_balanced(parts.values())
        values = metric_values(merged, prior, k)
        cs = merged.moments["cs"]
        dists[vendor_id] = shrunk_distribution(values["shrunk_score"], cs.n_eff, cs.dispersion, k)
        # undated reviews of brands with several vendors could not be attributed to anyone
        values["n_undated"] = _count(
            sum(
                brand_groups[b].counts["undated"]
                for b in served.get(vendor_id, set()) & shared
                if b in brand_groups
            )
        )
        weights = brand_weights(parts)
        listing = [
            {
                "brand_id": b,
                "brand_name": brand_names.get(b, b),
                "n": _count(parts[b].counts["reviews"]) if b in parts else 0,
                "n_cs": _count(parts[b].moments["cs"].n) if b in parts else 0,
                "weight": round(weights.get(b, 0.0), 4),
            }
            for b in served.get(vendor_id, set()) | set(parts)
        ]
        listing.sort(key=lambda item: (-item["weight"], -item["n"], item["brand_id"]))
        rows.append(
            {
                "vendor_id": vendor_id,
                "vendor_name": name,
                "rank": None,
                "rank_status": NOT_ENOUGH,
                "p_best": None,
                "p_ahead_next": None,
                "verdict_vs_next": None,
                **values,
                "n_brands": sum(1 for item in listing if item["n"] > 0),
                "brands": json.dumps(listing, ensure_ascii=False),
                "first_review_date": merged.first_day,
                "last_review_date": merged.last_day,
            }
        )
    _rank(rows, dists)
    return rows


def _rank(rows: list[dict[str, Any]], dists: dict[str, ScoreDistribution | None]) -> None:
    """Strict rank by shrunk score among vendors with enough evidence; P(best) and adjacent verdicts."""
    ranked = sorted(
        (r for r in rows if dists[r["vendor_id"]] is not None and r["n_cs"] >= MIN_RANK_N),
        key=lambda r: (-r["shrunk_score"], r["vendor_id"]),
    )
    best, ahead = rank_probabilities([d for r in ranked if (d := dists[r["vendor_id"]]) is not None])
    for position, row in enumerate(ranked, start=1):
        row["rank"], row["rank_status"], row["p_best"] = position, RANKED, best[position - 1]
    for upper, lower, p_ahead in zip(ranked, ranked[1:], ahead, strict=False):
        upper["p_ahead_next"] = p_ahead
        separate = upper["shrunk_score_low"] > lower["shrunk_score_high"]
        upper["verdict_vs_next"] = "ahead" if separate else "tied"


def _quarter(month: str) -> str:
    """'2024-05' -> '2024-Q2'."""
    return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"


def _quarterly_values(quarter: str, group: Group) -> dict[str, Any]:
    """One quarter of a vendor: CS and non-service scores with intervals, and whether n suffices."""
    year, q = int(quarter[:4]), int(quarter[-1])
    start = date(year, 3 * q - 2, 1)
    end = (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)
    cs, other = group.moments["cs"], group.moments["other"]
    values: dict[str, Any] = {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "n_reviews": _count(group.counts["reviews"]),
        "n_cs": _count(cs.n),
        "n_other": _count(other.n),
    }
    for column, moments in (("cs_score", cs), ("other_score", other)):
        values[column] = moments.mean
        values[f"{column}_low"], values[f"{column}_high"] = moments.interval()
    values["enough"] = int(values["n_cs"] >= MIN_PERIOD_N)
    return values


def _monthly_values(group: Group) -> dict[str, Any]:
    values = metric_values(group, None, 0.0)
    keep = ("n_reviews", "n_scored", "n_cs", "mean_score", "cs_score", "share_positive", "share_negative")
    out: dict[str, Any] = {}
    for column in keep:
        out[column] = values[column]
        if not column.startswith("n_"):
            out[f"{column}_low"], out[f"{column}_high"] = values[f"{column}_low"], values[f"{column}_high"]
    out["n_eff_cs"] = values["n_eff_cs"]
    return out


def _switch_row(db: sqlite_utils.Database, switch: Switch) -> dict[str, Any]:
    """CS sentiment before vs after a vendor change, against the brand's non-CS sentiment.

    Reads pass 1's daily sums (``temp.rollup_daily``), so call it while that table exists.
    """
    window = timedelta(days=SWITCH_WINDOW_DAYS)
    before = (switch.from_end - window + timedelta(days=1), switch.from_end)
    after = (switch.switch_date, switch.switch_date + window - timedelta(days=1))
    sides = {}
    for side, (lo, hi) in (("before", before), ("after", after)):
        query = {
            "brand_id": switch.brand_id,
            "lo": lo.isoformat(),
            "hi_next": (hi + timedelta(days=1)).isoformat(),
        }
        n_cs, cs, n_other, other = db.execute(WINDOW_SQL, query).fetchone()
        sides[side] = (int(n_cs or 0), cs, int(n_other or 0), other)
    (n_cs_b, cs_b, n_o_b, o_b), (n_cs_a, cs_a, n_o_a, o_a) = sides["before"], sides["after"]
    cs_change = cs_a - cs_b if cs_a is not None and cs_b is not None else None
    other_change = o_a - o_b if o_a is not None and o_b is not None else None
    return {
        "brand_id": switch.brand_id,
        "from_vendor_id": switch.from_vendor_id,
        "to_vendor_id": switch.to_vendor_id,
        "from_end_date": switch.from_end.isoformat(),
        "switch_date": switch.switch_date.isoformat(),
        "window_days": SWITCH_WINDOW_DAYS,
        "n_cs_before": n_cs_b,
        "cs_before": cs_b,
        "n_cs_after": n_cs_a,
        "cs_after": cs_a,
        "n_other_before": n_o_b,
        "other_before": o_b,
        "n_other_after": n_o_a,
        "other_after": o_a,
        "cs_change": cs_change,
        "other_change": other_change,
        "did": cs_change - other_change if cs_change is not None and other_change is not None else None,
    }


def _insert(db: sqlite_utils.Database, table: str, rows: list[dict[str, Any]]) -> None:
    columns = [name for name, _ in TABLES[table]]
    placeholders = ", ".join("?" for _ in columns)
    db.conn.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
        [tuple(row[c] for c in columns) for row in rows],
    )
