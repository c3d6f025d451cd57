"""The database file guards: bad --db files are refused with one line, exit 1, and left untouched.

Everything runs against real SQLite files and the real CLI. Read-only files are made read-only for
real: as an unprivileged user (setpriv) where chmod binds, and with the immutable attribute
(chattr +i), which binds root too; each test skips with the reason when the tool is missing.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from reputation.cli import cli
from reputation.commands.common import check_as_of
from storage.database import connect, database_error, latest_version, schema_version
from storage.errors import (
    BadValueError,
    ForeignDatabaseError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
    SchemaTooNewError,
)


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), obj={})
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        result.exception
    )
    return result.exit_code, result.output


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: "), output
    assert "Traceback" not in output
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def make_db(path: Path) -> Path:
    connect(path).conn.close()
    return path


# --------------------------------------------------------------------------- not SQLite


@pytest.mark.parametrize(
    "content",
    [b"vendor,brand\nacme,shop\n", b"x", b"SQLite format 2\x00" + b"\x00" * 100, b"\x89PNG\r\n\x1a\n" * 200],
    ids=["csv", "one-byte", "near-header", "binary"],
)
def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    target = tmp_path / "notes.db"
    target.write_bytes(content)
    code, output = run_cli("--db", str(target), "init")
    assert code == 1
    assert one_error_line(output) == f"Error: {target} is not an SQLite database"
    assert target.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no -wal/-shm/-journal


def test_a_directory_as_db_is_refused(tmp_path: Path) -> None:
    # click's Path(dir_okay=False) catches it on the CLI; the library says it in its own words
    with pytest.raises(NotADatabaseError, match="is a directory"):
        connect(tmp_path)


def test_a_sqlite_header_with_garbage_after_it_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "broken.db"
    target.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    before = target.read_bytes()
    code, output = run_cli("--db", str(target), "init")
    assert code == 1
    line = one_error_line(output)
    assert str(target) in line and ("not an SQLite database" in line or "damaged" in line)
    assert target.read_bytes() == before


def test_an_empty_file_is_a_new_database(tmp_path: Path) -> None:
    target = tmp_path / "empty.db"
    target.touch()
    code, output = run_cli("--db", str(target), "init")
    assert code == 0, output
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == latest_version()


# --------------------------------------------------------------------------- other applications


def test_another_applications_database_is_not_migrated(tmp_path: Path) -> None:
    target = tmp_path / "crm.db"
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.close()
    before = snapshot(tmp_path)
    code, output = run_cli("--db", str(target), "init")
    assert code == 1
    line = one_error_line(output)
    assert "not a reputation database" in line and "customers" in line and "refusing to add tables" in line
    assert snapshot(tmp_path) == before
    check = sqlite3.connect(target)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    assert [r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["customers"]


def test_a_rails_style_schema_migrations_table_is_not_ours(tmp_path: Path) -> None:
    target = tmp_path / "app.db"
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('20240101120000')")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(ForeignDatabaseError, match="not a reputation database"):
        connect(target)


# --------------------------------------------------------------------------- newer schema


def test_a_database_from_a_newer_release_is_refused_unchanged(tmp_path: Path) -> None:
    target = make_db(tmp_path / "future.db")
    future = latest_version() + 7
    with sqlite3.connect(target) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, 'later', 'x')",
            (future,),
        )
    conn.close()
    for side in tmp_path.glob("future.db-*"):
        side.unlink()
    before = snapshot(tmp_path)
    code, output = run_cli("--db", str(target), "init")
    assert code == 1
    line = one_error_line(output)
    assert f"schema version {future}" in line and f"up to {latest_version()}" in line
    with pytest.raises(SchemaTooNewError):
        connect(target)
    assert snapshot(tmp_path) == before


def test_an_up_to_date_database_opens_and_keeps_its_version(tmp_path: Path) -> None:
    target = make_db(tmp_path / "ok.db")
    db = connect(target)
    assert schema_version(db) == latest_version()
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    db.conn.close()


# --------------------------------------------------------------------------- read-only


def _can_chattr(folder: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    probe = folder / "probe"
    probe.touch()
    ok = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    probe.unlink()
    return ok


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[list[Path]]:
    """Paths put here get the immutable attribute (writes fail even for root); cleared after."""
    if not _can_chattr(tmp_path):
        pytest.skip("chattr +i is not available on this file system")
    marked: list[Path] = []
    yield marked
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _freeze(path: Path, marked: list[Path]) -> None:
    subprocess.run(["chattr", "+i", str(path)], check=True)
    marked.append(path)


def test_an_immutable_database_file_is_refused(tmp_path: Path, immutable: list[Path]) -> None:
    target = make_db(tmp_path / "frozen.db")
    _freeze(target, immutable)
    before = target.read_bytes()
    code, output = run_cli("--db", str(target), "init")
    assert code == 1
    assert "read-only" in one_error_line(output)
    assert target.read_bytes() == before


def test_a_read_only_folder_without_wal_files_is_refused(tmp_path: Path, immutable: list[Path]) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    target = make_db(folder / "r.db")
    for side in folder.glob("r.db-*"):
        side.unlink()
    _freeze(folder, immutable)
    code, output = run_cli("--db", str(target), "init")
    assert code == 1
    line = one_error_line(output)
    assert "read-only" in line and "r.db-wal" in line
    code, output = run_cli("--db", str(folder / "new.db"), "init")
    assert code == 1
    assert "not writable" in one_error_line(output)


def test_sqlite_readonly_errors_map_to_one_clear_error(tmp_path: Path, immutable: list[Path]) -> None:
    """What SQLite itself raises on a file it cannot write becomes a ReadOnlyDatabaseError."""
    target = make_db(tmp_path / "frozen.db")
    _freeze(target, immutable)
    conn = sqlite3.connect(target)
    with pytest.raises(sqlite3.OperationalError) as caught:
        conn.execute("CREATE TABLE t (a)")
    conn.close()
    mapped = database_error(caught.value, str(target))
    assert isinstance(mapped, ReadOnlyDatabaseError)
    assert str(target) in str(mapped)


def test_sqlite_notadb_error_maps_to_not_a_database(tmp_path: Path) -> None:
    target = tmp_path / "text.db"
    target.write_text("just text, long enough to be a page header of sorts " * 20)
    conn = sqlite3.connect(target)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        conn.execute("SELECT * FROM sqlite_master").fetchall()
    conn.close()
    assert isinstance(database_error(caught.value, str(target)), NotADatabaseError)


def _nobody() -> tuple[int, int] | None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    try:
        import pwd

        entry = pwd.getpwnam("nobody")
    except (ImportError, KeyError):
        return None
    return entry.pw_uid, entry.pw_gid


def _as_user(uid: int, gid: int, *argv: str) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]


def _checkout_readable_by(uid: int, gid: int) -> bool:
    """Whether that user can import the project: a checkout in a private folder (mktemp -d) is not."""
    probe = subprocess.run(_as_user(uid, gid, sys.executable, "-c", "import reputation.cli"),
                           capture_output=True, cwd="/", timeout=600, check=False)  # fmt: skip
    return probe.returncode == 0


@pytest.mark.parametrize("what", ["file", "folder"])
def test_chmod_read_only_as_an_ordinary_user(what: str) -> None:
    """The user's own case: chmod 0444 file or 0555 folder, the real CLI run as an unprivileged user."""
    ids = _nobody()
    if ids is None:
        pytest.skip("needs root, setpriv and a 'nobody' user to run the CLI unprivileged")
    uid, gid = ids
    if not _checkout_readable_by(uid, gid):
        pytest.skip("the unprivileged user cannot read this checkout (a private folder above it)")
    base = Path(tempfile.mkdtemp(prefix="reputation-ro-"))
    try:
        base.chmod(0o755)
        folder = base / "data"
        folder.mkdir()
        target = make_db(folder / "r.db")
        for side in folder.glob("r.db-*"):
            side.unlink()
        for path in (base, folder, target):
            os.chown(path, uid, gid)
        if what == "file":
            target.chmod(0o444)
        else:
            folder.chmod(0o555)
        before = target.read_bytes()
        result = subprocess.run(
            _as_user(uid, gid, sys.executable, "-m", "reputation.cli", "--db", str(target), "init"),
            capture_output=True, text=True, cwd=base, env={**os.environ, "HOME": str(base)}, timeout=600,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        line = one_error_line(result.stderr)
        assert "read-only" in line and str(target) in line
        assert result.stdout == ""
        assert target.read_bytes() == before
    finally:
        folder.chmod(0o755)
        shutil.rmtree(base)


# --------------------------------------------------------------------------- --as-of


def test_check_as_of_refuses_the_future() -> None:
    today = date(2025, 3, 10)
    assert check_as_of(None, today=today) is None
    assert check_as_of(datetime(2025, 3, 1, 0, 0), today=today) == date(2025, 3, 1)
    assert check_as_of(date(2025, 3, 11), today=today) == date(2025, 3, 11)  # a time zone ahead
    with pytest.raises(BadValueError, match=r"--as-of 2026-03-10 is in the future \(today is 2025-03-10, UTC\)"):
        check_as_of(date(2026, 3, 10), today=today)


def test_check_as_of_uses_today_in_utc() -> None:
    with pytest.raises(BadValueError):
        check_as_of(date(9999, 1, 1))
    assert check_as_of(date(2000, 1, 1)) == date(2000, 1, 1)


def test_rollup_as_of_the_future_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    target = make_db(tmp_path / "asof.db")
    before = snapshot(tmp_path)
    code, output = run_cli("--db", str(target), "rollup", "--as-of", "2999-01-01")
    assert code == 1
    assert one_error_line(output).startswith("Error: --as-of 2999-01-01 is in the future")
    assert snapshot(tmp_path) == before


def test_a_lock_held_past_the_timeout_maps_to_busy(tmp_path: Path) -> None:
    target = make_db(tmp_path / "busy.db")
    holder = sqlite3.connect(target, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(target, timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            waiter.execute("BEGIN IMMEDIATE")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        waiter.close()
    mapped = database_error(caught.value, str(target))
    assert mapped is not None and mapped.exit_code == 75 and "locked" in str(mapped)
