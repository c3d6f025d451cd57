"""Which sources to crawl, and running the `reviews` spider in a child process.

Twisted's reactor cannot be restarted inside one process, so every crawl gets a fresh
``python -m scrapy crawl reviews``; that also keeps a crawl's scheduler and memory
apart from the caller. The child writes its results to SQLite; the caller reads back
the ``crawl_runs`` row it reserved before starting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.database import connect, transaction, utcnow
from storage.errors import NotFoundError, ReputationError
from storage.records import Source

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # holds crawler/ and spiders/
SETTINGS_MODULE = "crawler.settings"
JSON_COLUMNS = ("dropped_by_reason", "errors_by_reason", "selection", "detail")
LOG_TAIL_CHARS = 4000


class CrawlError(ReputationError):
    """The crawl process failed or every source failed; the message carries the log's tail."""

    def __init__(self, message: str, run: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.run = run


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_due(source: Source, now: datetime) -> bool:
    """Never crawled, or its interval has passed since the last crawl."""
    if not source.last_crawl_at:
        return True
    return _parse_time(source.last_crawl_at) + timedelta(hours=source.crawl_interval_hours) <= now


def select_sources(
    db: sqlite_utils.Database,
    *,
    vendors: Iterable[str] | None = None,
    brands: Iterable[str] | None = None,
    due_only: bool = False,
    now: datetime | None = None,
) -> list[Source]:
    """Sources of the named brands plus the brands the named vendors serve; all when none named.

    Raises NotFoundError naming every vendor or brand that is not in the registry.
    """
    vendor_ids = sorted(set(vendors or ()))
    brand_ids = set(brands or ())
    missing = [f"vendor '{v}'" for v in vendor_ids if db["vendors"].count_where("id = ?", [v]) == 0]
    missing += [f"brand '{b}'" for b in sorted(brand_ids) if db["brands"].count_where("id = ?", [b]) == 0]
    if missing:
        raise NotFoundError(
            f"not in the registry: {', '.join(missing)} (load it with `reputation vendors load`)"
        )
    sql = "SELECT id, brand_id, url, layout, crawl_interval_hours, last_crawl_at FROM sources"
    params: list[str] = []
    if vendor_ids or brand_ids:
        for vendor in vendor_ids:
            rows = db.execute("SELECT DISTINCT brand_id FROM engagements WHERE vendor_id = ?", [vendor])
            brand_ids.update(row[0] for row in rows)
        if not brand_ids:
            return []
        params = sorted(brand_ids)
        sql += f" WHERE brand_id IN ({', '.join('?' for _ in params)})"
    sql += " ORDER BY brand_id, url"
    sources = [Source(*row) for row in db.execute(sql, params).fetchall()]
    if due_only:
        moment = now or datetime.now(UTC)
        sources = [s for s in sources if is_due(s, moment)]
    return sources


def decode_run(row: Mapping[str, Any]) -> dict[str, Any]:
    """A crawl_runs row with its JSON columns decoded."""
    run = dict(row)
    for column in JSON_COLUMNS:
        value = run.get(column)
        if isinstance(value, str) and value:
            run[column] = json.loads(value)
        elif column != "selection":
            run[column] = {}
    return run


def load_run(db: sqlite_utils.Database, run_id: int) -> dict[str, Any]:
    """The decoded crawl_runs row with this id."""
    return decode_run(db.table("crawl_runs").get(run_id))


def _reserve_run(db: sqlite_utils.Database, selection: dict[str, Any]) -> int:
    with transaction(db) as conn:
        cursor = conn.execute(
            "INSERT INTO crawl_runs (stage, started_at, status, selection) VALUES ('crawl', ?, 'running', ?)",
            (utcnow(), json.dumps(selection, sort_keys=True)),
        )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _mark_failed(db: sqlite_utils.Database, run_id: int, log_tail: str) -> None:
    with transaction(db) as conn:
        conn.execute(
            "UPDATE crawl_runs SET status = 'failed', finished_at = ?, detail = ? WHERE id = ? AND status = 'running'",
            (utcnow(), json.dumps({"log_tail": log_tail[-1000:]}), run_id),
        )


def crawl_command(
    db_path: str,
    run_id: int,
    *,
    vendors: list[str],
    brands: list[str],
    due_only: bool,
    settings: Mapping[str, Any],
) -> list[str]:
    """The child's argv: the spider's selection and every setting as ``-s KEY=VALUE``."""
    argv = [sys.executable, "-m", "scrapy", "crawl", "reviews"]
    if vendors:
        argv += ["-a", "vendor=" + ",".join(vendors)]
    if brands:
        argv += ["-a", "brand=" + ",".join(brands)]
    if due_only:
        argv += ["-a", "due_only=1"]
    merged = {**settings, "REPUTATION_DB": db_path, "REPUTATION_CRAWL_RUN_ID": run_id}
    for key, value in merged.items():
        argv += ["-s", f"{key}={value}"]
    return argv


def _run_child(argv: list[str], timeout: float | None) -> tuple[int | None, str]:
    env = dict(os.environ)
    env["SCRAPY_SETTINGS_MODULE"] = SETTINGS_MODULE
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as captured:
        try:
            completed = subprocess.run(
                argv,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=captured,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            returncode: int | None = completed.returncode
        except subprocess.TimeoutExpired:
            returncode = None
        captured.seek(0)
        return returncode, captured.read()


def run_crawl(
    db_path: str | os.PathLike[str],
    *,
    vendors: Iterable[str] | None = None,
    brands: Iterable[str] | None = None,
    due_only: bool = False,
    settings: Mapping[str, Any] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Crawl the selected sources in a child Scrapy process; return its crawl_runs row.

    Raises NotFoundError for an unknown vendor or brand (before anything starts) and
    CrawlError, with the tail of the crawl log, when the child fails or every source failed.
    """
    path = str(Path(db_path).resolve())
    vendor_ids, brand_ids = sorted(set(vendors or ())), sorted(set(brands or ()))
    db = connect(path)
    try:
        select_sources(db, vendors=vendor_ids, brands=brand_ids)  # validates the names first
        selection = {"vendors": vendor_ids, "brands": brand_ids, "due_only": due_only}
        run_id = _reserve_run(db, selection)
    finally:
        db.close()

    argv = crawl_command(
        path, run_id, vendors=vendor_ids, brands=brand_ids, due_only=due_only, settings=settings or {}
    )
    returncode, log = _run_child(argv, timeout)
    if log_path is not None:
        Path(log_path).write_text(log, encoding="utf-8")
    tail = log[-LOG_TAIL_CHARS:]

    db = connect(path)
    try:
        run = load_run(db, run_id)
        if returncode != 0 or run["status"] == "running":
            _mark_failed(db, run_id, tail)
            what = "timed out" if returncode is None else f"exited with status {returncode}"
            raise CrawlError(f"crawl run {run_id} {what}; end of its log:\n{tail}", load_run(db, run_id))
    finally:
        db.close()
    if run["status"] in ("failed", "interrupted"):
        raise CrawlError(
            f"crawl run {run_id} {run['status']}: errors {run['errors_by_reason']}; end of its log:\n{tail}",
            run,
        )
    return run
