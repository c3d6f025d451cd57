"""Run the `reviews` spider in a child process and report how the crawl went.

Twisted's reactor cannot be restarted inside one process, so every crawl gets a fresh
``python -m crawler.child crawl reviews`` (Scrapy's own command line, ending without the
interpreter's teardown); that also keeps a crawl's scheduler and memory apart from the caller.
The parent only launches and reports:

- it loads the layout files (crawler/layouts.yaml and ``REPUTATION_LAYOUTS``) and resolves and
  validates the sources here (a missing or broken layout file, an unknown vendor or brand fails
  before any process starts and before any run-log row is written) and hands the resolved
  list to the child in a JSON file (crawler.sources);
- the child alone writes its run-log row (crawler.pipelines.store, through storage.runlog) and
  writes the row's id to a file the parent named; the parent only reads the row back;
- a child that dies leaves its row ``running``; the next run of any stage marks it
  ``interrupted`` (storage.runlog.mark_interrupted), and the parent raises CrawlError with
  the end of the crawl log;
- the child dies with the parent and keeps the parent's writer lock until it has (see
  ``_run_child``), so a killed ``reputation crawl`` or ``run`` never leaves a crawl writing
  beside the next one;
- given a ``progress`` callback, the parent enables crawler.progress in the child, which
  appends a JSON line of counts (pages, reviews, errors, per source) to a file every second;
  the parent reads new lines while it waits and hands each to the callback.

The child finds the Scrapy project through ``SCRAPY_SETTINGS_MODULE`` alone, so it runs the
installed packages from whatever folder the caller is in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawler.extractors.layout_config import load_layouts
from crawler.identity import author_key
from crawler.parent_death import PARENT_PID_ENV
from crawler.progress import EXTENSION_PATH, PROGRESS_FILE_SETTING, PROGRESS_INTERVAL_SETTING
from crawler.sources import is_due, select_sources, write_sources_file
from storage.database import connect
from storage.errors import ReputationError
from storage.lock import held_lock_fds
from storage.runlog import RunRow, finish_run, load_run, start_run

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["CrawlError", "check_layouts", "crawl_command", "is_due", "run_crawl", "select_sources"]

SETTINGS_MODULE = "crawler.settings"
CHILD_MODULE = "crawler.child"  # Scrapy's command line, then a prompt exit
LOG_TAIL_CHARS = 4000
# On timeout the child first gets SIGTERM (Scrapy closes the spider and records the run as
# interrupted), then SIGKILL if it has not ended after this many seconds.
TERMINATE_GRACE_SECONDS = 30.0


class CrawlError(ReputationError):
    """The crawl process failed or every source failed; the message carries the log's tail.

    ``run`` is the child's run-log row when it wrote one (None if it died before); ``headline``
    is the message without the log's tail, one line for a terminal (the tail belongs in a log file).
    """

    def __init__(self, message: str, run: RunRow | None = None, headline: str | None = None) -> None:
        super().__init__(message)
        self.run = run
        self.headline = headline or (message.splitlines() or [""])[0]


def crawl_command(
    db_path: str,
    sources_file: str | os.PathLike[str],
    run_id_file: str | os.PathLike[str],
    *,
    settings: Mapping[str, Any],
) -> list[str]:
    """The child's argv: the resolved sources as a spider argument, every setting as ``-s KEY=VALUE``.

    ``-P`` keeps the current folder off ``sys.path``: the child imports the installed packages,
    never a same-named folder where the caller happens to be.
    """
    argv = [sys.executable, "-P", "-m", CHILD_MODULE, "crawl", "reviews", "-a", f"sources_file={sources_file}"]
    merged = {**settings, "REPUTATION_DB": db_path, "REPUTATION_RUN_ID_FILE": str(run_id_file)}
    for key, value in merged.items():
        argv += ["-s", f"{key}={value}"]
    return argv


Progress = Callable[[dict[str, Any]], None]  # a crawler.progress snapshot
POLL_SECONDS = 0.25  # how often the parent looks at the child and its progress file


def _with_progress(settings: Mapping[str, Any], progress_file: Path, interval: float) -> dict[str, Any]:
    """The caller's settings plus those enabling crawler.progress (kept beside any EXTENSIONS given)."""
    merged = dict(settings)
    extensions = merged.get("EXTENSIONS") or {}
    if isinstance(extensions, str):
        extensions = json.loads(extensions)
    merged["EXTENSIONS"] = json.dumps({**extensions, EXTENSION_PATH: 900})
    merged[PROGRESS_FILE_SETTING] = str(progress_file)
    merged.setdefault(PROGRESS_INTERVAL_SETTING, interval)  # a -s REPUTATION_PROGRESS_INTERVAL wins
    return merged


class _ProgressReader:
    """Hands each whole new line of the progress file to the callback (a half-written line waits)."""

    def __init__(self, path: Path, callback: Progress) -> None:
        self.path, self.callback, self.offset = path, callback, 0

    def poll(self) -> None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for line in data[: end + 1].splitlines():
            try:
                snapshot = json.loads(line)
            except ValueError:
                continue
            self.callback(snapshot)


