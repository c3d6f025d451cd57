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

from storage.errors import (
    DatabaseBusyError,
    DatabaseFileError,
    ForeignDatabaseError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
    SchemaTooNewError,
)
from storage.version import __version__

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
    (
        6,
        "crawl_runs.pid and .host: the process that owns a run, so a dead one's row can be marked interrupted",
        """
        ALTER TABLE crawl_runs ADD COLUMN pid INTEGER;  -- owner's process id; NULL for rows written before
        ALTER TABLE crawl_runs ADD COLUMN host TEXT;    -- owner's host name (socket.gethostname())
        CREATE INDEX IF NOT EXISTS idx_crawl_runs_running ON crawl_runs(host, pid) WHERE status = 'running';
        """,
    ),
    (
        7,
        "reviews.date_precision also allows 'month' and 'year' (\"June 2018\", \"2018\")",
        # Widening a CHECK changes no stored row, so instead of a table rebuild (which would drop
        # the FTS triggers and cascade-delete review_sentiment) the table's CREATE text is edited
        # in place, the documented SQLite way for such changes; RESET reloads this connection's
        # schema and the throwaway table bumps the schema cookie so other connections reload too.
        """
        PRAGMA writable_schema = ON;
        UPDATE sqlite_master
           SET sql = replace(sql,
                             'CHECK (date_precision IN (''exact'', ''relative'', ''missing''))',
                             'CHECK (date_precision IN (''exact'', ''month'', ''year'', ''relative'', ''missing''))')
         WHERE type = 'table' AND name = 'reviews';
        PRAGMA writable_schema = RESET;
        CREATE TABLE _schema_bump_7 (x INTEGER);
        DROP TABLE _schema_bump_7;
        """,
    ),
    (
        8,
        "review ids tied to their listing: site:<source id>:<site id>, whichever extractor found the review",
        # Ids were site:<host>:<site id>, so two brands on one host with alike-numbered reviews
        # collided, and JSON-LD's "/schema/Review/x/<id>" and the platform's "<id>" made two rows
        # of one review. The site id is normalised exactly as crawler.identity.normalise_site_id
        # does (cut at '#'/'?', drop scheme and host, last path segment when it holds a digit).
        # Rows that now share an id are merged into the earliest seen (their scores move over
        # unless it has its own for that model); children are re-keyed with foreign keys deferred
        # to the commit. A TEXT primary key is not the rowid, so the FTS index is untouched.
        """
        PRAGMA defer_foreign_keys = ON;
        CREATE TEMP TABLE _rekey_8 (
            rid INTEGER PRIMARY KEY, old_id TEXT NOT NULL UNIQUE, source_id TEXT NOT NULL,
            raw TEXT, cut TEXT, path TEXT, last TEXT, site_id TEXT, new_id TEXT, survivor TEXT
        );
        INSERT INTO _rekey_8 (rid, old_id, source_id, raw)
            SELECT rowid, id, source_id,
                   trim(COALESCE(site_review_id, substr(id, 6 + instr(substr(id, 6), ':'))), ' ' || char(9, 10, 13))
            FROM reviews WHERE id LIKE 'site:%';
        UPDATE _rekey_8 SET cut = CASE WHEN instr(raw, '#') > 0 THEN substr(raw, 1, instr(raw, '#') - 1) ELSE raw END;
        UPDATE _rekey_8 SET cut = CASE WHEN instr(cut, '?') > 0 THEN substr(cut, 1, instr(cut, '?') - 1) ELSE cut END;
        UPDATE _rekey_8 SET path = CASE
            WHEN instr(cut, '://') = 0 THEN cut
            WHEN instr(substr(cut, instr(cut, '://') + 3), '/') > 0
                THEN substr(substr(cut, instr(cut, '://') + 3), instr(substr(cut, instr(cut, '://') + 3), '/'))
            ELSE '' END;
        UPDATE _rekey_8 SET path = rtrim(path, '/');
        UPDATE _rekey_8 SET last = substr(path, length(rtrim(path, replace(path, '/', ''))) + 1);
        UPDATE _rekey_8 SET site_id = CASE WHEN instr(raw, '/') > 0 AND last GLOB '*[0-9]*' THEN last ELSE raw END;
        UPDATE _rekey_8 SET new_id = 'site:' || source_id || ':' || site_id;
        CREATE INDEX temp._rekey_8_new ON _rekey_8(new_id);
        UPDATE _rekey_8 SET survivor = (
            SELECT k.old_id FROM _rekey_8 k JOIN reviews r ON r.rowid = k.rid
            WHERE k.new_id = _rekey_8.new_id ORDER BY r.first_seen, k.rid LIMIT 1
        );
        UPDATE reviews SET
            first_seen = (SELECT MIN(r.first_seen) FROM _rekey_8 k JOIN _rekey_8 g ON g.new_id = k.new_id
                          JOIN reviews r ON r.rowid = g.rid WHERE k.old_id = reviews.id),
            last_seen = (SELECT MAX(r.last_seen) FROM _rekey_8 k JOIN _rekey_8 g ON g.new_id = k.new_id
                         JOIN reviews r ON r.rowid = g.rid WHERE k.old_id = reviews.id),
            last_crawl_run_id = (SELECT MAX(r.last_crawl_run_id) FROM _rekey_8 k JOIN _rekey_8 g ON g.new_id = k.new_id
                                 JOIN reviews r ON r.rowid = g.rid WHERE k.old_id = reviews.id)
        WHERE id IN (SELECT survivor FROM _rekey_8 WHERE survivor <> old_id);
        UPDATE OR IGNORE review_sentiment
            SET review_id = (SELECT survivor FROM _rekey_8 WHERE old_id = review_sentiment.review_id)
            WHERE review_id IN (SELECT old_id FROM _rekey_8 WHERE survivor <> old_id);
        DELETE FROM reviews WHERE id IN (SELECT old_id FROM _rekey_8 WHERE survivor <> old_id);
        UPDATE review_sentiment
            SET review_id = (SELECT new_id FROM _rekey_8 WHERE old_id = review_sentiment.review_id)
            WHERE review_id IN (SELECT old_id FROM _rekey_8 WHERE survivor = old_id AND new_id <> old_id);
        UPDATE reviews
            SET id = (SELECT new_id FROM _rekey_8 WHERE old_id = reviews.id),
                site_review_id = (SELECT site_id FROM _rekey_8 WHERE old_id = reviews.id)
            WHERE id IN (SELECT old_id FROM _rekey_8 WHERE survivor = old_id);
        DROP TABLE temp._rekey_8;
        """,
    ),
    (
        9,
        "reviews.reply, .truncated, .extra, .content_key, .purged_at; source_aggregates; purged_review_copies",
        """
        ALTER TABLE reviews ADD COLUMN reply TEXT;             -- the business's answer; never part of body
        ALTER TABLE reviews ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0 CHECK (truncated IN (0, 1));
        ALTER TABLE reviews ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';  -- JSON: verified purchase, app version...
        ALTER TABLE reviews ADD COLUMN content_key TEXT;       -- hash of source, author, exact date, text
        ALTER TABLE reviews ADD COLUMN purged_at TEXT;         -- text and author removed by `reputation purge`
        UPDATE reviews SET content_key = substr(id, 3) WHERE id LIKE 'h:%';  -- an h: id is its content key
        CREATE INDEX idx_reviews_content_key ON reviews(content_key) WHERE content_key IS NOT NULL;
        CREATE TABLE source_aggregates (                       -- the listing's own summary, per crawl
            source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            crawl_run_id INTEGER NOT NULL REFERENCES crawl_runs(id) ON DELETE CASCADE,
            rating_value REAL,
            rating_min REAL,
            rating_max REAL,
            review_count INTEGER,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (source_id, crawl_run_id)
        );
        CREATE TABLE purged_review_copies (                    -- syndication links frozen before a purge
            review_id TEXT PRIMARY KEY REFERENCES reviews(id) ON DELETE CASCADE,
            original_id TEXT NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
            similarity REAL NOT NULL,
            recorded_at TEXT NOT NULL
        );
        """,
    ),
    (
        10,
        "sources.render: fetch a source's pages over plain HTTP or render them in a headless browser",
        """
        ALTER TABLE sources ADD COLUMN render TEXT NOT NULL DEFAULT 'http' CHECK (render IN ('http', 'browser'));
        """,
    ),
    (
        11,
        "incremental re-crawls: sources' full-crawl interval and last full crawl; reviews.removed_at",
        """
        ALTER TABLE sources ADD COLUMN full_crawl_interval_hours REAL NOT NULL DEFAULT 168;  -- a full walk this often (7 days)
        ALTER TABLE sources ADD COLUMN last_full_crawl_at TEXT;       -- last full crawl that ended ok; NULL: next crawl is full
        ALTER TABLE sources ADD COLUMN last_full_crawl_pages INTEGER; -- pages that crawl fetched (estimates pages saved)
        ALTER TABLE reviews ADD COLUMN removed_at TEXT;  -- ISO date a complete full crawl no longer found it; NULL when listed
        CREATE INDEX idx_reviews_removed ON reviews(source_id) WHERE removed_at IS NOT NULL;
        """,
    ),
    (
        12,
        "engagement_candidates: client brands and windows proposed by discovery, for an analyst to decide",
        """
        CREATE TABLE engagement_candidates (
            id INTEGER PRIMARY KEY,
            vendor_id TEXT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
            brand_name TEXT NOT NULL,          -- as the page names it
            brand_id TEXT REFERENCES brands(id) ON DELETE SET NULL,  -- NULL: no registry brand matched
            relation TEXT NOT NULL CHECK (relation IN ('started', 'renewed', 'expanded', 'ended', 'client')),
            event_date TEXT,                   -- ISO date of the event (press release date); NULL when undated
            scope TEXT NOT NULL DEFAULT 'all', -- channel or region the event names (all, voice, chat...)
            evidence TEXT NOT NULL,            -- the sentence, logo alt text or title it rests on
            url TEXT NOT NULL,                 -- the page it was read from
            confidence REAL NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
            status TEXT NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'accepted', 'rejected')),
            discovered_at TEXT NOT NULL,
            decided_at TEXT,
            engagement_id INTEGER REFERENCES engagements(id) ON DELETE SET NULL
        );
        -- one row per event: a re-discovery updates it (undated rows compare equal too)
        CREATE UNIQUE INDEX idx_engagement_candidates_key
            ON engagement_candidates(vendor_id, brand_name, relation, COALESCE(event_date, ''), scope);
        CREATE INDEX idx_engagement_candidates_vendor ON engagement_candidates(vendor_id, status);
        """,
    ),
    (
        13,
        "roll-ups' saved results kept right by triggers: review_channel_scans, review_copy_groups",
        # Derived data the roll-up rebuild reuses (reputation/rollups/attribution.py,
        # syndication.py). review_channel_scans: each channel-read review's channels, under the
        # rules key they came from. review_copy_groups: each (author, brand) group's copy links
        # with a fingerprint of what the author index holds (rowids, dates). Neither fingerprints a
        # review's text or id, so the triggers drop the saved results of a review whose text or
        # id changes (or that moves to another author or brand, or is deleted): a rebuild need
        # not read every text to find the edited ones. Inserts pay nothing (a new review has no
        # saved scan and changes its group's fingerprint). Both also hold the reviews' rowids,
        # which an INSERT OR REPLACE (whose implicit delete fires no trigger) or a VACUUM changes.
        # review_channel_scans existed without the triggers (created by the rebuild, its rows
        # checked by hashing each text), so it is replaced here: every review is read again once.
        """
        DROP TABLE IF EXISTS review_channel_scans;
        CREATE TABLE review_channel_scans (
            review_id TEXT PRIMARY KEY,
            review_rowid INTEGER NOT NULL,  -- reviews.rowid when scanned: a replaced row is read again
            scan_key BLOB NOT NULL,         -- the channel rules' key the result came from
            channels TEXT NOT NULL,
            keywords TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TRIGGER review_channel_scans_au AFTER UPDATE OF id, title, body ON reviews
        WHEN old.id IS NOT new.id OR old.title IS NOT new.title OR old.body IS NOT new.body
        BEGIN
            DELETE FROM review_channel_scans WHERE review_id = old.id;
        END;
        CREATE TRIGGER review_channel_scans_ad AFTER DELETE ON reviews
        BEGIN
            DELETE FROM review_channel_scans WHERE review_id = old.id;
        END;
        CREATE TABLE review_copy_groups (
            author_hash TEXT NOT NULL,
            brand_id TEXT NOT NULL,
            group_key BLOB NOT NULL,   -- fingerprint of the group's candidates and the matching rules
            copies TEXT NOT NULL,      -- JSON [[review id, original id, similarity], ...]
            PRIMARY KEY (author_hash, brand_id)
        ) WITHOUT ROWID;
        CREATE TRIGGER review_copy_groups_au AFTER UPDATE OF id, author_hash, brand_id, body ON reviews
        WHEN old.id IS NOT new.id OR old.author_hash IS NOT new.author_hash
             OR old.brand_id IS NOT new.brand_id OR old.body IS NOT new.body
        BEGIN
            DELETE FROM review_copy_groups WHERE author_hash = old.author_hash AND brand_id = old.brand_id;
            DELETE FROM review_copy_groups WHERE author_hash = new.author_hash AND brand_id = new.brand_id;
        END;
        CREATE TRIGGER review_copy_groups_ad AFTER DELETE ON reviews
        BEGIN
            DELETE FROM review_copy_groups WHERE author_hash = old.author_hash AND brand_id = old.brand_id;
        END;
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


def latest_version() -> int:
    """The newest schema version this code can create and read."""
    return max(version for version, _, _ in MIGRATIONS)


MIN_PAGE_SIZE = 512  # the smallest SQLite page: a database file is at least this long
_OUR_MIGRATION_COLUMNS = {"version", "description", "applied_at"}
BUSY_TIMEOUT_S = 30


def connect(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and upgrade) the database; ``:memory:`` works for tests.

    The file is checked before anything is written to it: a file that is not SQLite, another
    application's database, one from a newer release or one we cannot write is refused with a
    ``DatabaseFileError`` naming the file, and is left exactly as it was (journal mode included).
    """
    target = str(path) if path is not None else default_path()
    if target != ":memory:":
        file = Path(target)
        if not create and not file.exists():
            raise FileNotFoundError(f"database {target} does not exist; run `reputation init` first")
        _check_file(file)
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        _check_schema(conn, target)
        _configure(conn)
        db = sqlite_utils.Database(conn)
        migrate(db)
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        mapped = database_error(exc, target)
        if mapped is None:
            raise
        raise mapped from exc
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return db


def _check_file(file: Path) -> None:
    """Refuse what SQLite would choke on later: a folder, a non-SQLite file, no write access."""
    if file.is_dir():
        raise NotADatabaseError(f"{file} is a directory, not an SQLite database")
    if file.exists():
        # The file's header is left to SQLite (SQLITE_NOTADB, mapped by database_error): opening and
        # closing a second descriptor on a database this process already has open drops SQLite's
        # POSIX locks on it, which shows up later as "disk I/O error".
        if not os.access(file, os.R_OK):
            raise ReadOnlyDatabaseError(f"{file}: permission denied (cannot read it)")
        if 0 < file.stat().st_size < MIN_PAGE_SIZE:  # SQLite would take such a stub for a new database
            raise NotADatabaseError(f"{file} is not an SQLite database")
        if not os.access(file, os.W_OK):
            raise ReadOnlyDatabaseError(
                f"{file} is read-only; make it writable (chmod u+w) or work on a copy"
            )
    folder = file.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReadOnlyDatabaseError(f"cannot create folder {folder} for {file}: {exc.strerror}") from exc
    if os.access(folder, os.W_OK | os.X_OK):
        return
    if not file.exists():
        raise ReadOnlyDatabaseError(f"cannot create {file}: folder {folder} is not writable")
    sidecars = [file.with_name(file.name + suffix) for suffix in ("-wal", "-shm")]
    if not all(side.exists() and os.access(side, os.W_OK) for side in sidecars):
        raise ReadOnlyDatabaseError(
            f"{file}: folder {folder} is read-only, and SQLite must create {file.name}-wal and "
            f"{file.name}-shm beside the database; make the folder writable or copy the file elsewhere"
        )


def _check_schema(conn: sqlite3.Connection, target: str) -> None:
    """Refuse another application's tables or a schema newer than ``MIGRATIONS``, before any write."""
    tables = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    }
    if not tables:
        return  # a new or empty file: ours to create
    columns = (
        {row[1] for row in conn.execute("PRAGMA table_info(schema_migrations)")}
        if "schema_migrations" in tables
        else set()
    )
    if not _OUR_MIGRATION_COLUMNS.issubset(columns):
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise ForeignDatabaseError(
            f"{target} is not a reputation database (it holds other tables: {shown}); "
            "refusing to add tables to it"
        )
    found = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
    known = latest_version()
    if isinstance(found, int) and found > known:
        raise SchemaTooNewError(
            f"{target} has schema version {found}, but reputation {__version__} knows versions up to "
            f"{known}; upgrade reputation to use this file"
        )


def database_error(exc: sqlite3.Error, target: str) -> DatabaseFileError | None:
    """The user-facing error for an SQLite failure caused by the file, or None for a bug of ours.

    Callers that write later (pipelines, commands) can pass their own ``sqlite3`` errors here too.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(exc)
    if primary == sqlite3.SQLITE_NOTADB or "file is not a database" in message:
        return NotADatabaseError(f"{target} is not an SQLite database")
    if primary == sqlite3.SQLITE_CORRUPT:
        return NotADatabaseError(f"{target} is damaged ({message}); restore it from a backup")
    if primary == sqlite3.SQLITE_READONLY or "readonly database" in message:
        return ReadOnlyDatabaseError(
            f"{target} is read-only ({message}); make the file and its folder writable or work on a copy"
        )
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return ReadOnlyDatabaseError(f"cannot open {target} ({message}); check the permissions of the file and its folder")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return DatabaseBusyError(
            f"{target} stayed locked by another process for over {BUSY_TIMEOUT_S} s; try again later"
        )
    if primary == sqlite3.SQLITE_FULL:
        return DatabaseFileError(f"cannot write {target}: the disk is full")
    return None
