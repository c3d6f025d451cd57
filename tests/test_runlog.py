"""The run log on a real SQLite file, with real processes that die without closing their rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage.database import connect
from storage.errors import NotFoundError
from storage.runlog import finish_run, load_run, mark_interrupted, pid_alive, start_run, this_host, update_run

# A child that opens a run, says its id, and waits to be killed.
STARTS_AND_WAITS = textwrap.dedent(
    """
    import sys, time
    from storage.database import connect
    from storage.runlog import start_run
    db = connect(sys.argv[1])
    print(start_run(db, "score", detail={"model": "tiny"}), flush=True)
    time.sleep(120)
    """
)


def killed_run(db_path: Path) -> tuple[int, int]:
    """(run id, pid) of a child that started a run and was SIGKILLed (and reaped)."""
    child = subprocess.Popen(
        [sys.executable, "-c", STARTS_AND_WAITS, str(db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        run_id = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    return run_id, child.pid


def test_a_killed_owners_row_is_marked_interrupted_when_the_next_run_starts(db_path: Path) -> None:
    run_id, pid = killed_run(db_path)
    db = connect(db_path)
    try:
        left = load_run(db, run_id)
        assert left["status"] == "running" and left["finished_at"] is None
        assert left["pid"] == pid and left["host"] == this_host()
        assert left["detail"] == {"model": "tiny"} and left["selection"] is None
        assert not pid_alive(pid)

        next_id = start_run(db, "score")

        swept = load_run(db, run_id)
        assert swept["status"] == "interrupted" and swept["finished_at"]
        assert swept["detail"] == {"model": "tiny", "interrupted": "owner process died"}
        fresh = load_run(db, next_id)
        assert fresh["status"] == "running" and fresh["pid"] == os.getpid()
    finally:
        db.close()


def test_live_foreign_and_legacy_rows_are_left_running(db_path: Path) -> None:
    db = connect(db_path)
    try:
        mine = start_run(db, "crawl", selection={"brands": ["acme"]})
        db.execute(
            "INSERT INTO crawl_runs (stage, started_at, status, pid, host) "
            "VALUES ('crawl', '2024-01-01T00:00:00+00:00', 'running', 999999999, 'another-host')"
        )
        db.execute(
            "INSERT INTO crawl_runs (stage, started_at, status) VALUES ('crawl', '2024-01-01T00:00:00+00:00', 'running')"
        )
        assert mark_interrupted(db) == []
        statuses = [row[0] for row in db.execute("SELECT status FROM crawl_runs ORDER BY id")]
        assert statuses == ["running", "running", "running"]
        assert load_run(db, mine)["selection"] == {"brands": ["acme"]}
    finally:
        db.close()


def test_finish_run_records_counts_and_returns_the_typed_row(db_path: Path) -> None:
    db = connect(db_path)
    try:
        run_id = start_run(db, "crawl", selection={"brands": []})
        update_run(db, run_id, pages=3)
        assert load_run(db, run_id)["pages"] == 3 and load_run(db, run_id)["status"] == "running"
        row = finish_run(
            db, run_id, "ok", items_new=4, dropped_by_reason={"duplicate_in_run": 2, "missing_body": 1},
            errors_by_reason={"http_500": 1}, detail={"finish_reason": "finished"},
        )  # fmt: skip
        assert row["status"] == "ok" and row["finished_at"] and row["pages"] == 3
        assert row["items_new"] == 4 and row["items_dropped"] == 3 and row["errors"] == 1
        assert row["dropped_by_reason"] == {"duplicate_in_run": 2, "missing_body": 1}
        assert row["errors_by_reason"] == {"http_500": 1} and row["detail"] == {"finish_reason": "finished"}
        with pytest.raises(ValueError, match="final status"):
            finish_run(db, run_id, "running")
        with pytest.raises(ValueError, match="unknown run status"):
            update_run(db, run_id, status="done")  # type: ignore[arg-type]
        with pytest.raises(NotFoundError, match="no run 999"):
            load_run(db, 999)
        with pytest.raises(NotFoundError, match="no run 999"):
            finish_run(db, 999, "failed")
    finally:
        db.close()
