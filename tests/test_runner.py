"""Scheduled runs: one at a time under a lock, one run-log row per stage, failures stop the run."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import Builder
from tiny_models import build_classifier

from crawler.identity import author_key
from reputation.cli import cli
from reputation.scheduler import default_lock_path, run_lock, run_scheduled
from storage.database import connect
from storage.errors import LockedError

ROOT = Path(__file__).resolve().parents[1]


def runs(db_path: Path) -> list[dict[str, Any]]:
    db = connect(db_path)
    try:
        return [dict(r) for r in db.query("SELECT * FROM crawl_runs ORDER BY id")]
    finally:
        db.conn.close()


def small_db(db_path: Path, n_reviews: int = 6) -> None:
    """A registry and a few stored reviews, ready to be scored and rolled up."""
    make = Builder.open(db_path).vendor("acme", name="Acme Contact")
    author_key(make.db)  # the key file a crawl would have made with these reviews
    # port 9 (discard) refuses connections: a crawl of this source fails
    make.brand("northwind", name="Northwind Air", url="http://127.0.0.1:9/trust/northwind/")
    make.engage("acme", "northwind", "2023-01-01")
    texts = ["The support agent was friendly and fixed my booking in minutes.",
             "Customer service never answered my emails; I waited three weeks for a refund.",
             "Great seats and the crew was lovely."]
    for i in range(n_reviews):
        make.review("northwind", f"2024-0{1 + i % 5}-10", review_id=f"r{i}", url=f"https://reviews.example/r{i}",
                    body=texts[i % len(texts)] + f" ({i})", title=None, seen="2024-06-01", model=None)
    make.db.conn.close()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small, untrained BERT sentiment classifier with a real tokenizer: the real loading and
    scoring code runs in seconds, and the test does not depend on the trained default model."""
    return build_classifier(tmp_path_factory.mktemp("model") / "tiny-bert", layers=1, model_id="test/tiny-bert")


def reputation(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reputation.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    with run_lock(lock):
        assert f"pid {os.getpid()}" in lock.read_text()
        with pytest.raises(LockedError, match=r"another run holds the lock .*run\.lock.*; try again later"), \
                run_lock(lock):
            pass
    with run_lock(lock):  # free again once the holder is done
        pass
    assert default_lock_path(tmp_path / "x" / "rep.db") == tmp_path / "x" / "rep.db.lock"


def test_run_exits_75_while_another_holds_the_lock(tmp_path: Path) -> None:
    db_path = tmp_path / "rep.db"
    small_db(db_path)
    lock = default_lock_path(db_path)
    with lock.open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(cli, ["--db", str(db_path), "run", "--skip-crawl"])
        with pytest.raises(LockedError):
            run_scheduled(db_path, skip_crawl=True)
    assert result.exit_code == LockedError.exit_code == 75
    assert "another run holds the lock" in result.output and str(lock) in result.output
    assert runs(db_path) == []  # the refused run touched nothing


@pytest.mark.slow
def test_two_runs_at_once_one_waits_for_the_next_slot(tmp_path: Path, tiny_model: Path) -> None:
    """Two real processes on one database and lock: one runs all stages, the other exits 75."""
    first, db_path, lock, args = _first_run_frozen_holding_the_lock(tmp_path, tiny_model)
    try:
        second = reputation(*args)
        try:
            out2, err2 = second.communicate(timeout=600)
        finally:
            if second.poll() is None:
                second.kill()
                second.communicate()
    finally:
        first.send_signal(signal.SIGCONT)  # and let it finish
    out1, err1 = first.communicate(timeout=600)
    assert second.returncode == 75, (out2, err2)
    assert "another run holds the lock" in err2 and str(lock) in err2
    assert first.returncode == 0, (out1, err1)
    assert [line.split()[1:3] for line in out1.splitlines()[:3]] == [["crawl", "skipped"], ["score", "ok"],
                                                                    ["rollup", "ok"]]
    rows = runs(db_path)
    assert sorted(r["stage"] for r in rows) == ["rollup", "run", "score"]  # one row per stage, none twice
    assert all(r["status"] == "ok" and r["finished_at"] for r in rows)
    run_row = next(r for r in rows if r["stage"] == "run")
    assert json.loads(run_row["detail"])["stages"] == {"crawl": "skipped", "score": "ok", "rollup": "ok"}
    db = connect(db_path)
    assert db["review_sentiment"].count == 6
    assert db["vendor_reputation"].count == 1
    assert dict(db.execute("SELECT key, value FROM rollup_meta WHERE key = 'model_id'").fetchall()) == {
        "model_id": "test/tiny-bert"}
    db.conn.close()


def _first_run_frozen_holding_the_lock(
    tmp_path: Path, tiny_model: Path
) -> tuple[subprocess.Popen[str], Path, Path, tuple[str, ...]]:
    """A `run` process stopped (SIGSTOP) while it holds the lock, so a second run surely meets it
    however slow the machine; a run that finished before it could be frozen is tried again afresh."""
    for attempt in range(5):
        db_path = tmp_path / f"attempt{attempt}" / "rep.db"
        db_path.parent.mkdir()
        small_db(db_path)
        lock = db_path.parent / "jobs.lock"
        args = ("--db", str(db_path), "run", "--skip-crawl", "--lock-file", str(lock), "--model", str(tiny_model))
        first = reputation(*args)
        deadline = time.monotonic() + 300
        # It holds the lock once it has written its own pid into the lock file (done after the flock).
        while True:
            ended = first.poll() is not None
            if lock.exists() and f"pid {first.pid} " in lock.read_text():
                break
            if ended:
                raise AssertionError(("the first run ended without taking the lock", *first.communicate()))
            assert time.monotonic() < deadline, "the first run did not take the lock in 300 s"
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)
        if _lock_is_held(lock):  # only `first` runs here: it is frozen holding the lock
            return first, db_path, lock, args
        first.send_signal(signal.SIGCONT)  # it was done already: let it exit, try again
        out, err = first.communicate(timeout=600)
        assert first.returncode == 0, (out, err)
    raise AssertionError("the first run always finished before it could be frozen holding the lock")


