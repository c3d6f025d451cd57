"""The SQLite file: connection settings, schema and numbered migrations.

One file, WAL mode, foreign keys on. The schema only ever moves forward through
``MIGRATIONS``; each entry runs once, inside a transaction, and is recorded in
``schema_migrations`` so an old database is upgraded in place by ``connect``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

DB_ENV = "REPUTATION_DB"
DEFAULT_DB = "reputation.db"

# Each migration is a single SQL script. Append only: never edit a released one.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "core tables: registry, sources, reviews, crawl runs",
        """
        CREATE TABLE app_settings (
            key TEXT PRIMARY KEY,              -- e.g. author_hash_key
            value TEXT NOT NULL
        );
        CREATE TABLE vendors (
            id TEXT PRIMARY KEY,               -- slug from the registry
            name TEXT NOT NULL,
            website TEXT,
            notes TEXT
        );
        CREATE TABLE brands (
            id TEXT PRIMARY KEY,               -- slug from the registry
            name TEXT NOT NULL,
            website TEXT
        );
        CREATE TABLE engagements (
            id INTEGER PRIMARY KEY,
            vendor_id TEXT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
            brand_id TEXT NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
            start_date TEXT NOT NULL,          -- ISO date, inclusive
            end_date TEXT,                     -- ISO date, inclusive; NULL = still running
            scope TEXT NOT NULL DEFAULT 'all', -- channel or scope (all, voice, chat, email...)
            share REAL NOT NULL DEFAULT 1.0,   -- share of the brand's service this vendor runs
            evidence_url TEXT,
            UNIQUE (vendor_id, brand_id, start_date, scope),
            CHECK (end_date IS NULL OR end_date >= start_date),
            CHECK (share > 0 AND share <= 1)
        );
        CREATE INDEX idx_engagements_brand ON engagements(brand_id);
        CREATE TABLE sources (
            id TEXT PRIMARY KEY,               -- stable hash of the URL
            brand_id TEXT NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
            url TEXT NOT NULL UNIQUE,
            layout TEXT NOT NULL DEFAULT 'auto',
            crawl_interval_hours REAL NOT NULL DEFAULT 24,
            last_crawl_at TEXT,
            last_crawl_status TEXT
        );
        CREATE INDEX idx_sources_brand ON sources(brand_id);
        CREATE TABLE crawl_runs (
            id INTEGER PRIMARY KEY,
            stage TEXT NOT NULL DEFAULT 'crawl', -- crawl, score, rollup, run
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running', -- running, ok, failed, interrupted
            pages INTEGER NOT NULL DEFAULT 0,
            items_new INTEGER NOT NULL DEFAULT 0,
            items_updated INTEGER NOT NULL DEFAULT 0,
            items_unchanged INTEGER NOT NULL DEFAULT 0,
            items_dropped INTEGER NOT NULL DEFAULT 0,
            dropped_by_reason TEXT NOT NULL DEFAULT '{}', -- JSON {reason: count}
            errors INTEGER NOT NULL DEFAULT 0,
            errors_by_reason TEXT NOT NULL DEFAULT '{}',  -- JSON {reason: count}
            selection TEXT,                    -- JSON: vendors/brands asked for
            detail TEXT                        -- JSON: extra stats
        );
        CREATE TABLE reviews (
            id TEXT PRIMARY KEY,               -- site id based, else content hash
            source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            brand_id TEXT NOT NULL REFERENCES brands(id) ON DELETE CASCADE,
            url TEXT,                          -- page the review was found on
            site_review_id TEXT,
            author_hash TEXT,                  -- keyed hash of the author name
            title TEXT,
            body TEXT NOT NULL,                -- cleaned text, never truncated
            body_hash TEXT NOT NULL,
            previous_body_hashes TEXT NOT NULL DEFAULT '[]', -- JSON list of earlier hashes
            rating REAL,                       -- normalised 0..1
            rating_value REAL,                 -- as shown on the site
            rating_min REAL,
            rating_max REAL,
            published_at TEXT,                 -- ISO date (YYYY-MM-DD)
            date_precision TEXT NOT NULL DEFAULT 'missing'
                CHECK (date_precision IN ('exact', 'relative', 'missing')),
            date_raw TEXT,
            language TEXT,                     -- ISO 639-1, NULL when unknown
            extractor TEXT,                    -- jsonld, microdata, rdfa, embedded_json, layout:NAME
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            first_crawl_run_id INTEGER REFERENCES crawl_runs(id),
            last_crawl_run_id INTEGER REFERENCES crawl_runs(id),
            CHECK (rating IS NULL OR (rating >= 0 AND rating <= 1))
        );
        CREATE INDEX idx_reviews_brand_date ON reviews(brand_id, published_at);
        CREATE INDEX idx_reviews_source ON reviews(source_id);
        """,
    ),
    (
        2,
        "review_sentiment: one row per review and model revision",
        """
        CREATE TABLE review_sentiment (
            review_id TEXT NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            model_revision TEXT NOT NULL,
            body_hash TEXT NOT NULL,           -- text that was scored
            label TEXT,                        -- negative / neutral / positive (NULL if unscorable)
            probabilities TEXT,                -- JSON {label: p}
            score REAL,                        -- signed -1..1
            cs_relevance REAL,                 -- 0..1 share of text about customer service
            cs_label TEXT,
            cs_score REAL,                     -- signed -1..1 of the customer-service part; NULL if none
            cs_sentences TEXT,                 -- JSON list of customer-service sentences
            language TEXT,
            flags TEXT NOT NULL DEFAULT '[]',  -- JSON list: empty, non_english, windowed...
            scored_at TEXT NOT NULL,
            PRIMARY KEY (review_id, model_id, model_revision)
        );
        CREATE INDEX idx_review_sentiment_model ON review_sentiment(model_id, model_revision);
        """,
    ),
    (
        3,
        "index for finding syndicated copies by author and brand",
        """
        CREATE INDEX IF NOT EXISTS idx_reviews_author ON reviews(author_hash, brand_id);
        """,
    ),
    (
        4,
        "review_sentiment.other_score: sentiment of the sentences not about customer service",
        """
        ALTER TABLE review_sentiment ADD COLUMN other_score REAL;  -- -1..1; NULL when every sentence is about service
        """,
    ),
    (
        5,
        "syndicated-copy search reads author, brand and dates from one covering index",
        """
        CREATE INDEX IF NOT EXISTS idx_reviews_author_dates ON reviews(author_hash, brand_id, published_at, first_seen);
        DROP INDEX IF EXISTS idx_reviews_author;  -- a prefix of the new index
        """,
    ),
]


def default_path() -> str:
    """The database path: $REPUTATION_DB, else ./reputation.db."""
    return os.environ.get(DB_ENV) or DEFAULT_DB


def utcnow() -> str:
    """Timestamps are stored as ISO 8601 UTC strings, second precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")


