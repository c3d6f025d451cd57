"""The SQL side of the roll-ups: table definitions, convenience views and full-text search.

Tables are dropped and re-created on every ``reputation rollup`` (inside its one transaction),
so their definitions live here rather than in the numbered migrations: they hold derived data
only and can always be rebuilt from reviews, review_sentiment and engagements. Column meanings
are documented in reputation/rollups/datasette-metadata.yaml.

``review_channels`` holds the channels each review reveals (the rule is in attribution.py), for
brands with a channel-scoped engagement; pass 1 groups by it and ``attribution_periods`` carries a
row set per channel key, so the channel rule costs no extra pass. ``vendor_review_attribution``
shows, per review, the channels found, the words that showed them and the basis of its weight.
``review_channel_scans`` and ``review_copy_groups`` are the tables kept from one rebuild to the
next: saved channel scans and copy searches, which storage's migration 13 creates together with
the triggers on reviews that delete a saved result when a review it rests on changes.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from reputation.rollups.attribution import UNDATED
from storage.errors import ReputationError

# Reviews in scope on as_of: first seen by then and not published after it.
SCOPE_SQL = "r.first_seen < :next_day AND (r.published_at IS NULL OR r.published_at < :next_day)"

# Each in-scope review once, with flat per-review values, computed once per review rather than
# once per aggregate that uses them: ``LIMIT -1`` (no limit) keeps SQLite from flattening the
# subquery into the grouping query, so it runs as a co-routine whose rows go straight into
# GROUP BY's sorter (MATERIALIZED would also write all of them to a temporary table first, a
# second copy of every review's values). Groups are summed in the scan's (rowid) order either
# way, so the sums are the same to the last bit. ``sc``: the signed score
# of a scored review, ``cx``: its CS score when CS-relevant, ``ox``: the score of its sentences
# that are not about customer service (the switch baseline, free of the vendor's effect);
# NULL otherwise. Language: the sentiment step's detection,
# else the crawler's; unknown counts as English. Whether a review is a copy and the channels it
# revealed come from temp.rollup_review_marks (REVIEW_MARKS_SQL), keyed by the reviews rowid: one
# integer probe per review, where looking up review_duplicates and review_channels by the text id
# would be two text probes (a large part of this pass at a million reviews). Only copies and
# reviews that revealed a channel have a row; the others are neither. The channels come from
# temp.rollup_channel_scope (build._detect_channels), review_channels' rows with their rowids.
REVIEW_MARKS_SQL = (
    "CREATE TEMP TABLE rollup_review_marks (rid INTEGER PRIMARY KEY, dup INTEGER NOT NULL, channels TEXT NOT NULL)",
    # CROSS JOIN fixes the loop order: one probe of reviews per marked review, not a scan of every review
    "INSERT INTO temp.rollup_review_marks (rid, dup, channels) "
    "SELECT rid, max(dup), max(channels) FROM ("
    " SELECT r.rowid AS rid, 1 AS dup, '' AS channels FROM review_duplicates d CROSS JOIN reviews r ON r.id = d.review_id"
    " UNION ALL"
    " SELECT rid, 0, channels FROM temp.rollup_channel_scope WHERE channels <> ''"
    ") GROUP BY rid",
)
_SCOPED_SQL = f"""
    WITH scoped AS (
        SELECT brand_id, day, channels, relative, dup, ok AND NOT en AS non_en, label,
               CASE WHEN en THEN score END AS sc,
               CASE WHEN en AND cs_relevant THEN cs_score END AS cx,
               CASE WHEN en THEN other_score END AS ox
        FROM (
            SELECT r.brand_id,
                   CASE WHEN r.date_precision <> 'missing' THEN substr(r.published_at, 1, 10) END AS day,
                   COALESCE(m.channels, '') AS channels,
                   r.date_precision = 'relative' AS relative,
                   m.dup IS 1 AS dup, m.dup IS NOT 1 AS ok,
                   m.dup IS NOT 1 AND COALESCE(s.language, r.language, 'en') LIKE 'en%' AS en,
                   s.label, s.score, s.cs_relevance >= :cs_threshold AS cs_relevant, s.cs_score,
                   s.other_score
            FROM reviews r
            LEFT JOIN temp.rollup_review_marks m ON m.rid = r.rowid
            LEFT JOIN review_sentiment s ON s.review_id = r.id
                 AND s.model_id = :model_id AND s.model_revision = :model_revision
            WHERE {SCOPE_SQL} {{extra}}
        )
        LIMIT -1
    )
