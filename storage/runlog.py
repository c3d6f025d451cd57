"""The run log: the one place that writes ``crawl_runs`` rows (crawl, score, rollup and run stages).

A stage opens its row with ``start_run`` (status ``running``, the owner's pid and host
recorded), may move its counters on with ``update_run``, and closes it with ``finish_run``.
Readers get a ``RunRow`` from ``load_run``: a typed dict with the JSON columns decoded.

A process that dies without finishing (SIGKILL, out of memory, power loss) cannot close its
own row. ``mark_interrupted`` finds rows still ``running`` whose owner on this host is no
longer alive and marks them ``interrupted``; ``start_run`` calls it, so every new run sweeps
up after the dead ones. Rows written before the pid was recorded, and rows of other hosts,
are left alone: their owners cannot be checked from here. (Should the system hand a dead
owner's pid to a new process, the row waits until that process ends too.) Unix only, like
the scheduler's flock.

    run_id = start_run(db, "score", detail={"model": "default"})
    ...
    finish_run(db, run_id, "ok", items_new=120, errors_by_reason={"too_long": 2})
    load_run(db, run_id)["status"]  # -> "ok"
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack, cast, get_args

import sqlite_utils

from storage.database import transaction, utcnow
from storage.errors import NotFoundError

RunStatus = Literal["running", "ok", "failed", "interrupted"]
RUN_STATUSES: frozenset[str] = frozenset(get_args(RunStatus))
JSON_COLUMNS = ("dropped_by_reason", "errors_by_reason", "selection", "detail")


class RunRow(TypedDict):
    """One ``crawl_runs`` row, JSON columns decoded (``selection`` stays None when not given)."""

    id: int
    stage: str  # crawl, score, rollup, run
    started_at: str  # ISO 8601 UTC
    finished_at: str | None
    status: RunStatus
    pages: int
    items_new: int
    items_updated: int
    items_unchanged: int
    items_dropped: int
    dropped_by_reason: dict[str, int]
    errors: int
    errors_by_reason: dict[str, int]
    selection: dict[str, Any] | None
    detail: dict[str, Any]
    pid: int | None  # owner process; None for rows written before migration 6
    host: str | None


class RunCounts(TypedDict, total=False):
    """The counts a stage may set on its row (``update_run``, ``finish_run``); None keeps a value."""

    pages: int | None
    items_new: int | None
    items_updated: int | None
    items_unchanged: int | None
    dropped_by_reason: Mapping[str, int] | None
    errors_by_reason: Mapping[str, int] | None
    errors: int | None
    detail: Mapping[str, Any] | None


def this_host() -> str:
    """The host name recorded with a run; pids are only compared on the same host."""
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (a zombie, killed but not reaped, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no /proc (macOS): signal 0 is all we can know
    # "pid (command) STATE ...": the command may hold spaces and parentheses, the state follows the last ")".
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def decode_run(row: Mapping[str, Any]) -> RunRow:
    """A raw ``crawl_runs`` row (as sqlite-utils returns it) with its JSON columns decoded."""
    run = dict(row)
    for column in JSON_COLUMNS:
        value = run.get(column)
        if isinstance(value, str) and value:
            run[column] = json.loads(value)
        elif column == "selection":
            run[column] = None
        else:
            run[column] = {}
    run.setdefault("pid", None)
    run.setdefault("host", None)
    return cast(RunRow, run)


def load_run(db: sqlite_utils.Database, run_id: int) -> RunRow:
    """The row with this id; NotFoundError when there is none."""
    rows = list(db.query("SELECT * FROM crawl_runs WHERE id = ?", [run_id]))
    if not rows:
        raise NotFoundError(f"no run {run_id} in the run log (crawl_runs)")
    return decode_run(rows[0])


def mark_interrupted(db: sqlite_utils.Database) -> list[int]:
    """Mark ``interrupted`` every ``running`` row whose owner on this host is dead; return their ids."""
    host = this_host()
    with transaction(db) as conn:
        candidates = conn.execute(
            "SELECT id, pid FROM crawl_runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL",
            (host,),
        ).fetchall()
        dead = [run_id for run_id, pid in candidates if not pid_alive(int(pid))]
        now = utcnow()
        for run_id in dead:
            detail = conn.execute("SELECT detail FROM crawl_runs WHERE id = ?", (run_id,)).fetchone()[0]
            merged = {**(json.loads(detail) if detail else {}), "interrupted": "owner process died"}
            conn.execute(
                "UPDATE crawl_runs SET status = 'interrupted', finished_at = COALESCE(finished_at, ?), detail = ? "
                "WHERE id = ? AND status = 'running'",
                (now, _dumps(merged), run_id),
            )
    return dead


def start_run(
    db: sqlite_utils.Database,
    stage: str,
    *,
    selection: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Open a ``running`` row owned by this process and return its id.

    Rows left ``running`` by dead processes are marked ``interrupted`` first.
    """
    mark_interrupted(db)
    with transaction(db) as conn:
        cursor = conn.execute(
            "INSERT INTO crawl_runs (stage, started_at, status, selection, detail, pid, host) "
            "VALUES (?, ?, 'running', ?, ?, ?, ?)",
            (
                stage,
                utcnow(),
                _dumps(selection) if selection is not None else None,
                _dumps(detail) if detail is not None else None,
                os.getpid(),
                this_host(),
            ),
        )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def update_run(
    db: sqlite_utils.Database, run_id: int, *, status: RunStatus | None = None, **counts: Unpack[RunCounts]
) -> None:
    """Set the given columns of a row; the others keep their values.

    ``items_dropped`` and ``errors`` follow from the by-reason counts unless ``errors`` is given
    (a stage may count an error it has no reason for).
    """
    if status is not None and status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {sorted(RUN_STATUSES)}")
    unknown = sorted(set(counts) - RunCounts.__annotations__.keys())
    if unknown:
        raise TypeError(f"update_run() got unexpected keyword arguments {unknown}")
    dropped_by_reason = counts.get("dropped_by_reason")
    errors_by_reason = counts.get("errors_by_reason")
    errors = counts.get("errors")
    detail = counts.get("detail")
    values: dict[str, Any] = {
        "status": status,
        "pages": counts.get("pages"),
        "items_new": counts.get("items_new"),
        "items_updated": counts.get("items_updated"),
        "items_unchanged": counts.get("items_unchanged"),
    }
    if dropped_by_reason is not None:
        values["dropped_by_reason"] = _dumps(dict(dropped_by_reason))
        values["items_dropped"] = sum(dropped_by_reason.values())
    if errors_by_reason is not None:
        values["errors_by_reason"] = _dumps(dict(errors_by_reason))
        values["errors"] = sum(errors_by_reason.values())
    if errors is not None:
        values["errors"] = errors
    if detail is not None:
        values["detail"] = _dumps(dict(detail))
    values = {column: value for column, value in values.items() if value is not None}
    if not values:
        return
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    with transaction(db) as conn:
        cursor = conn.execute(f"UPDATE crawl_runs SET {assignments} WHERE id = :id", {**values, "id": run_id})
        if cursor.rowcount == 0:
            raise NotFoundError(f"no run {run_id} in the run log (crawl_runs)")


def finish_run(db: sqlite_utils.Database, run_id: int, status: RunStatus, **counts: Unpack[RunCounts]) -> RunRow:
    """Close a row with its final status (ok, failed or interrupted) and counts; return it.

    Runs inside the caller's transaction when there is one, so a stage can close its row
    together with its last writes.
    """
    if status == "running":
        raise ValueError("finish_run needs a final status (ok, failed or interrupted), not 'running'")
    with transaction(db) as conn:
        update_run(db, run_id, status=status, **counts)
        conn.execute("UPDATE crawl_runs SET finished_at = ? WHERE id = ?", (utcnow(), run_id))
    return load_run(db, run_id)