def _wait(child: subprocess.Popen[bytes], timeout: float | None, reader: _ProgressReader | None) -> int:
    """The child's exit status, reading progress while it runs; TimeoutExpired past ``timeout``."""
    if reader is None:
        return child.wait(timeout=timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise subprocess.TimeoutExpired(child.args, timeout or 0)
        try:
            returncode = child.wait(timeout=POLL_SECONDS if left is None else min(POLL_SECONDS, left))
        except subprocess.TimeoutExpired:
            reader.poll()
            continue
        reader.poll()
        return returncode


def _run_child(
    argv: list[str], timeout: float | None, reader: _ProgressReader | None = None
) -> tuple[int | None, str]:
    """(exit status or None on timeout, the whole log)."""
    env = dict(os.environ)
    env["SCRAPY_SETTINGS_MODULE"] = SETTINGS_MODULE
    # The child dies with this thread (crawler.parent_death) and keeps the writer lock until it
    # has: no second writer can start while it may still write, and no orphan keeps the lock.
    env[PARENT_PID_ENV] = str(os.getpid())
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as captured:
        with subprocess.Popen(
            argv, env=env, stdout=captured, stderr=subprocess.STDOUT,
            pass_fds=held_lock_fds(),
        ) as child:  # fmt: skip
            try:
                returncode: int | None = _wait(child, timeout, reader)
            except subprocess.TimeoutExpired:
                returncode = None
                child.terminate()
                try:
                    child.wait(timeout=TERMINATE_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            except BaseException:  # KeyboardInterrupt in the caller: do not leave a crawl behind
                child.kill()
                child.wait()
                raise
        captured.seek(0)
        return returncode, captured.read()


def check_layouts() -> None:
    """Load every layout file now, in the caller: raises LayoutError (one line) for one that is missing or broken.

    The child would only fail on it page by page, deep in its log; the parent fails before the
    child starts and before anything is written.
    """
    load_layouts()


def _read_run_id(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError):
        return None


NOTHING_DUE = "0 sources due: no crawl process started"


def record_nothing_due(
    db: sqlite_utils.Database, *, vendors: list[str] | None = None, brands: list[str] | None = None
) -> RunRow:
    """The run-log row of a due-only crawl that found no source due, written without a crawl process.

    Shaped like the row the crawl child writes (selection, ``sources`` in detail), so readers of
    the run log need no special case; ``crawl_process`` false records that none was started.
    """
    selection = {"vendors": vendors or [], "brands": brands or [], "due_only": True}
    run_id = start_run(db, "crawl", selection=selection)
    return finish_run(db, run_id, "ok", detail={"sources": {}, "crawl_process": False, "note": NOTHING_DUE})


def run_crawl(
    db_path: str | os.PathLike[str],
    *,
    vendors: Iterable[str] | None = None,
    brands: Iterable[str] | None = None,
    due_only: bool = False,
    full: bool = False,
    settings: Mapping[str, Any] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    progress: Progress | None = None,
    progress_interval: float = 1.0,
) -> RunRow:
    """Crawl the selected sources in a child Scrapy process; return the run-log row it wrote.

    Each source gets a full or an incremental crawl (crawler.sources.crawl_kind); ``full``
    makes every one full. The choice travels to the child in the sources file's selection.

    Raises LayoutError for a missing or broken layout file and NotFoundError for an unknown
    vendor or brand (before anything starts), and CrawlError, with the tail of the crawl log,
    when the child fails, times out or every
    source failed.

    ``progress``, when given, is called in this process with a crawler.progress snapshot about
    every ``progress_interval`` seconds while the child runs, and once more with its last counts.
    The child's whole log is appended to ``log_path`` when given.
    """
    check_layouts()
    path = str(Path(db_path).resolve())
    vendor_ids, brand_ids = sorted(set(vendors or ())), sorted(set(brands or ()))
    db = connect(path)
    try:
        sources = select_sources(db, vendors=vendor_ids, brands=brand_ids, due_only=due_only)
        if due_only and not sources:  # nothing to fetch: no crawl process to start
            return record_nothing_due(db, vendors=vendor_ids, brands=brand_ids)
        author_key(db)  # a missing key is one clear line here, not a failure deep in the child's log
    finally:
        db.close()
    selection: dict[str, Any] = {"vendors": vendor_ids, "brands": brand_ids, "due_only": due_only}
    if full:
        selection["full"] = True  # recorded in the run log; absent when each source's own kind applies

    with tempfile.TemporaryDirectory(prefix="reputation-crawl-") as handoff:
        sources_file, run_id_file = Path(handoff, "sources.json"), Path(handoff, "run_id")
        write_sources_file(sources_file, selection, sources)
        child_settings: Mapping[str, Any] = settings or {}
        reader = None
        if progress is not None:
            progress_file = Path(handoff, "progress.jsonl")
            child_settings = _with_progress(child_settings, progress_file, progress_interval)
            reader = _ProgressReader(progress_file, progress)
        argv = crawl_command(path, sources_file, run_id_file, settings=child_settings)
        returncode, log = _run_child(argv, timeout, reader)
        run_id = _read_run_id(run_id_file)
    if log_path is not None:
        with Path(log_path).open("a", encoding="utf-8") as log_file:
            log_file.write(log)
    tail = log[-LOG_TAIL_CHARS:]

    run: RunRow | None = None
    if run_id is not None:
        db = connect(path)
        try:
            run = load_run(db, run_id)
        finally:
            db.close()
    name = f"crawl run {run_id}" if run_id is not None else "the crawl (no run recorded)"
    if returncode != 0:
        what = "timed out" if returncode is None else f"exited with status {returncode}"
        raise CrawlError(f"{name} {what}; end of its log:\n{tail}", run, f"{name} {what}")
    if run is None or run["status"] == "running":
        headline = f"{name} ended without closing its run-log row"
        raise CrawlError(f"{headline}; end of its log:\n{tail}", run, headline)
    if run["status"] in ("failed", "interrupted"):
        headline = f"{name} {run['status']}: errors {run['errors_by_reason']}"
        raise CrawlError(f"{headline}; end of its log:\n{tail}", run, headline)
    return run