def _lock_is_held(lock: Path) -> bool:
    """Whether some process holds the flock on ``lock`` (probed without blocking, released at once)."""
    with lock.open("a") as probe:
        try:
            fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(probe.fileno(), fcntl.LOCK_UN)
        return False


def test_failed_stage_stops_the_run_and_is_logged(tmp_path: Path) -> None:
    db_path = tmp_path / "rep.db"
    small_db(db_path)
    missing_model = tmp_path / "no-such-model"
    result = CliRunner().invoke(cli, ["--db", str(db_path), "run", "--skip-crawl", "--model", str(missing_model)])
    assert result.exit_code == 1
    assert "stage 'score' failed" in result.output and str(missing_model) in result.output
    rows = {r["stage"]: r for r in runs(db_path)}
    assert set(rows) == {"run", "score"}  # rollup skipped: no row
    assert rows["score"]["status"] == "failed" and str(missing_model) in json.loads(rows["score"]["detail"])["error"]
    detail = json.loads(rows["run"]["detail"])
    assert rows["run"]["status"] == "failed" and detail["failed_stage"] == "score"
    assert detail["stages"] == {"crawl": "skipped", "score": "failed", "rollup": "skipped"}
    db = connect(db_path)
    assert db["reviews"].count == 6 and db["review_sentiment"].count == 0
    assert "vendor_reputation" not in db.table_names()
    db.conn.close()


