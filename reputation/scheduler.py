"""Scheduled runs: crawl due sources, score new reviews, rebuild roll-ups — once at a time.

A cron job or systemd timer calls ``reputation run``. An exclusive, non-blocking
``flock`` on a file next to the database keeps two runs from overlapping; the loser
fails fast with ``LockedError`` (exit 75, "try again later"). Every stage leaves a
row in ``crawl_runs`` (the crawl stage writes its own), and the whole run one more
with stage 'run'. A failing stage is recorded as failed and the stages after it are
skipped; each stage commits its own work in its own transactions, so the database
holds either a stage's complete result or none of it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from storage.database import connect, transaction, utcnow
from storage.errors import LockedError

STAGES = ("crawl", "score", "rollup")
STAGE_FAILED_EXIT = 1


@dataclass
class StageResult:
    name: str
    status: str  # ok, failed, skipped
    run_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunResult:
    run_id: int
    stages: list[StageResult]

    @property
    def failed_stage(self) -> StageResult | None:
        return next((s for s in self.stages if s.status == "failed"), None)

    @property
    def ok(self) -> bool:
        return self.failed_stage is None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else STAGE_FAILED_EXIT


def default_lock_path(db_path: str | os.PathLike[str]) -> Path:
    """The lock lives beside the database so every run on one file shares it."""
    db = Path(db_path)
    return db.with_name(db.name + ".lock")


@contextmanager
def run_lock(lock_path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Hold an exclusive flock for the duration, or raise LockedError at once."""
    path = Path(lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            raise LockedError(
                f"another run holds the lock {str(path)!r}"
                + (f" ({holder})" if holder else "")
                + "; try again later"
            ) from None
        # Who holds it, for an operator reading the lock file; the flock is what counts.
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {utcnow()}\n")
        handle.flush()
        yield handle
    finally:
        handle.close()  # closing the descriptor releases the flock


def _jsonable(value: Any) -> Any:
    """Stage summaries (dicts or dataclasses) as JSON-safe data for the run log."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def _start_row(db: sqlite_utils.Database, stage: str, detail: dict[str, Any]) -> int:
    with transaction(db) as conn:
        cursor = conn.execute(
            "INSERT INTO crawl_runs (stage, started_at, status, detail) VALUES (?, ?, 'running', ?)",
            (stage, utcnow(), json.dumps(detail, default=str)),
        )
    return int(cursor.lastrowid or 0)


def _finish_row(db: sqlite_utils.Database, row_id: int, status: str, detail: dict[str, Any]) -> None:
    with transaction(db) as conn:
        conn.execute(
            "UPDATE crawl_runs SET finished_at = ?, status = ?, detail = ?, errors = errors + ? WHERE id = ?",
            (utcnow(), status, json.dumps(detail, default=str), 1 if status == "failed" else 0, row_id),
        )


def _last_row_id(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM crawl_runs").fetchone()[0])


def _own_row(db: sqlite_utils.Database, stage: str, after_id: int) -> int | None:
    """The row a stage wrote for itself during this run (crawl and score log their own work)."""
    row = db.execute("SELECT MIN(id) FROM crawl_runs WHERE stage = ? AND id > ?", (stage, after_id)).fetchone()
    return None if row[0] is None else int(row[0])


def _log_stage(db: sqlite_utils.Database, stage: str, after_id: int, started_at: str, status: str,
               detail: dict[str, Any]) -> int:
    """Exactly one run-log row per stage: keep the stage's own row, else write one."""
    own = _own_row(db, stage, after_id)
    with transaction(db) as conn:
        if own is not None:
            # A stage that died before closing its row leaves it 'running'; close it.
            conn.execute(
                "UPDATE crawl_runs SET status = ?, finished_at = COALESCE(finished_at, ?) "
                "WHERE id = ? AND status = 'running'",
                (status, utcnow(), own),
            )
            return own
        cursor = conn.execute(
            "INSERT INTO crawl_runs (stage, started_at, finished_at, status, errors, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (stage, started_at, utcnow(), status, 1 if status == "failed" else 0, json.dumps(detail, default=str)),
        )
    return int(cursor.lastrowid or 0)


def _crawl(db_path: str, db: sqlite_utils.Database, context: dict[str, Any]) -> dict[str, Any]:
    from crawler.launcher import run_crawl  # heavy (Scrapy, Twisted): imported only when crawling

    # run_crawl writes its own crawl_runs row and raises when the crawl fails.
    row = run_crawl(db_path, due_only=True, settings=context.get("crawl_settings"))
    keys = ("id", "status", "pages", "items_new", "items_updated", "items_dropped", "errors")
    return {"crawl_run": {k: row.get(k) for k in keys}}


def _score(db_path: str, db: sqlite_utils.Database, context: dict[str, Any]) -> dict[str, Any]:
    from reputation.scoring.job import score_reviews  # imports torch: only when scoring

    summary = _jsonable(score_reviews(db, model=context.get("model"), progress=False))
    if isinstance(summary, dict) and summary.get("model_id"):
        context["model_id"] = summary["model_id"]
    return {"result": summary}


def _rollup(db_path: str, db: sqlite_utils.Database, context: dict[str, Any]) -> dict[str, Any]:
    from reputation.rollups.build import build_rollups

    return {"result": _jsonable(build_rollups(db, model_id=context.get("model_id")))}


StageFn = Callable[[str, sqlite_utils.Database, dict[str, Any]], dict[str, Any]]
STAGE_FUNCTIONS: dict[str, StageFn] = {"crawl": _crawl, "score": _score, "rollup": _rollup}


def _run_stage(name: str, db_path: str, db: sqlite_utils.Database, context: dict[str, Any]) -> StageResult:
    after_id, started_at = _last_row_id(db), utcnow()
    try:
        detail = STAGE_FUNCTIONS[name](db_path, db, context)
    except KeyboardInterrupt:
        _abandon(db)
        _log_stage(db, name, after_id, started_at, "interrupted", {"error": "interrupted"})
        raise
    except Exception as exc:  # a stage may fail in any way; record it, stop the run
        _abandon(db)
        message = f"{type(exc).__name__}: {exc}"
        detail = {"error": message, "traceback": traceback.format_exc(limit=8)}
        row_id = _log_stage(db, name, after_id, started_at, "failed", detail)
        return StageResult(name, "failed", row_id, detail, message)
    return StageResult(name, "ok", _log_stage(db, name, after_id, started_at, "ok", detail), detail)


def _abandon(db: sqlite_utils.Database) -> None:
    """Roll back whatever a failed stage left open, so its half-done work never lands."""
    if db.conn.in_transaction:
        db.conn.rollback()


def run_scheduled(
    db_path: str | os.PathLike[str],
    *,
    model: str | None = None,
    skip_crawl: bool = False,
    lock_path: str | os.PathLike[str] | None = None,
    crawl_settings: Mapping[str, Any] | None = None,
) -> RunResult:
    """Crawl (due sources only) -> score -> roll up, under the run lock; never raises for a stage failure.

    ``crawl_settings`` are Scrapy settings for the crawl (e.g. timeouts for a scheduler's time slot).
    """
    db_file = str(db_path)
    with run_lock(lock_path or default_lock_path(db_file)):
        db = connect(db_file)
        try:
            context: dict[str, Any] = {"model": model, "crawl_settings": dict(crawl_settings or {})}
            run_id = _start_row(db, "run", {"model": model, "skip_crawl": skip_crawl})
            stages: list[StageResult] = []
            try:
                for name in STAGES:
                    if (name == "crawl" and skip_crawl) or any(s.status == "failed" for s in stages):
                        stages.append(StageResult(name, "skipped"))
                        continue
                    stages.append(_run_stage(name, db_file, db, context))
            except KeyboardInterrupt:
                _finish_row(db, run_id, "interrupted", {"stages": [dataclasses.asdict(s) for s in stages]})
                raise
            result = RunResult(run_id, stages)
            failed = result.failed_stage
            summary = {
                "model": model,
                "skip_crawl": skip_crawl,
                "stages": {s.name: s.status for s in stages},
                "stage_runs": {s.name: s.run_id for s in stages if s.run_id is not None},
                "failed_stage": failed.name if failed else None,
                "error": failed.error if failed else None,
            }
            _finish_row(db, run_id, "ok" if result.ok else "failed", summary)
            return result
        finally:
            db.conn.close()