def schema_version(db: sqlite_utils.Database) -> int:
    if "schema_migrations" not in db.table_names():
        return 0
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database) -> list[int]:
    """Apply every migration newer than the file; return the versions applied."""
    conn = db.conn
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied: list[int] = []
    current = schema_version(db)
    for version, description, script in MIGRATIONS:
        if version <= current:
            continue
        # executescript would commit implicitly; run statement by statement instead
        # so a failing migration leaves the file as it was.
        with transaction(db):
            for statement in _split_sql(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, utcnow()),
            )
        applied.append(version)
    return applied


def _split_sql(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement:
                yield statement
    if buffer.strip():
        yield buffer.strip()


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """One explicit transaction: everything inside lands together or not at all."""
    conn = db.conn
    if conn.in_transaction:
        # Nested use joins the outer transaction through a savepoint.
        conn.execute("SAVEPOINT nested")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO nested")
            conn.execute("RELEASE nested")
            raise
        conn.execute("RELEASE nested")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def connect(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and upgrade) the database; ``:memory:`` works for tests."""
    target = str(path) if path is not None else default_path()
    if target != ":memory:" and not create and not Path(target).exists():
        raise FileNotFoundError(f"database {target} does not exist; run `reputation init` first")
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=30)
    _configure(conn)
    db = sqlite_utils.Database(conn)
    migrate(db)
    return db