def test_failed_crawl_keeps_its_own_row_and_skips_the_rest(tmp_path: Path) -> None:
    """A crawl whose only source refuses connections fails; score and roll-up never start."""
    db_path = tmp_path / "rep.db"
    small_db(db_path, n_reviews=0)
    quick = {"RETRY_ENABLED": False, "AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "DOWNLOAD_TIMEOUT": 5}
    result = run_scheduled(db_path, crawl_settings=quick)
    assert not result.ok and result.exit_code == 1
    assert [(s.name, s.status) for s in result.stages] == [("crawl", "failed"), ("score", "skipped"),
                                                          ("rollup", "skipped")]
    rows = runs(db_path)
    crawl_rows = [r for r in rows if r["stage"] == "crawl"]
    assert len(crawl_rows) == 1 and crawl_rows[0]["status"] == "failed"
    assert result.stages[0].run_id == crawl_rows[0]["id"]
    assert {r["stage"] for r in rows} == {"crawl", "run"}


WRITING_COMMANDS = {
    "crawl": ["crawl"],
    "score": ["score", "--no-progress"],
    "rollup": ["rollup"],
    "run": ["run", "--skip-crawl"],
    "demo": ["demo", "--no-score"],
    "vendors load": ["vendors", "load", "VENDORS"],
    "purge": ["purge", "--older-than", "30"],
}


@pytest.mark.parametrize("command", sorted(WRITING_COMMANDS))
def test_every_writing_command_exits_75_while_another_writer_holds_the_lock(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One writer at a time: each command that writes takes the database's lock (<db>.lock)
    and, while another process holds it, writes nothing and says so in one line."""
    db_path = tmp_path / "rep.db"
    small_db(db_path)
    monkeypatch.chdir(tmp_path)  # the demo's output folder, if it ever got that far
    vendors = ROOT / "datasets" / "vendors.example.yaml"
    args = [str(vendors) if a == "VENDORS" else a for a in WRITING_COMMANDS[command]]
    before = (runs(db_path), _table_counts(db_path))
    lock = default_lock_path(db_path)
    lock.write_text("pid 4242 (reputation crawl) since 2026-01-01T00:00:00+00:00\n")
    with lock.open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(cli, ["--db", str(db_path), *args])
    assert result.exit_code == 75, result.output
    assert result.stderr.splitlines() == [
        f"Error: another run holds the lock {str(lock)!r} "
        "(pid 4242 (reputation crawl) since 2026-01-01T00:00:00+00:00); try again later"
    ]
    assert (runs(db_path), _table_counts(db_path)) == before  # nothing written
    assert not (tmp_path / "demo-output").exists()


def _table_counts(db_path: Path) -> dict[str, int]:
    db = connect(db_path)
    try:
        return {t: db[t].count for t in ("vendors", "brands", "sources", "reviews", "review_sentiment")}
    finally:
        db.conn.close()


def test_a_writing_command_frees_the_lock_when_done(tmp_path: Path) -> None:
    db_path = tmp_path / "rep.db"
    small_db(db_path)
    vendors = ROOT / "datasets" / "vendors.example.yaml"
    for _ in range(2):  # the second finds the lock free: the first released it
        result = CliRunner().invoke(cli, ["--db", str(db_path), "vendors", "load", str(vendors)])
        assert result.exit_code == 0, result.output
    assert "pid" in default_lock_path(db_path).read_text()  # the last holder, for an operator
    with run_lock(default_lock_path(db_path)):
        pass


QUICK_CRAWL = "[crawl]\nsettings = { RETRY_ENABLED = false, AUTOTHROTTLE_ENABLED = false, DOWNLOAD_DELAY = 0, " \
    "DOWNLOAD_TIMEOUT = 5 }\n"
PROGRESS_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ crawl progress: .*")
LINE = re.compile(r"(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (?P<stage>crawl |score |rollup) "
                  r"(?P<status>ok|failed|skipped)  (?P<text>.+?)(  (?P<seconds>\d+\.\d) s)?")


def test_run_prints_one_timestamped_line_per_stage(tmp_path: Path, tiny_model: Path) -> None:
    """crawl with nothing due, score and roll-up: time, stage, status, counts and seconds on each line."""
    db_path = tmp_path / "rep.db"
    small_db(db_path)
    db = connect(db_path)
    with db.conn:  # crawled an hour ago: not due, so the crawl has nothing to do and says so
        db.execute("UPDATE sources SET last_crawl_at = ?, last_crawl_status = 'ok'",
                   [(datetime.now(UTC) - timedelta(hours=1)).isoformat()])
    db.conn.close()
    result = CliRunner().invoke(cli, ["--db", str(db_path), "run", "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 4, lines
    found = [LINE.fullmatch(line) for line in lines[:3]]
    assert all(found), lines
    crawl, score, rollup = (m.groupdict() for m in found if m)
    assert (crawl["stage"].strip(), crawl["status"], crawl["text"]) == ("crawl", "ok", "0 sources due")
    assert score["text"].startswith("6 scored, 0 failed, 0 already scored (model test/tiny-bert)")
    assert rollup["text"].startswith("1 vendors (")
    assert "(prior strength 20, half-life 180 d)" in rollup["text"]
    assert all(m["seconds"] is not None for m in (crawl, score, rollup))
    assert re.fullmatch(r"\S+Z run    ok  run \d+ finished", lines[3])
    assert not (tmp_path / "reputation-logs").exists()  # a run that went well leaves no log file


def test_a_failing_crawl_is_one_line_naming_the_log_file(tmp_path: Path) -> None:
    """The source refuses connections: exit 1, one line on stderr naming the log, tracebacks only in the log."""
    db_path = tmp_path / "rep.db"
    small_db(db_path, n_reviews=0)
    config = tmp_path / "quick.toml"
    config.write_text(QUICK_CRAWL)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "--config", str(config), "run"])
    assert result.exit_code == 1
    # a crawl slowed past 30 s by a loaded machine also shows plain progress lines on stderr
    [error] = [line for line in result.stderr.splitlines() if not PROGRESS_LINE.fullmatch(line)]
    assert error.startswith("Error: stage 'crawl' failed: CrawlError: crawl run ")
    log_file = Path(re.search(r"details in (\S+) \(run log", error).group(1))  # type: ignore[union-attr]
    assert log_file.parent == tmp_path / "reputation-logs" and log_file.name.startswith("run-")
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert "[scrapy" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1:3] for line in lines] == [["crawl", "failed"], ["score", "skipped"],
                                                    ["rollup", "skipped"]]
    log = log_file.read_text()
    assert "[scrapy.core.engine]" in log  # the crawl's Scrapy log
    assert "Traceback (most recent call last)" in log and "CrawlError" in log
    assert (log_file.stat().st_mode & 0o777) == 0o644
    assert "'DOWNLOAD_TIMEOUT': 5" in log or "'DOWNLOAD_TIMEOUT': '5'" in log  # [crawl] settings reached Scrapy
    rows = runs(db_path)
    assert [r["status"] for r in rows if r["stage"] == "crawl"] == ["failed"]


def test_a_failing_crawl_command_is_one_line_too(tmp_path: Path) -> None:
    db_path = tmp_path / "rep.db"
    small_db(db_path, n_reviews=0)
    log_file = tmp_path / "crawl.log"
    result = CliRunner().invoke(cli, ["--db", str(db_path), "-q", "crawl", "--log-file", str(log_file),
                                      "-s", "RETRY_ENABLED=False", "-s", "DOWNLOAD_TIMEOUT=5"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert f"the crawl's log is in {log_file}" in result.stderr and "Traceback" not in result.stderr
    assert "[scrapy.core.engine]" in log_file.read_text()


def _crawled_an_hour_ago(db_path: Path) -> None:
    """Every source crawled an hour ago and ok: none is due for a day."""
    db = connect(db_path)
    with db.conn:
        db.execute("UPDATE sources SET last_crawl_at = ?, last_crawl_status = 'ok'",
                   [(datetime.now(UTC) - timedelta(hours=1)).isoformat()])
    db.conn.close()


def test_run_with_nothing_due_starts_no_crawl_process(tmp_path: Path, tiny_model: Path) -> None:
    """0 sources due: the crawl stage says so and no Scrapy child starts; score and roll-up still run."""
    db_path = tmp_path / "rep.db"
    small_db(db_path)
    _crawled_an_hour_ago(db_path)
    log_file = tmp_path / "run.log"
    result = CliRunner().invoke(cli, ["--db", str(db_path), "run", "--model", str(tiny_model),
                                      "--log-file", str(log_file), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(s["name"], s["status"]) for s in out["stages"]] == [("crawl", "ok"), ("score", "ok"), ("rollup", "ok")]
    crawl = out["stages"][0]
    assert crawl["summary"] == "0 sources due" and crawl["counts"]["sources"] == crawl["counts"]["pages"] == 0
    [row] = [r for r in runs(db_path) if r["stage"] == "crawl"]
    assert row["id"] == crawl["run_id"] and row["status"] == "ok" and row["pages"] == 0
    assert json.loads(row["detail"])["crawl_process"] is False
    assert json.loads(row["selection"])["due_only"] is True
    log = log_file.read_text()  # the crawl child's whole log would be appended here
    assert "reputation run --db" in log and "0 sources due" in log
    assert "scrapy" not in log.lower()
    assert out["stages"][1]["counts"]["scored"] == 6
    db = connect(db_path)
    assert db["vendor_reputation"].count == 1
    db.conn.close()


def test_crawl_due_only_with_nothing_due_starts_no_crawl_process(tmp_path: Path) -> None:
    """The source refuses connections, so a child would fail: exit 0 shows none was started."""
    db_path = tmp_path / "rep.db"
    small_db(db_path, n_reviews=0)
    _crawled_an_hour_ago(db_path)
    log_file = tmp_path / "crawl.log"
    result = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", "--due-only", "--log-file", str(log_file)])
    assert result.exit_code == 0, result.output
    assert "0 sources due: no crawl process started" in result.stdout
    assert log_file.read_text() == ""  # nothing ran to write a Scrapy log
    as_json = CliRunner().invoke(cli, ["--db", str(db_path), "-q", "crawl", "--due-only", "--json"])
    row = json.loads(as_json.stdout)
    assert row["status"] == "ok" and row["pages"] == 0 and row["detail"]["crawl_process"] is False
    assert [r["status"] for r in runs(db_path) if r["stage"] == "crawl"] == ["ok", "ok"]
    unknown = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", "--due-only", "--vendor", "nobody"])
    assert unknown.exit_code == 1 and "not in the registry: vendor 'nobody'" in unknown.stderr