"""

# Pass 1 (the only one over every review): unweighted sums per (brand, day). Attribution weights
# and recency weights depend on the day only, so pass 2 can apply them to these sums, and the
# switch windows (WINDOW_SQL) are sums of whole days. ``o_*``: the non-CS sentences' scores.
# ``channels``: the channels the review revealed (review_channels), which the attribution of
# brands with channel-scoped engagements depends on as well.
DAILY_SQL = (
    _SCOPED_SQL.format(extra="")
    + """
    SELECT brand_id, day, channels,
           sum(NOT dup) AS n_reviews, sum(dup) AS n_duplicates, sum(non_en) AS n_non_english,
           sum(NOT dup AND relative) AS n_relative,
           count(sc) AS s_n, total(sc) AS s_sum, total(sc * sc) AS s_sq,
           sum(sc IS NOT NULL AND label = 'positive') AS n_pos,
           sum(sc IS NOT NULL AND label = 'negative') AS n_neg,
           count(cx) AS c_n, total(cx) AS c_sum, total(cx * cx) AS c_sq,
           count(ox) AS o_n, total(ox) AS o_sum, total(ox * ox) AS o_sq
    FROM scoped
    GROUP BY brand_id, day, channels
"""
)

# Pass 2: weighted sufficient statistics per (brand, vendor, month) from the daily sums. ``a`` is
# the attribution weight (1 when the review counts for no vendor), ``rw`` the recency weight.
# ``*_ww`` are sums of squared vendor weights, ``*_wwb`` the same for the brand, where every
# review weighs 1; ``*_a`` are counts summed with attribution weights (see Group.from_row).
AGGREGATE_SQL = f"""
    WITH attributed AS (
        SELECT d.*, substr(d.day, 1, 7) AS month, p.vendor_id, COALESCE(p.weight, 1.0) AS a,
               pow(0.5, (julianday(:as_of) - julianday(d.day)) / :half_life) AS rw
        FROM temp.rollup_daily d
        LEFT JOIN attribution_periods p ON p.brand_id = d.brand_id
             AND COALESCE(d.day, '{UNDATED}') BETWEEN p.start_date AND p.end_date
             AND p.channels = d.channels
    )
    SELECT brand_id, vendor_id, month,
           sum(n_reviews) AS n_reviews, total(a * n_reviews) AS w_reviews,
           sum(n_duplicates) AS n_duplicates, total(a * n_duplicates) AS w_duplicates,
           sum(n_non_english) AS n_non_english, total(a * n_non_english) AS w_non_english,
           sum(n_relative) AS n_relative, total(a * n_relative) AS w_relative,
           total((day IS NULL) * n_reviews) AS n_undated, total((day IS NULL) * a * n_reviews) AS w_undated,
           sum(s_n) AS s_n, total(a * s_n) AS s_w, total(a * s_sum) AS s_wx, total(a * s_sq) AS s_wxx,
           total(a * a * s_n) AS s_ww, total(a * n_pos) AS p_wx, total(a * n_neg) AS q_wx,
           sum(c_n) AS c_n, total(a * c_n) AS c_w, total(a * c_sum) AS c_wx, total(a * c_sq) AS c_wxx,
           total(a * a * c_n) AS c_ww,
           total((rw IS NOT NULL) * c_n) AS r_n, total((rw IS NOT NULL) * a * c_n) AS r_a,
           total(a * rw * c_n) AS r_w, total(a * rw * c_sum) AS r_wx, total(a * rw * c_sq) AS r_wxx,
           total(a * a * rw * rw * c_n) AS r_ww, total(a * rw * rw * c_n) AS r_wwb,
           sum(o_n) AS o_n, total(a * o_n) AS o_w, total(a * o_sum) AS o_wx, total(a * o_sq) AS o_wxx,
           total(a * a * o_n) AS o_ww,
           min(day) AS first_day, max(day) AS last_day
    FROM attributed
    GROUP BY brand_id, vendor_id, month
    ORDER BY brand_id, vendor_id, month
