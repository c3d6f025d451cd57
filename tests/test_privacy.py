"""Personal data: the author key lives outside the database; `reputation purge` removes old text.

Real SQLite files, the real pipelines on a Scrapy crawler object, the real CLI through CliRunner.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner
from conftest import Builder
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler.identity import AUTHOR_KEY_ENV, AUTHOR_KEY_SETTING, AuthorKeyError, author_hash, author_key
from crawler.items import ReviewItem
from crawler.launcher import run_crawl
from crawler.pipelines import DedupePipeline, NormalizePipeline, StorePipeline
from reputation.cli import cli
from reputation.commands.purge import cutoff_day
from reputation.rollups.build import build_rollups
from reputation.rollups.views import TABLES, ensure_search
from storage.database import connect
from storage.errors import BadValueError

OLD_KEY = "11" * 32


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTHOR_KEY_ENV, raising=False)


def key_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".key")


def open_crawl(db_path: Path) -> tuple[DedupePipeline, StorePipeline, NormalizePipeline]:
    crawler = get_crawler(settings_dict={"REPUTATION_DB": str(db_path)})
    crawler.stats = MemoryStatsCollector(crawler)
    dedupe, store = DedupePipeline.from_crawler(crawler), StorePipeline.from_crawler(crawler)
    dedupe.open_spider()
    store.open_spider()
    return dedupe, store, NormalizePipeline.from_crawler(crawler)


def seed_source(db_path: Path) -> None:
    db = connect(db_path)
    try:
        db.table("brands").insert({"id": "acme", "name": "Acme"})
        db.table("sources").insert({"id": "src1", "brand_id": "acme", "url": "http://127.0.0.1:1/acme/"})
    finally:
        db.close()


def test_a_new_key_is_a_private_file_beside_the_database(db_path: Path) -> None:
    db = connect(db_path)
    try:
        key = author_key(db)
        assert key_path(db_path).read_text().strip().encode() == key
        assert key_path(db_path).stat().st_mode & 0o777 == 0o600
        assert db.execute("SELECT COUNT(*) FROM app_settings").fetchone() == (0,)
        assert author_key(connect(db_path)) == key  # another connection, the same key
    finally:
        db.close()


def test_a_key_left_in_the_database_moves_out_on_the_crawlers_first_open(db_path: Path) -> None:
    seed_source(db_path)
    db = connect(db_path)
    try:
        db.table("app_settings").insert({"key": AUTHOR_KEY_SETTING, "value": OLD_KEY})
        earlier = author_hash("Ana P.", OLD_KEY.encode())
        db.execute(
            "INSERT INTO reviews (id, source_id, brand_id, body, body_hash, author_hash, first_seen, last_seen)"
            " VALUES ('h:1', 'src1', 'acme', 'x', 'x', ?, '2024-01-01', '2024-01-01')",
            [earlier],
        )
    finally:
        db.close()
    dedupe, store, normalize = open_crawl(db_path)
    assert key_path(db_path).read_text().strip() == OLD_KEY
    assert key_path(db_path).stat().st_mode & 0o777 == 0o600
    assert store.db is not None
    assert store.db.execute("SELECT * FROM app_settings WHERE key = ?", [AUTHOR_KEY_SETTING]).fetchall() == []
    item = dedupe.process_item(
        normalize.process_item(ReviewItem(body="Fine.", author="ana p.", source_id="src1"))
    )
    assert item.author_hash == earlier  # the same pseudonym as before the move
    store.db.close()


def test_author_hashes_without_their_key_are_a_clear_error(db_path: Path) -> None:
    db = connect(db_path)
    try:
        author_key(db)
        db.table("brands").insert({"id": "acme", "name": "Acme"})
        db.table("sources").insert({"id": "src1", "brand_id": "acme", "url": "http://127.0.0.1:1/"})
        db.execute(
            "INSERT INTO reviews (id, source_id, brand_id, body, body_hash, author_hash, first_seen, last_seen)"
            " VALUES ('h:1', 'src1', 'acme', 'x', 'x', 'abc', '2024-01-01', '2024-01-01')"
        )
        key_path(db_path).unlink()
        with pytest.raises(AuthorKeyError, match=r"key is missing: restore .*reputation\.db\.key or set"):
            author_key(db)
        assert not key_path(db_path).exists()  # no silent new key
    finally:
        db.close()
    runs_before = _crawl_runs(db_path)
    with pytest.raises(AuthorKeyError, match="key is missing"):
        run_crawl(db_path)  # refused before a crawl child starts or writes a run row
    assert _crawl_runs(db_path) == runs_before
    assert not key_path(db_path).exists()


def _crawl_runs(db_path: Path) -> int:
    db = connect(db_path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM crawl_runs").fetchone()[0])
    finally:
        db.close()


def test_the_environment_key_wins_and_no_file_is_written(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTHOR_KEY_ENV, "from-the-environment")
    db = connect(db_path)
    try:
        assert author_key(db) == b"from-the-environment"
        assert not key_path(db_path).exists()
    finally:
        db.close()


# --------------------------------------------------------------------------- purge


def scored_world(db: sqlite_utils.Database) -> Builder:
    make = Builder(db)
    make.vendor("acme-contact").brand("northwind").engage("acme-contact", "northwind", start="2022-01-01")
    for n, day in enumerate(["2022-03-01", "2022-06-10", "2023-02-01", "2024-05-05", "2024-08-08"]):
        make.review("northwind", day, score=0.2 * n - 0.4, cs=0.1 * n, author=f"author-{n}",
                    body=f"Private text number {n} about the refund desk", sentiment={"cs_sentences": '["refund desk"]'})  # fmt: skip
    db.execute("UPDATE reviews SET reply = 'Sorry, ' || id, extra = '{\"verified_purchase\": true}'")
    return make


def rollup_tables(db: sqlite_utils.Database) -> dict[str, list[tuple[object, ...]]]:
    build_rollups(db, as_of=date(2025, 1, 1))
    skip = {"rollup_meta"}  # build time and duration
    return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES if t not in skip}


def test_purge_removes_old_text_and_authors_and_keeps_the_rollups(db_path: Path) -> None:
    db = connect(db_path)
    scored_world(db)
    ensure_search(db)
    before = rollup_tables(db)
    db.close()

    result = CliRunner().invoke(cli, ["--db", str(db_path), "purge", "--before", "2024-01-01"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "purged 3 reviews published before 2024-01-01: text, title, reply and author"
    )

    db = connect(db_path)
    try:
        purged = db.execute(
            "SELECT body, title, reply, author_hash, content_key, extra, rating IS NULL, published_at FROM reviews"
            " WHERE purged_at IS NOT NULL ORDER BY published_at"
        ).fetchall()
        assert [p[7] for p in purged] == ["2022-03-01", "2022-06-10", "2023-02-01"]
        assert all(p[:6] == ("", None, None, None, None, "{}") for p in purged)
        kept = db.execute(
            "SELECT body, reply FROM reviews WHERE purged_at IS NULL ORDER BY published_at"
        ).fetchall()
        assert [k[0][:20] for k in kept] == ["Private text number ", "Private text number "] and all(
            k[1] for k in kept
        )
        quoted = db.execute(
            "SELECT s.cs_sentences FROM review_sentiment s JOIN reviews r ON r.id = s.review_id"
            " WHERE r.purged_at IS NOT NULL"
        ).fetchall()
        assert quoted == [("[]",)] * 3  # quoted sentences are review text too; the scores stay
        assert db.execute("SELECT COUNT(*) FROM review_sentiment WHERE score IS NOT NULL").fetchone() == (5,)
        hits = db.execute("SELECT rowid FROM reviews_fts WHERE reviews_fts MATCH '\"number 1\"'").fetchall()
        assert hits == []  # the search index forgot the text
        assert rollup_tables(db) == before  # same numbers from the same rows, ratings and scores
    finally:
        db.close()
    again = CliRunner().invoke(cli, ["--db", str(db_path), "purge", "--before", "2024-01-01"])
    assert again.exit_code == 0 and again.output.startswith("purged 0 reviews")


def test_purge_keeps_the_links_between_syndicated_copies(db_path: Path) -> None:
    db = connect(db_path)
    make = Builder(db)
    make.vendor("v").brand("b")
    text = "The chat agent sorted out my broken order within ten minutes and followed up by email"
    original = make.review("b", "2023-03-01", author="same-person", body=text)
    copy = make.review("b", "2023-03-04", author="same-person", body=text + " later")
    make.review("b", "2023-03-09", author="someone-else", body=text)
    before = rollup_tables(db)
    assert before["review_duplicates"] == [(copy, original, pytest.approx(before["review_duplicates"][0][2]))]
    db.close()
    result = CliRunner().invoke(cli, ["--db", str(db_path), "purge", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "1 syndicated-copy links kept" in result.output
    db = connect(db_path)
    try:
        links = db.execute("SELECT review_id, original_id FROM purged_review_copies").fetchall()
        assert links == [(copy, original)]
        assert rollup_tables(db) == before  # the copy stays left out once its text and author are gone
    finally:
        db.close()


def test_a_purged_review_seen_again_is_not_refilled(db_path: Path) -> None:
    seed_source(db_path)
    dedupe, store, normalize = open_crawl(db_path)
    fields: dict[str, Any] = {"source_id": "src1", "brand_id": "acme", "site_review_id": "T1", "date_raw": "2020-01-02",
              "author": "Ana", "reply": "Thanks", "crawled_at": "2024-06-01T12:00:00+00:00"}  # fmt: skip
    store.process_item(
        dedupe.process_item(normalize.process_item(ReviewItem(body="Old private words.", **fields)))
    )
    store.flush()
    assert store.db is not None
    store.db.close()
    assert CliRunner().invoke(cli, ["--db", str(db_path), "purge", "--before", "2021-01-01"]).exit_code == 0
    dedupe, store, normalize = open_crawl(db_path)
    store.process_item(
        dedupe.process_item(normalize.process_item(ReviewItem(body="Old private words.", **fields)))
    )
    store.flush()
    assert store.counts["unchanged"] == 1 and store.counts["new"] == 0
    assert store.db is not None
    row = store.db.execute("SELECT body, reply, author_hash, purged_at IS NOT NULL FROM reviews").fetchall()
    assert row == [("", None, None, 1)]
    store.db.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --before YYYY-MM-DD and --older-than DAYS"),
        (["--before", "2024-01-01", "--older-than", "3"], "give exactly one of"),
        (["--before", "01/02/2024"], "--before '01/02/2024' is not a date (expected YYYY-MM-DD)"),
        (["--before", "2999-01-01"], "--before 2999-01-01 is in the future"),
        (["--older-than", "ten"], "--older-than 'ten' is not a whole number of days"),
        (["--older-than", "-3"], "--older-than -3 is negative"),
    ],
)
def test_purge_refuses_bad_input_in_one_line(db_path: Path, args: list[str], message: str) -> None:
    connect(db_path).close()
    result = CliRunner().invoke(cli, ["--db", str(db_path), "purge", *args])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ") and message in result.output


def test_purge_of_a_missing_database_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "purge", "--older-than", "30"])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "does not exist" in result.output
    assert not (tmp_path / "none.db").exists()


def test_cutoff_day() -> None:
    today = date(2025, 3, 10)
    assert cutoff_day(None, "10", today=today) == date(2025, 2, 28)
    assert cutoff_day("2024-02-29", None, today=today) == date(2024, 2, 29)
    with pytest.raises(BadValueError):
        cutoff_day(None, None, today=today)
