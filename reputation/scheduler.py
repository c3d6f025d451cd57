"""Scheduled runs: crawl due sources, score new reviews, rebuild roll-ups — once at a time.

A cron job or systemd timer calls ``reputation run``. The database's writer lock
(storage.lock: an exclusive, non-blocking ``flock`` on ``<db>.lock``, the one every writing
command takes) keeps two runs, or a run and a crawl, from overlapping; the loser fails fast
with ``LockedError`` (exit 75, "try again later"). The crawl's child process inherits the
lock and dies with the run (crawler.launcher), so a killed run never leaves a crawl behind
that a second run would start beside. Every stage that runs leaves
one row in the run log, ``crawl_runs`` (crawl and score write their own; the scheduler
writes the others through storage.runlog), and the whole run one more with stage 'run'. A failing stage is recorded as failed and the stages after it are
skipped; each stage commits its own work in its own transactions, so the database
holds either a stage's complete result or none of it.

Each stage's result carries its start, duration, counts and a one-line summary
(:func:`stage_line`: ``2026-11-29T03:10:02Z crawl  ok  3 sources, 1,585 pages, 3,109 reviews,
0 errors  41.2 s``), and a failed one its full traceback, for the caller's log file: the
terminal gets one line. Roll-up parameters and the model not given by the caller come from
the settings stored in the database (reputation.settings), then the defaults.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from crawler.launcher import CrawlError, check_layouts
from reputation import pipeline
from reputation.logs import utc_stamp
from reputation.settings import SECTIONS, stored_settings
from storage.database import connect, utcnow
from storage.lock import lock_file, lock_path_for
from storage.runlog import RunStatus, finish_run, load_run, start_run

STAGES = pipeline.STAGES  # the order is the pipeline's; kept here for callers of this module
STAGE_FAILED_EXIT = 1


@dataclass
class StageResult:
    name: str
    status: str  # ok, failed, skipped
    run_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # one line
    started_at: str | None = None  # UTC, ISO 8601 with Z
    finished_at: str | None = None
    seconds: float | None = None
    counts: dict[str, Any] = field(default_factory=dict)  # what the stage did, for people and --json
    summary: str = ""  # the counts in words
    traceback: str | None = None  # the whole traceback of a failure, for a log file (never the terminal)


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
    """The lock lives beside the database so every writer of one file shares it (storage.lock)."""
    return lock_path_for(db_path)


def run_lock(lock_path: str | os.PathLike[str]) -> AbstractContextManager[IO[str]]:
    """Hold the exclusive writer lock for the duration, or raise LockedError at once."""
    return lock_file(lock_path, purpose="reputation run")


def _jsonable(value: Any) -> Any:
    """Stage summaries (dicts or dataclasses) as JSON-safe data for the run log."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def _last_row_id(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM crawl_runs").fetchone()[0])


def _own_row(db: sqlite_utils.Database, stage: str, after_id: int) -> int | None:
    """The row a stage wrote for itself during this run (crawl and score log their own work)."""
    row = db.execute("SELECT MIN(id) FROM crawl_runs WHERE stage = ? AND id > ?", (stage, after_id)).fetchone()
    return None if row[0] is None else int(row[0])


def _close_stage(db: sqlite_utils.Database, stage: str, row_id: int | None, after_id: int, started_at: str,
                 status: RunStatus, detail: dict[str, Any]) -> int:
    """Exactly one run-log row per stage: the one opened for it, else the stage's own, else a new one."""
    if row_id is None:
        own = _own_row(db, stage, after_id)
        if own is not None:
            # A stage that died before closing its own row leaves it 'running'; close it.
            if load_run(db, own)["status"] == "running":
                finish_run(db, own, status)
            return own
        # The stage failed before it could open its own row: write one for it.
        row_id = start_run(db, stage)
        detail = {**detail, "stage_started_at": started_at}
    finish_run(db, row_id, status, errors=1 if status == "failed" else 0, detail=detail)
    return row_id


def _stage_detail(name: str, outcome: Any) -> dict[str, Any]:
    """What the run log keeps of a stage's outcome (the crawl's own row holds the rest)."""
    if name == "crawl":
        keys = ("id", "status", "pages", "items_new", "items_updated", "items_dropped", "errors")
        return {"crawl_run": {k: outcome.get(k) for k in keys}}
    return {"result": _jsonable(outcome)}


def stage_counts(name: str, outcome: Any, job: pipeline.Job) -> tuple[dict[str, Any], str]:
    """(counts, the same in words) of a stage's outcome."""
    if name == "crawl":
        sources = len((outcome.get("detail") or {}).get("sources") or {})
        reviews = sum(int(outcome.get(k) or 0) for k in ("items_new", "items_updated", "items_unchanged"))
        counts = {"sources": sources, "pages": int(outcome.get("pages") or 0), "reviews": reviews,
                  "new": int(outcome.get("items_new") or 0), "errors": int(outcome.get("errors") or 0),
                  "crawl_run": outcome.get("id")}
        if job.due_only and sources == 0:
            return counts, "0 sources due"
        return counts, (f"{sources:,} sources{' due' if job.due_only else ''}, {counts['pages']:,} pages, "
                        f"{reviews:,} reviews ({counts['new']:,} new), {counts['errors']:,} errors")
    if name == "score":
        counts = {k: getattr(outcome, k) for k in ("scored", "rescored", "skipped", "flagged", "failed",
                                                    "model_id", "model_revision")}
        return counts, (f"{outcome.scored:,} scored, {outcome.failed:,} failed, {outcome.skipped:,} already "
                        f"scored (model {outcome.model_id})")
    if name == "rollup":
        counts = {k: getattr(outcome, k) for k in ("n_vendors", "n_vendors_ranked", "n_brands", "n_reviews",
                                                    "model_id", "model_revision")}
        counts.update(as_of=str(outcome.as_of), prior_strength=job.prior_strength,
                      half_life_days=job.half_life_days)
        return counts, (f"{outcome.n_vendors:,} vendors ({outcome.n_vendors_ranked:,} ranked), "
                        f"{outcome.n_brands:,} brands, {outcome.n_reviews:,} reviews "
                        f"(prior strength {job.prior_strength:g}, half-life {job.half_life_days:g} d)")
    return {}, ""


