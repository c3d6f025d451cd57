"""Registry validation: every mistake named with file, line and field; bad files change nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from crawler.extractors import layout_names
from reputation.cli import cli
from reputation.registry.loader import MAX_REGISTRY_BYTES, load_registry, parse_registry, source_id
from reputation.rollups.attribution import load_engagements
from storage.database import connect
from storage.errors import RegistryError
from storage.records import Engagement

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


# --- bad input: each one clear error with file:line, and nothing changed --------------------------

BAD_INPUTS = {
    # a typo must not turn a closed window into an open-ended one
    "unknown key": (
        GOOD.replace("end: 2023-12-31", "ends: 2023-12-31"),
        "v.yaml:15: engagements[0].ends: unknown key (did you mean 'end'?",
    ),
    "duplicate key": (
        GOOD.replace("name: Acme Contact", "name: Acme Contact\n    name: Acme Two"),
        "v.yaml:4: vendors[0].name: duplicate key (first at line 3)",
    ),
    "anchor": (
        GOOD.replace("  - vendor: zenith", "  - &later\n    vendor: zenith"),
        "v.yaml:16: engagements[1]: YAML anchors (&later) are not allowed in a registry",
    ),
    "alias bomb": (
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
        + GOOD,
        "v.yaml:1: a: YAML anchors (&a) are not allowed in a registry",
    ),
    "deep flow nesting": (
        GOOD + "extra: " + "[" * 50_000 + "]" * 50_000 + "\n",
        "v.yaml:19: extra[0][0][0][0][0][0][0]: nested deeper than 8 levels",
    ),
    "deep block nesting": (
        "vendors:\n" + "".join(" " * depth + "- \n" for depth in range(1, 200)),
        "v.yaml:9: vendors[0][0][0][0][0][0][0]: nested deeper than 8 levels",
    ),
    "unknown layout": (
        GOOD.replace("trust/northwind/", "trust/northwind/\n        layout: trustpilott"),
        "v.yaml:11: brands[0].sources[0].layout: unknown layout 'trustpilott' (known: auto, ",
    ),
    "python tag": (
        GOOD.replace("name: Zenith CX", "name: !!python/object/apply:os.system [echo]"),
        "v.yaml:5: vendors[1].name: tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
    ),
    "merge key": (
        GOOD.replace("name: Acme Contact", "name: Acme Contact\n    <<: {notes: merged}"),
        "v.yaml:4: vendors[0]: merge keys (<<) are not allowed in a registry",
    ),
    "time of day": (
        GOOD.replace("start: 2024-01-01", "start: 2024-01-01 10:00:00"),
        "v.yaml:18: engagements[1].start: '2024-01-01T10:00:00' must be a day without a time",
    ),
    "not a mapping": ("- vendors\n", "v.yaml:1: the registry must be a mapping"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_named_and_writes_nothing(tmp_path: Path, name: str) -> None:
    text, expected = BAD_INPUTS[name]
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "v.yaml")
    assert expected in str(info.value)

    db = connect(tmp_path / "r.db")
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    load_registry(db, good)
    before = {t: list(db[t].rows) for t in ("vendors", "brands", "engagements", "sources")}
    bad = tmp_path / "v.yaml"
    bad.write_text(text)
    with pytest.raises(RegistryError) as info:
        load_registry(db, bad)
    assert expected.replace("v.yaml", str(bad)) in str(info.value)
    assert {t: list(db[t].rows) for t in before} == before


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_cli_bad_input_exits_1_without_traceback(tmp_path: Path, name: str) -> None:
    text, expected = BAD_INPUTS[name]
    bad = tmp_path / "v.yaml"
    bad.write_text(text)
    dbfile = tmp_path / "cli.db"
    result = CliRunner().invoke(cli, ["--db", str(dbfile), "vendors", "load", str(bad)], obj={})
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    assert "Traceback" not in result.output
    assert expected.replace("v.yaml", str(bad)) in result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("Error: ")
    # a single fatal problem is one line; otherwise a count, then one line per mistake
    if lines[0].startswith("Error: " + str(bad)):
        assert len(lines) == 1
    else:
        count = int(lines[0].removeprefix("Error: ").split()[0])
        assert len(lines) == 1 + count
    assert not dbfile.exists(), "a bad file must not even create the database"


def test_every_unknown_key_is_named_at_once() -> None:
    text = (
        GOOD.replace("end: 2023-12-31", "ends: 2023-12-31")
        .replace("name: Acme Contact", "name: Acme Contact\n    web: http://acme.example")
        .replace("sources:", "source:")
    )
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "v.yaml")
    message = str(info.value)
    assert message.startswith("3 mistakes in v.yaml")
    assert "v.yaml:4: vendors[0].web: unknown key (did you mean 'website'?" in message
    assert "v.yaml:10: brands[0].source: unknown key (did you mean 'sources'?" in message
    assert "v.yaml:16: engagements[0].ends: unknown key" in message


def test_file_over_the_size_bound_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(GOOD + "#" * MAX_REGISTRY_BYTES + "\n")  # valid YAML, only too large
    db = connect(tmp_path / "r.db")
    with pytest.raises(RegistryError, match=r"big.yaml:1: the registry is larger than 10 MB"):
        load_registry(db, big)
    assert counts(db) == {"vendors": 0, "brands": 0, "engagements": 0, "sources": 0}
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "cli.db"), "vendors", "load", str(big)], obj={})
    assert result.exit_code == 1 and "larger than 10 MB" in result.output
    with pytest.raises(RegistryError, match="larger than 10 MB"):
        parse_registry(GOOD + "#" * MAX_REGISTRY_BYTES, "v.yaml")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "latin.yaml"
    bad.write_bytes(GOOD.replace("Zenith CX", "Zénith CX").encode("latin-1"))
    with pytest.raises(RegistryError, match=r"latin.yaml:5: not UTF-8 text"):
        load_registry(connect(tmp_path / "r.db"), bad)


def test_known_layouts_are_accepted(tmp_path: Path) -> None:
    for layout in layout_names():
        registry = parse_registry(GOOD.replace("trust/northwind/", f"trust/northwind/\n        layout: {layout}"))
        assert registry.sources[0].layout == layout


def test_engagements_round_trip_as_one_type(tmp_path: Path) -> None:
    """What the registry parses is what the roll-ups read back: one Engagement type across layers."""
    registry = parse_registry(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    assert all(isinstance(e, Engagement) for e in registry.engagements)
    db = connect(tmp_path / "r.db")
    load_registry(db, EXAMPLE)
    assert load_engagements(db, as_of=date(2030, 1, 1)) == registry.engagements
    chat = next(e for e in registry.engagements if e.scope == "chat")
    assert (chat.vendor_id, chat.brand_id, chat.share, chat.end) == ("meridian-cx", "bluepeak-telecom", 0.5, None)
    # as known on a day inside the first window: the later engagement is unknown, the first still runs
    early = load_engagements(db, as_of=date(2024, 1, 1))
    assert [(e.vendor_id, e.brand_id, e.end) for e in early] == [
        ("harbor-contact", "northwind-air", None),
        ("meridian-cx", "bluepeak-telecom", None),
    ]


# --- sources: suggest -----------------------------------------------------------------------------

SUGGEST = GOOD.replace(
    "    name: Northwind Air\n    sources:\n      - url: http://127.0.0.1:9/trust/northwind/\n",
    "    name: Northwind Air\n    website: https://www.northwind-air.example/about\n    sources: suggest\n",
)


def test_sources_suggest_loads_the_brand_without_sources() -> None:
    assert SUGGEST != GOOD
    registry = parse_registry(SUGGEST, "v.yaml")
    assert registry.sources == []
    assert [(b.id, b.website) for b in registry.suggest_sources] == [
        ("northwind", "https://www.northwind-air.example/about")
    ]
    assert [b.id for b in registry.brands] == ["northwind"]


def test_cli_load_prints_suggested_sources_as_registry_yaml(tmp_path: Path) -> None:
    file = tmp_path / "v.yaml"
    file.write_text(SUGGEST)
    dbfile = tmp_path / "cli.db"
    result = CliRunner().invoke(cli, ["--db", str(dbfile), "vendors", "load", str(file)], obj={})
    assert result.exit_code == 0, result.output
    assert "loaded 2 vendors, 1 brands, 2 engagements, 0 sources" in result.output
    assert "brand northwind: 'sources: suggest' loaded no source" in result.output
    db = connect(dbfile)
    assert db["brands"].get("northwind")["website"] == "https://www.northwind-air.example/about"
    assert db["sources"].count == 0
    # the printed block, pasted in place of `sources: suggest`, is a registry the loader accepts
    block = result.output[result.output.index("\nsources:") + 1:]
    assert yaml.safe_load(block) == {
        "sources": [{"url": "https://www.trustpilot.com/review/northwind-air.example", "layout": "trustpilot"}]
    }
    pasted = SUGGEST.replace("    sources: suggest\n", "".join(f"    {line}\n" for line in block.splitlines()))
    loaded = parse_registry(pasted, "v.yaml")
    assert [(s.brand_id, s.layout) for s in loaded.sources] == [("northwind", "trustpilot")]
    assert loaded.suggest_sources == []
    # the platforms whose pages cannot be derived are named, nothing was fetched
    assert "yelp.com/biz/" in result.output and "Nothing was fetched" in result.output


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("    website: https://www.northwind-air.example/about\n", ""),
         "v.yaml:9: brands[0].sources: suggest needs the brand's website"),
        (("sources: suggest", "sources: sugest"),
         "v.yaml:10: brands[0].sources: must be a list of sources or 'suggest', not 'sugest'"),
        (("https://www.northwind-air.example/about", "http://127.0.0.1:8000/"),
         "v.yaml:10: brands[0].sources: suggest needs a website with a domain name: 'http://127.0.0.1:8000/' is not a domain name"),
    ],
)
def test_sources_suggest_mistakes_are_named(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    text = SUGGEST.replace(*change, 1)
    assert text != SUGGEST
    with pytest.raises(RegistryError) as info:
        parse_registry(text, "v.yaml")
    assert expected in str(info.value)
    bad = tmp_path / "v.yaml"
    bad.write_text(text)
    dbfile = tmp_path / "cli.db"
    result = CliRunner().invoke(cli, ["--db", str(dbfile), "vendors", "load", str(bad)], obj={})
    assert result.exit_code == 1 and expected.replace("v.yaml", str(bad)) in result.output
    assert not dbfile.exists()
