"""Candidates decided by an analyst: accept / reject round-trips, conflicts reported, export then load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crawler.discovery.candidates import Candidate
from reputation.cli import cli
from reputation.engagements.decide import accept, reject
from reputation.engagements.store import list_candidates, save_candidates
from storage.database import connect
from storage.errors import BadValueError

V = "harbor-finch"


def cand(brand: str, brand_id: str | None, relation: str, day: str | None, scope: str = "all") -> Candidate:
    return Candidate(V, brand, brand_id, relation, day, scope, f"{brand} {relation} sentence",
                     f"http://127.0.0.1/press/{brand_id or 'x'}-{relation}.html", 0.9)


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "r.db"
    db = connect(path)
    db.execute("INSERT INTO vendors (id, name, website) VALUES (?, 'Harbor & Finch Customer Care', "
                "'https://harbor-finch.example')", (V,))
    db.execute("INSERT INTO brands (id, name, website) VALUES ('fennel-bank', 'Fennel Bank', 'https://fb.example')")
    db.execute("INSERT INTO brands (id, name) VALUES ('parcelwing', 'Parcelwing')")
    db.conn.commit()
    save_candidates(db, [cand("Fennel Bank", "fennel-bank", "started", "2021-06-01"),
                         cand("Fennel Bank", "fennel-bank", "renewed", "2024-06-01"),
                         cand("Fennel Bank", "fennel-bank", "ended", "2025-03-11"),
                         cand("Fennel Bank", "fennel-bank", "started", "2023-01-01"),
                         cand("Parcelwing", "parcelwing", "client", None),
                         cand("Acme Rail", None, "started", "2022-02-01", "chat")])
    db.close()
    return path


def ids(db_file: Path) -> dict[tuple[str, str, str | None], int]:
    return {(r.brand_name, r.relation, r.event_date): r.id for r in list_candidates(connect(db_file))}


def engagements(db_file: Path) -> set[tuple[object, ...]]:
    return set(connect(db_file).execute(
        "SELECT vendor_id, brand_id, start_date, end_date, scope, share, evidence_url FROM engagements").fetchall())


def test_accept_writes_the_engagement_and_reject_records_the_no(db_file: Path) -> None:
    c = ids(db_file)
    db = connect(db_file)
    started = accept(db, c[("Fennel Bank", "started", "2021-06-01")])
    assert engagements(db_file) == {(V, "fennel-bank", "2021-06-01", None, "all", 1.0,
                                     "http://127.0.0.1/press/fennel-bank-started.html")}
    renewed = accept(db, c[("Fennel Bank", "renewed", "2024-06-01")])
    assert renewed.engagement_id == started.engagement_id and "confirms" in renewed.message
    ended = accept(db, c[("Fennel Bank", "ended", "2025-03-11")])
    assert ended.engagement_id == started.engagement_id
    assert {row[3] for row in engagements(db_file)} == {"2025-03-11"}
    # an end read elsewhere: the same month confirms it, another month is a conflict, never an overwrite
    save_candidates(db, [cand("Fennel Bank", "fennel-bank", "ended", "2025-03-28"),
                         cand("Fennel Bank", "fennel-bank", "ended", "2025-01-20")])
    assert "confirms the end" in accept(db, ids(db_file)[("Fennel Bank", "ended", "2025-03-28")]).message
    with pytest.raises(BadValueError, match="already ends 2025-03-11"):
        accept(db, ids(db_file)[("Fennel Bank", "ended", "2025-01-20")])
    assert {row[3] for row in engagements(db_file)} == {"2025-03-11"}
    rejected = reject(db, c[("Parcelwing", "client", None)])
    assert rejected.status == "rejected"
    rows = {r.id: r for r in list_candidates(db)}
    assert rows[c[("Parcelwing", "client", None)]].status == "rejected"
    assert rows[c[("Fennel Bank", "started", "2021-06-01")]].engagement_id == started.engagement_id
    assert rows[c[("Fennel Bank", "started", "2021-06-01")]].decided_at is not None
    with pytest.raises(BadValueError, match="already rejected"):
        reject(db, c[("Parcelwing", "client", None)])
    # rediscovery refreshes a decided candidate but keeps the decision
    assert save_candidates(db, [cand("Parcelwing", "parcelwing", "client", None)]) == (0, 1)
    assert {r.status for r in list_candidates(db) if r.brand_name == "Parcelwing"} == {"rejected"}


def test_a_conflicting_window_is_reported_not_overwritten(db_file: Path) -> None:
    c = ids(db_file)
    db = connect(db_file)
    accept(db, c[("Fennel Bank", "started", "2021-06-01")])
    before = engagements(db_file)
    with pytest.raises(BadValueError, match="conflicts with engagement"):
        accept(db, c[("Fennel Bank", "started", "2023-01-01")])
    assert engagements(db_file) == before
    assert {r.status for r in list_candidates(db) if r.event_date == "2023-01-01"} == {"proposed"}
    # the same start read again (another page, another day of that month) confirms, adds nothing
    save_candidates(db, [cand("Fennel Bank", "fennel-bank", "started", "2021-06-15")])
    again = accept(db, ids(db_file)[("Fennel Bank", "started", "2021-06-15")])
    assert "confirms engagement" in again.message and engagements(db_file) == before


def test_an_unknown_brand_is_accepted_only_with_a_new_brand_entry(db_file: Path) -> None:
    c = ids(db_file)
    db = connect(db_file)
    with pytest.raises(BadValueError, match="no registry brand"):
        accept(db, c[("Acme Rail", "started", "2022-02-01")])
    assert db.execute("SELECT COUNT(*) FROM engagements").fetchone()[0] == 0
    decision = accept(db, c[("Acme Rail", "started", "2022-02-01")], brand_name="Acme Rail")
    assert db.execute("SELECT id, name FROM brands WHERE id = 'acme-rail'").fetchone() == ("acme-rail", "Acme Rail")
    assert decision.engagement_id is not None
    assert engagements(db_file) == {(V, "acme-rail", "2022-02-01", None, "chat", 1.0,
                                     "http://127.0.0.1/press/x-started.html")}


def test_undated_client_needs_a_start(db_file: Path) -> None:
    c = ids(db_file)
    with pytest.raises(BadValueError, match="--start"):
        accept(connect(db_file), c[("Parcelwing", "client", None)])


def test_cli_round_trip_and_export_then_load(db_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    c = ids(db_file)

    def call(*args: str) -> str:
        result = runner.invoke(cli, ["--db", str(db_file), "vendors", *args], obj={})
        assert result.exit_code == 0, result.output
        return result.output

    listed = json.loads(call("candidates", "--vendor", V, "--json"))
    assert {r["id"] for r in listed} == set(c.values())
    call("accept", str(c[("Fennel Bank", "started", "2021-06-01")]))
    call("accept", str(c[("Fennel Bank", "ended", "2025-03-11")]))
    call("accept", str(c[("Parcelwing", "client", None)]), "--start", "2022-01-15")
    call("accept", str(c[("Acme Rail", "started", "2022-02-01")]), "--brand-name", "Acme Rail")
    call("reject", str(c[("Fennel Bank", "renewed", "2024-06-01")]))
    bad = runner.invoke(cli, ["--db", str(db_file), "vendors", "accept", "9999"], obj={})
    assert bad.exit_code == 1 and "no engagement candidate 9999" in bad.output
    table = call("candidates", "--status", "accepted")
    assert table.count("\taccepted\t") == 4
    accepted = engagements(db_file)
    assert len(accepted) == 3

    fragment = tmp_path / "accepted.yaml"
    assert "wrote 3 engagements" in call("candidates", "--export", str(fragment))
    # into a fresh database: the same engagements
    fresh = tmp_path / "fresh.db"
    result = runner.invoke(cli, ["--db", str(fresh), "vendors", "load", str(fragment)], obj={})
    assert result.exit_code == 0, result.output
    assert engagements(fresh) == accepted
    # and loading it back over the original changes nothing
    call("load", str(fragment))
    assert engagements(db_file) == accepted


def test_cli_discover_needs_one_vendor_or_all(db_file: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", str(db_file), "vendors", "discover"], obj={})
    assert result.exit_code == 1 and "name one VENDOR or give --all" in result.output
    result = runner.invoke(cli, ["--db", str(db_file), "vendors", "discover", "nobody", "--sentence-model",
                                 "keyword"], obj={})
    assert result.exit_code == 1 and "unknown vendor 'nobody'" in result.output