def _one_line(exc: BaseException) -> str:
    """The error without what follows its first line (a crawl's log tail goes to the log file)."""
    text = exc.headline if isinstance(exc, CrawlError) else (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"


def stage_line(stage: StageResult) -> str:
    """``2026-11-29T03:10:02Z crawl  ok  3 sources, 1,585 pages, 3,109 reviews, 0 errors  41.2 s``."""
    stamp = stage.finished_at or utc_stamp()
    text = stage.summary if stage.status != "failed" else (stage.error or "")
    line = f"{stamp} {stage.name:<6} {stage.status}  {text}".rstrip()
    return line + (f"  {stage.seconds:.1f} s" if stage.seconds is not None else "")


def _run_stage(name: str, job: pipeline.Job) -> StageResult:
    db = job.db
    after_id, started_at = _last_row_id(db), utcnow()
    began, stamp = time.monotonic(), utc_stamp()
    # Stages that keep no run log of their own get a row now, 'running' while they work.
    row_id = None if name in pipeline.OWN_RUN_LOG else start_run(db, name)
    try:
        outcome = pipeline.STAGE_FUNCTIONS[name](job)
        detail = _stage_detail(name, outcome)
        counts, summary = stage_counts(name, outcome, job)
    except KeyboardInterrupt:
        _abandon(db)
        _close_stage(db, name, row_id, after_id, started_at, "interrupted", {"error": "interrupted"})
        raise
    except Exception as exc:  # a stage may fail in any way; record it, stop the run
        _abandon(db)
        message = _one_line(exc)
        detail = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
        row_id = _close_stage(db, name, row_id, after_id, started_at, "failed", detail)
        return StageResult(name, "failed", row_id, detail, message, stamp, utc_stamp(),
                           round(time.monotonic() - began, 3), traceback=traceback.format_exc())
    row_id = _close_stage(db, name, row_id, after_id, started_at, "ok", detail)
    return StageResult(name, "ok", row_id, detail, None, stamp, utc_stamp(), round(time.monotonic() - began, 3),
                       counts, summary)


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
    prior_strength: float | None = None,
    half_life_days: float | None = None,
    full: bool = False,
    crawl_log: str | os.PathLike[str] | None = None,
    crawl_progress: Callable[[dict[str, Any]], None] | None = None,
    on_stage: Callable[[StageResult], None] | None = None,
) -> RunResult:
    """Crawl (due sources only) -> score -> roll up, under the run lock; never raises for a stage failure.

    ``crawl_settings`` are Scrapy settings for the crawl (e.g. timeouts for a scheduler's time slot).
    ``model``, ``prior_strength`` and ``half_life_days`` left None come from the settings stored
    in the database, else the defaults. ``crawl_log`` receives the crawl child's whole log,
    ``crawl_progress`` its progress snapshots, and ``on_stage`` each stage's result as it ends
    (skipped ones too).
    A missing or broken layout file (``REPUTATION_LAYOUTS``) raises LayoutError before the lock is
    taken or any run-log row is written: no stage could crawl with it.
    """
    db_file = str(db_path)
    if not skip_crawl:
        check_layouts()
    with run_lock(lock_path or default_lock_path(db_file)):
        db = connect(db_file)
        try:
            stored = stored_settings(db)

            def chosen(value: Any, name: str) -> Any:
                section, key = name.split(".")
                return value if value is not None else stored.get(name, SECTIONS[section][key].default)

            job = pipeline.Job(
                db_file, db, model=chosen(model, "score.model"), crawl_settings=dict(crawl_settings or {}),
                due_only=True, full=full, prior_strength=float(chosen(prior_strength, "rollup.prior_strength")),
                half_life_days=float(chosen(half_life_days, "rollup.half_life_days")), crawl_log=crawl_log,
                crawl_progress=crawl_progress,
            )
            run_id = start_run(db, "run", detail={"model": job.model, "skip_crawl": skip_crawl,
                                                  "prior_strength": job.prior_strength,
                                                  "half_life_days": job.half_life_days})
            stages: list[StageResult] = []
            try:
                for name in pipeline.STAGES:
                    if (name == "crawl" and skip_crawl) or any(s.status == "failed" for s in stages):
                        why = "--skip-crawl" if name == "crawl" and skip_crawl else "an earlier stage failed"
                        stage = StageResult(name, "skipped", summary=why, finished_at=utc_stamp())
                    else:
                        stage = _run_stage(name, job)
                    stages.append(stage)
                    if on_stage is not None:
                        on_stage(stage)
            except KeyboardInterrupt:
                finish_run(db, run_id, "interrupted", detail={"stages": [_jsonable(s) for s in stages]})
                raise
            result = RunResult(run_id, stages)
            failed = result.failed_stage
            summary = {
                "model": job.model,
                "skip_crawl": skip_crawl,
                "stages": {s.name: s.status for s in stages},
                "stage_runs": {s.name: s.run_id for s in stages if s.run_id is not None},
                "failed_stage": failed.name if failed else None,
                "error": failed.error if failed else None,
            }
            finish_run(db, run_id, "ok" if result.ok else "failed", errors=0 if result.ok else 1, detail=summary)
            return result
        finally:
            db.conn.close()
