"""The job's stages in one place: crawl -> score -> roll up (then, for reports, scorecards).

``reputation run`` (reputation/scheduler.py) wraps each stage in its run log and lock;
``reputation demo`` (reputation/demo.py) runs them against the embedded site. Both take the
stages and their order from here, so the two can never drift apart. A stage reads what it
needs from a :class:`Job` and leaves there what a later stage needs (the model the scores
came from, which the roll-up then uses).

Heavy libraries stay out of this module's imports: scoring loads torch (1-2 s) and reports
load matplotlib, so each is imported inside the function that needs it, only when that step
runs. The crawl needs no such care: crawler.launcher runs Scrapy in a child process and
imports none of it here. When only due sources are crawled and none is due, no child starts
at all (it would take seconds to find nothing): the crawl's run-log row says so instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from crawler.launcher import run_crawl  # light: Scrapy itself only ever runs in its child process
from reputation.rollups.build import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_PRIOR_STRENGTH,
    RollupSummary,
    build_rollups,
)
from storage.runlog import RunRow

if TYPE_CHECKING:
    from reputation.scoring.job import ScoreSummary

STAGES: tuple[str, ...] = ("crawl", "score", "rollup")
# Stages that open and close their own crawl_runs row (crawler.launcher, reputation.scoring.job);
# a caller keeping a run log writes the row for the others.
OWN_RUN_LOG: frozenset[str] = frozenset({"crawl", "score"})
SCORECARD_FORMATS: tuple[str, ...] = ("html", "csv", "json")


@dataclass
class Job:
    """What every stage reads, and what an earlier stage leaves for a later one."""

    db_path: str
    db: sqlite_utils.Database
    model: str | None = None  # sentiment model to score with (None: the configured default)
    crawl_settings: Mapping[str, Any] = field(default_factory=dict)  # Scrapy settings for the crawl
    due_only: bool = False  # crawl only the sources that are due (the scheduler), or all (the demo)
    full: bool = False  # walk every listing to its end instead of an incremental re-crawl
    progress: bool = False  # a progress bar while scoring (for people, not for cron logs)
    model_id: str | None = None  # set by the score stage; the roll-up uses the same model
    prior_strength: float = DEFAULT_PRIOR_STRENGTH  # roll-up shrinkage (reputation.settings)
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS  # roll-up recency half-life
    crawl_log: str | os.PathLike[str] | None = None  # file the crawl child's whole log is appended to
    crawl_progress: Callable[[dict[str, Any]], None] | None = None  # crawler.progress snapshots, as they come


def crawl(job: Job) -> RunRow:
    """Crawl the sources; returns the crawl's own crawl_runs row and raises when the crawl fails."""
    return run_crawl(
        job.db_path,
        due_only=job.due_only,
        full=job.full,
        settings=dict(job.crawl_settings),
        log_path=job.crawl_log,
        progress=job.crawl_progress,
    )


def score(job: Job) -> ScoreSummary:
    """Score every review that lacks a current sentiment row (the job writes its own run-log row)."""
    from reputation.scoring.job import score_reviews  # torch: loaded only when scoring

    summary = score_reviews(job.db, model=job.model, progress=job.progress)
    job.model_id = summary.model_id
    return summary


def rollup(job: Job) -> RollupSummary:
    """Rebuild the roll-up tables from the scores of the model the score stage used (if it ran)."""
    return build_rollups(
        job.db, model_id=job.model_id, prior_strength=job.prior_strength, half_life_days=job.half_life_days
    )


StageFunction = Callable[[Job], Any]
STAGE_FUNCTIONS: dict[str, StageFunction] = {"crawl": crawl, "score": score, "rollup": rollup}


def write_scorecards(job: Job, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Every vendor's scorecard in every format, from the roll-ups just built."""
    # matplotlib (charts) is slow to import and the scheduled run never writes reports
    from reputation.scorecards.content import build_scorecards
    from reputation.scorecards.overview import build_overview
    from reputation.scorecards.render import write_scorecards as write

    return write(build_scorecards(job.db), out_dir, SCORECARD_FORMATS, overview=build_overview(job.db))
