"""`reputation sources suggest`: review-page URLs from a brand's website and app ids, ready for the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from reputation.cli import cli
from reputation.registry.loader import parse_registry
from storage.database import connect

TRUSTPILOT = "https://www.trustpilot.com/review/northwind-air.example"
PLAY = "https://play.google.com/store/apps/details?id=com.northwind.app&hl=en&showAllReviews=true"
APPLE = "https://itunes.apple.com/us/rss/customerreviews/page=1/id=284882215/sortby=mostrecent/json"


@pytest.fixture
def dbfile(tmp_path: Path) -> Path:
    """A real database with two brands: one with a website, one without."""
    path = tmp_path / "reputation.db"
    db = connect(path)
    brands: list[dict[str, Any]] = [
        {"id": "northwind-air", "name": "Northwind Air", "website": "https://www.Northwind-Air.example/about"},
        {"id": "bluepeak", "name": "Bluepeak Telecom", "website": None},
    ]
    db.table("brands").insert_all(brands)
    db.close()
    return path


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", str(db), "sources", "suggest", *args], obj={})


def one_error_line(result: Result, words: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], result.output


def test_brand_id_uses_its_website_and_prints_registry_yaml(dbfile: Path) -> None:
    result = run(dbfile, "northwind-air", "--app-id", "com.northwind.app", "--apple-id", "id284882215")
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.output)
    assert data == {"sources": [
        {"url": TRUSTPILOT, "layout": "trustpilot"},
        {"url": PLAY, "layout": "google_play"},
        {"url": APPLE, "layout": "app_store"},
    ]}
    # the platforms that need a hand-found page are named in comments, with the page's shape
    for shape in ("yelp.com/biz/", "amazon.com/product-reviews/", "tripadvisor.com/", "consumeraffairs.com/"):
        assert shape in result.output
    # pasted under the brand, the lines are a registry the loader accepts as it stands
    sources_block = result.output[result.output.index("sources:"):]
    registry = "brands:\n  - id: northwind-air\n    name: Northwind Air\n" + "".join(
        f"    {line}\n" for line in sources_block.splitlines()
    )
    loaded = parse_registry(registry)
    assert [(s.url, s.layout) for s in loaded.sources] == [
        (TRUSTPILOT, "trustpilot"), (PLAY, "google_play"), (APPLE, "app_store")
    ]
    assert all(s.brand_id == "northwind-air" for s in loaded.sources)


def test_json_output_parses(dbfile: Path) -> None:
    result = run(dbfile, "northwind-air", "--apple-id", "284882215", "--country", "GB", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["brand"] == "northwind-air" and data["domain"] == "northwind-air.example"
    assert [(s["platform"], s["url"], s["layout"]) for s in data["sources"]] == [
        ("trustpilot", TRUSTPILOT, "trustpilot"),
        ("app_store", APPLE.replace("/us/", "/gb/"), "app_store"),
    ]
    needs = {n["platform"]: n for n in data["needs_page_url"]}
    assert set(needs) == {"google_play", "yelp", "amazon", "tripadvisor", "consumeraffairs"}
    assert "--app-id" in needs["google_play"]["why"]


def test_domain_option_overrides_the_website(dbfile: Path) -> None:
    result = run(dbfile, "northwind-air", "--domain", "fly-northwind.example", "--json")
    assert json.loads(result.output)["sources"][0]["url"] == "https://www.trustpilot.com/review/fly-northwind.example"


def test_brand_without_website_works_from_app_ids_alone(dbfile: Path) -> None:
    result = run(dbfile, "bluepeak", "--app-id", "com.bluepeak.care", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["domain"] is None and [s["platform"] for s in data["sources"]] == ["google_play"]
    assert "--domain" in next(n["why"] for n in data["needs_page_url"] if n["platform"] == "trustpilot")
    one_error_line(run(dbfile, "bluepeak"), "has no website")


def test_a_domain_needs_no_database(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = run(missing, "https://www.acme.example/contact")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == {
        "sources": [{"url": "https://www.trustpilot.com/review/acme.example", "layout": "trustpilot"}]
    }
    assert not missing.exists(), "suggesting must not create a database"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["no-such-brand"], "neither a brand id in"),
        (["Acme Corp"], "neither a brand id in"),
        (["acme.example", "--app-id", "minecraft"], "is not a Google Play app id"),
        (["acme.example", "--apple-id", "app-123"], "is not an App Store app id"),
        (["acme.example", "--country", "usa"], "is not a two-letter country code"),
        (["acme.example", "--domain", "other.example"], "give the domain once"),
        (["northwind-air", "--domain", "not a domain"], "--domain:"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(dbfile: Path, args: list[str], words: str) -> None:
    one_error_line(run(dbfile, *args), words)


def test_command_is_listed() -> None:
    result = CliRunner().invoke(cli, ["--help"], obj={})
    assert "sources" in result.output
    result = CliRunner().invoke(cli, ["sources", "--help"], obj={})
    assert "suggest" in result.output