"""

# One brand's CS and non-CS sentiment over a date range (vendor switches), from pass 1's daily
# sums: dated reviews only; a date range never needs the review rows again.
WINDOW_SQL = """
    SELECT total(c_n), CASE WHEN total(c_n) > 0 THEN total(c_sum) / total(c_n) END,
           total(o_n), CASE WHEN total(o_n) > 0 THEN total(o_sum) / total(o_n) END
    FROM temp.rollup_daily
    WHERE brand_id = :brand_id AND day >= :lo AND day < :hi_next
"""

_METRICS: list[tuple[str, str]] = [
    ("n_reviews", "INTEGER NOT NULL"),
    ("n_scored", "INTEGER NOT NULL"),
    ("n_cs", "INTEGER NOT NULL"),
    ("mean_score", "REAL"),
    ("mean_score_low", "REAL"),
    ("mean_score_high", "REAL"),
    ("cs_score", "REAL"),
    ("cs_score_low", "REAL"),
    ("cs_score_high", "REAL"),
    ("share_positive", "REAL"),
    ("share_positive_low", "REAL"),
    ("share_positive_high", "REAL"),
    ("share_negative", "REAL"),
    ("share_negative_low", "REAL"),
    ("share_negative_high", "REAL"),
    ("shrunk_score", "REAL"),
    ("shrunk_score_low", "REAL"),
    ("shrunk_score_high", "REAL"),
    ("recency_score", "REAL"),
    ("recency_score_low", "REAL"),
    ("recency_score_high", "REAL"),
    ("n_eff_scored", "REAL"),
    ("n_eff_cs", "REAL"),
    ("n_undated", "INTEGER NOT NULL"),
    ("n_relative_date", "INTEGER NOT NULL"),
    ("n_non_english", "INTEGER NOT NULL"),
    ("n_duplicates", "INTEGER NOT NULL"),
]

_MONTHLY_BASES = {
    "n_reviews",
    "n_scored",
    "n_cs",
    "mean_score",
    "cs_score",
    "share_positive",
    "share_negative",
}
_MONTHLY_METRICS = [
    (name, kind)
    for name, kind in _METRICS
    if name.removesuffix("_low").removesuffix("_high") in _MONTHLY_BASES
] + [("n_eff_cs", "REAL")]

# table -> columns (name, SQL type); primary keys below
TABLES: dict[str, list[tuple[str, str]]] = {
    "brand_reputation": [("brand_id", "TEXT"), ("brand_name", "TEXT"), *_METRICS, ("n_vendors", "INTEGER")],
    "vendor_reputation": [
        ("vendor_id", "TEXT"),
        ("vendor_name", "TEXT"),
        ("rank", "INTEGER"),
        ("rank_status", "TEXT NOT NULL"),
        ("p_best", "REAL"),
        ("p_ahead_next", "REAL"),
        ("verdict_vs_next", "TEXT"),
        *_METRICS,
        ("n_brands", "INTEGER NOT NULL"),
        ("brands", "TEXT NOT NULL"),
        ("first_review_date", "TEXT"),
        ("last_review_date", "TEXT"),
    ],
    "vendor_monthly": [("vendor_id", "TEXT"), ("month", "TEXT"), *_MONTHLY_METRICS],
    "vendor_quarterly": [
        ("vendor_id", "TEXT"),
        ("quarter", "TEXT"),
        ("start_date", "TEXT NOT NULL"),
        ("end_date", "TEXT NOT NULL"),
        ("n_reviews", "INTEGER NOT NULL"),
        ("n_cs", "INTEGER NOT NULL"),
        ("cs_score", "REAL"),
        ("cs_score_low", "REAL"),
        ("cs_score_high", "REAL"),
        ("n_other", "INTEGER NOT NULL"),
        ("other_score", "REAL"),
        ("other_score_low", "REAL"),
        ("other_score_high", "REAL"),
        ("enough", "INTEGER NOT NULL"),
    ],
    "vendor_switches": [
        ("brand_id", "TEXT"),
        ("from_vendor_id", "TEXT"),
        ("to_vendor_id", "TEXT"),
        ("from_end_date", "TEXT"),
        ("switch_date", "TEXT"),
        ("window_days", "INTEGER"),
        ("n_cs_before", "INTEGER"),
        ("cs_before", "REAL"),
        ("n_cs_after", "INTEGER"),
        ("cs_after", "REAL"),
        ("n_other_before", "INTEGER"),
        ("other_before", "REAL"),
        ("n_other_after", "INTEGER"),
        ("other_after", "REAL"),
        ("cs_change", "REAL"),
        ("other_change", "REAL"),
        ("did", "REAL"),
    ],
    "rollup_meta": [("key", "TEXT"), ("value", "TEXT")],
    "review_duplicates": [
        ("review_id", "TEXT"),
        ("original_id", "TEXT NOT NULL"),
        ("similarity", "REAL NOT NULL"),
    ],
    "review_channels": [
        ("review_id", "TEXT"),
        ("brand_id", "TEXT NOT NULL"),
        ("channels", "TEXT NOT NULL"),
        ("keywords", "TEXT NOT NULL"),
    ],
    "attribution_periods": [
        ("brand_id", "TEXT"),
        ("vendor_id", "TEXT"),
        ("channels", "TEXT NOT NULL"),
        ("start_date", "TEXT NOT NULL"),
        ("end_date", "TEXT NOT NULL"),
        ("weight", "REAL NOT NULL"),
        ("basis", "TEXT NOT NULL"),
    ],
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "brand_reputation": ("brand_id",),
    "vendor_reputation": ("vendor_id",),
    "vendor_monthly": ("vendor_id", "month"),
    "vendor_quarterly": ("vendor_id", "quarter"),
    "vendor_switches": ("brand_id", "from_vendor_id", "to_vendor_id", "switch_date"),
    "rollup_meta": ("key",),
    "review_duplicates": ("review_id",),
    "review_channels": ("review_id",),
    "attribution_periods": ("brand_id", "channels", "start_date", "vendor_id"),
}

VIEWS: dict[str, str] = {
    "latest_vendor_reputation": """
        SELECT v.rank, v.rank_status, v.vendor_id, v.vendor_name, v.n_reviews, v.n_cs,
               v.shrunk_score, v.shrunk_score_low, v.shrunk_score_high, v.p_best, v.verdict_vs_next,
               v.cs_score, v.cs_score_low, v.cs_score_high, v.recency_score,
               v.mean_score, v.mean_score_low, v.mean_score_high,
               v.share_positive, v.share_negative, v.n_brands, v.brands,
               (SELECT value FROM rollup_meta WHERE key = 'as_of') AS as_of,
               (SELECT value FROM rollup_meta WHERE key = 'model_id') AS model_id
        FROM vendor_reputation v
        JOIN vendors ON vendors.id = v.vendor_id
        ORDER BY v.rank IS NULL, v.rank, v.n_cs DESC, v.vendor_id
    """,
    "review_scores": """
        SELECT r.id AS review_id, r.brand_id, b.name AS brand_name, r.source_id, r.url,
               r.published_at, r.date_precision, r.rating, r.title, r.body,
               COALESCE(s.language, r.language) AS language,
               s.label, s.score, s.cs_relevance, s.cs_score, s.model_id, s.model_revision,
               d.original_id AS duplicate_of
        FROM reviews r
        JOIN brands b ON b.id = r.brand_id
        LEFT JOIN review_sentiment s ON s.review_id = r.id
             AND s.model_id = (SELECT value FROM rollup_meta WHERE key = 'model_id')
             AND s.model_revision = (SELECT value FROM rollup_meta WHERE key = 'model_revision')
        LEFT JOIN review_duplicates d ON d.review_id = r.id
    """,
    "vendor_review_attribution": """
        SELECT p.vendor_id, vendors.name AS vendor_name, r.id AS review_id, r.brand_id,
               r.published_at, r.date_precision, p.weight,
               p.start_date AS period_start, p.end_date AS period_end,
               p.channels AS channels, ch.keywords AS channel_keywords, p.basis
        FROM reviews r
        LEFT JOIN review_channels ch ON ch.review_id = r.id
        JOIN attribution_periods p ON p.brand_id = r.brand_id
             AND (CASE WHEN r.date_precision = 'missing' OR r.published_at IS NULL THEN '0000-00-00'
                       ELSE substr(r.published_at, 1, 10) END) BETWEEN p.start_date AND p.end_date
             AND p.channels = COALESCE(ch.channels, '')
        JOIN vendors ON vendors.id = p.vendor_id
        WHERE r.id NOT IN (SELECT review_id FROM review_duplicates)
          AND substr(r.first_seen, 1, 10) <= (SELECT value FROM rollup_meta WHERE key = 'as_of')
          AND (r.published_at IS NULL
               OR substr(r.published_at, 1, 10) <= (SELECT value FROM rollup_meta WHERE key = 'as_of'))
    """,
}


# The tables readers use (reputation.api loads them all); the rest are the rebuild's working data.
PUBLISHED_TABLES = (
    "rollup_meta",
    "brand_reputation",
    "vendor_reputation",
    "vendor_monthly",
    "vendor_quarterly",
    "vendor_switches",
)


class RollupsMissingError(ReputationError):
    """The database has no roll-ups yet, so there is nothing to read or report."""


def missing_rollups(conn: sqlite3.Connection) -> list[str]:
    """The roll-up tables and views absent from the database; [] once `reputation rollup` has run.

    The rebuild writes every table, the views and rollup_meta in one transaction, so an empty
    list means a complete set from one build (an empty rollup_meta counts as missing).
    """
    present = {
        row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    }
    missing = [name for name in (*TABLES, *VIEWS) if name not in present]
    if not missing and conn.execute("SELECT 1 FROM rollup_meta LIMIT 1").fetchone() is None:
        missing.append("rollup_meta rows")
    return missing


def require_rollups(conn: sqlite3.Connection, where: str = "this database") -> None:
    """Raise RollupsMissingError, naming what is missing and the command to run, unless roll-ups exist."""
    missing = missing_rollups(conn)
    if missing:
        raise RollupsMissingError(
            f"{where} has no roll-ups ({', '.join(missing)} missing); run `reputation rollup` first"
        )


def create_tables(db: sqlite_utils.Database) -> None:
    """Drop and re-create every roll-up table, empty (call inside the rebuild's transaction)."""
    for view in VIEWS:
        db.conn.execute(f"DROP VIEW IF EXISTS {view}")
    for table, columns in TABLES.items():
        body = ",\n    ".join(f"{name} {kind}" for name, kind in columns)
        key = ", ".join(PRIMARY_KEYS[table])
        db.conn.execute(f"DROP TABLE IF EXISTS {table}")
        db.conn.execute(f"CREATE TABLE {table} (\n    {body},\n    PRIMARY KEY ({key})\n)")
    db.conn.execute("CREATE INDEX idx_review_duplicates_original ON review_duplicates(original_id)")


def create_views(db: sqlite_utils.Database) -> None:
    """(Re)create the views over the roll-up tables; safe to run any number of times."""
    for name, sql in VIEWS.items():
        db.conn.execute(f"DROP VIEW IF EXISTS {name}")
        db.conn.execute(f"CREATE VIEW {name} AS {sql.strip()}")


def ensure_search(db: sqlite_utils.Database) -> None:
    """Full-text search over reviews(title, body), kept current by triggers; no-op once set up.

    Must run outside a transaction (sqlite-utils uses executescript). The index is keyed by
    the reviews rowid; after a VACUUM call ``db["reviews_fts"].rebuild_fts()`` to re-sync it.
    """
    db.table("reviews").enable_fts(["title", "body"], create_triggers=True, replace=True)
