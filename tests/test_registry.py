"""Registry validation: every mistake named with file, line and field; bad files change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reputation.cli import cli
from reputation.registry.loader import load_registry, parse_registry, source_id
from storage.database import connect
from storage.errors import RegistryError

EXAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "vendors.example.yaml"

GOOD = """\
vendors:
  - id: acme
    name: Acme Contact
  - id: zenith
    name: Zenith CX
brands:
  - id: northwind
    name: Northwind Air
    sources:
      - url: http://127.0.0.1:9/trust/northwind/
engagements:
  - vendor: acme
    brand: northwind
    start: 2023-01-01
    end: 2023-12-31
  - vendor: zenith
    brand: northwind
    start: 2024-01-01
"""


def counts(db) -> dict[str, int]:
    return {t: db[t].count for t in ("vendors", "brands", "engagements", "sources")}


def test_example_registry_loads(tmp_path: Path) -> None:
    db = connect(tmp_path / "r.db")
    summary = load_registry(db, EXAMPLE)
    assert (summary.vendors, summary.brands, summary.engagements, summary.sources) == (2, 2, 3, 2)
    open_ended = db.execute("SELECT COUNT(*) FROM engagements WHERE end_date IS NULL").fetchone()[0]
    assert open_ended == 2


def test_load_is_an_upsert(tmp_path: Path) -> None:
    db = connect(tmp_path / "r.db")
    file = tmp_path / "v.yaml"
    file.write_text(GOOD)
    load_registry(db, file)
    load_registry(db, file)
    assert counts(db) == {"vendors": 2, "brands": 1, "engagements": 2, "sources": 1}
    row = db["sources"].get(source_id("http://127.0.0.1:9/trust/northwind/"))
    assert row["layout"] == "auto" and row["crawl_interval_hours"] == 24


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        (("brand: northwind\n    start: 2023", "brand: southwind\n    start: 2023"), 13, "engagements[0].brand", "unknown brand 'southwind'"),
        (("vendor: zenith", "vendor: nobody"), 16, "engagements[1].vendor", "unknown vendor 'nobody'"),
        (("end: 2023-12-31", "end: 2022-12-31"), 15, "engagements[0].end", "is before start"),
        (("http://127.0.0.1:9/trust/northwind/", "ftp://example.org/x"), 10, "brands[0].sources[0].url", "not an http(s) URL"),
        (("start: 2024-01-01", "start: 2023-13-01"), 18, "engagements[1].start", "is not a date"),
        (("name: Zenith CX", "nom: Zenith CX"), 4, "vendors[1].name", "is required"),
    ],
)
def test_each_mistake_is_named(change: tuple[str, str], line: int, field: str, words: str) -> None:
    text = GOOD.replace(*change, 1)
    assert text != GOOD
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "v.yaml")
    message = str(info.value)
    assert f"v.yaml:{line}: {field}: " in message
    assert words in message


def test_overlapping_windows_for_same_vendor_and_brand() -> None:
    text = GOOD.replace("vendor: zenith\n    brand: northwind\n    start: 2024-01-01", "vendor: acme\n    brand: northwind\n    start: 2023-06-01")
    with pytest.raises(RegistryError, match=r"v.yaml:16: engagements: window 2023-06-01..open for vendor 'acme' and brand 'northwind' overlaps the one at line 12"):
        parse_registry(text, "v.yaml")


def test_all_mistakes_reported_at_once() -> None:
    text = GOOD.replace("vendor: zenith", "vendor: nobody").replace("end: 2023-12-31", "end: 2022-01-01")
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "v.yaml")
    assert str(info.value).startswith("2 mistakes in v.yaml")


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(RegistryError, match=r"v.yaml:3: not valid YAML"):
        parse_registry("vendors:\n  - id: a\n   name: [unclosed\n", "v.yaml")


def test_bad_file_changes_nothing(tmp_path: Path) -> None:
    db = connect(tmp_path / "r.db")
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    load_registry(db, good)
    before = counts(db)
    engagements_before = list(db["engagements"].rows)
    bad = tmp_path / "bad.yaml"
    # valid vendors and a new brand, but one engagement is wrong: nothing may land
    bad.write_text(GOOD.replace("Northwind Air", "Renamed Air").replace("end: 2023-12-31", "end: 2020-01-01"))
    with pytest.raises(RegistryError):
        load_registry(db, bad)
    assert counts(db) == before
    assert list(db["engagements"].rows) == engagements_before
    assert db["brands"].get("northwind")["name"] == "Northwind Air"


def test_cli_load_and_error_exit(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    dbfile = str(tmp_path / "cli.db")
    result = runner.invoke(cli, ["--db", dbfile, "vendors", "load", str(good)], obj={})
    assert result.exit_code == 0, result.output
    assert "loaded 2 vendors, 1 brands, 2 engagements, 1 sources" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("vendor: zenith", "vendor: ghost"))
    result = runner.invoke(cli, ["--db", dbfile, "vendors", "load", str(bad)], obj={})
    assert result.exit_code == 1
    assert "unknown vendor 'ghost'" in result.output
    result = runner.invoke(cli, ["--db", dbfile, "vendors", "load", str(tmp_path / "missing.yaml")], obj={})
    assert result.exit_code == 1 and "no such file" in result.output


def test_init_reports_schema_version(tmp_path: Path) -> None:
    dbfile = tmp_path / "new.db"
    result = CliRunner().invoke(cli, ["--db", str(dbfile), "init"], obj={})
    assert result.exit_code == 0, result.output
    assert "schema version" in result.output and dbfile.exists()
    db = connect(dbfile)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
