"""Vendor scorecards on a small hand-built database: numbers, escaping, schema, errors."""

from __future__ import annotations

import csv
import json
import random
import statistics
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sqlite_utils
from click.testing import CliRunner
from conftest import Builder

from reputation.cli import cli
from reputation.rollups.build import CS_RELEVANCE_THRESHOLD, build_rollups
from reputation.scorecards.content import RollupsMissingError, build_scorecards, scorecard_schema
from reputation.scorecards.render import OutputError, render_html, write_scorecards
from storage.database import connect
from storage.errors import NotFoundError

MODEL_ID, MODEL_REVISION = "test-model", "r1"
AS_OF = "2024-07-01"
NOW = "2024-07-01T00:00:00+00:00"
SCRIPT = "<script>alert(1)</script>"
SQL = "'; DROP TABLE reviews;--"
BRAVO_NAME = 'Bravo <b>Ops</b> & "Co"'

VENDORS = [("acme", "Acme Contact Centres"), ("bravo", BRAVO_NAME), ("zeta", "Zeta Idle")]
BRANDS = [("northwind", "Northwind Air"), ("contoso", "Contoso Bank"), ("fabrikam", "Fabrikam Mobile"),
          ("globex", "Globex Energy")]
# (vendor, brand, start, end): northwind switches from acme to bravo; zeta's window has no reviews.
ENGAGEMENTS = [
    ("acme", "northwind", "2023-01-01", "2023-12-31"),
    ("bravo", "northwind", "2024-01-01", None),
    ("acme", "contoso", "2023-01-01", None),
    ("bravo", "fabrikam", "2023-01-01", None),
    ("zeta", "globex", "2030-01-01", None),
]
# Customer-service tone each vendor leaves in reviews.
VENDOR_TONE = {"acme": 0.45, "bravo": -0.35, None: 0.0}


def _month_dates() -> list[str]:
    return [f"{y}-{m:02d}-{d:02d}" for y in (2023, 2024) for m in range(1, 13) for d in (5, 14, 23)
            if (y, m) <= (2024, 6)]


def _vendor_on(brand: str, day: str) -> str | None:
    for vendor, b, start, end in ENGAGEMENTS:
        if b == brand and start <= day and (end is None or day <= end):
            return vendor
    return None


def review_rows(extra: list[dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Reviews and their sentiment rows; deterministic, with hostile text among the worst."""
    rng = random.Random(7)
    specs: list[dict[str, Any]] = []
    for brand, _ in BRANDS:
        for day in _month_dates():
            tone = VENDOR_TONE[_vendor_on(brand, day)]
            relevant = rng.random() < 0.8
            cs = max(-0.95, min(0.95, tone + rng.uniform(-0.4, 0.4))) if relevant else None
            specs.append({
                "brand": brand, "day": day, "cs": cs, "score": max(-1.0, min(1.0, (cs or 0) + rng.uniform(-0.2, 0.2))),
                "body": f"Review of {brand} on {day}. The support line was {'helpful' if (cs or 0) > 0 else 'slow'}.",
                "url": f"https://reviews.example/{brand}/{day}",
            })
    specs += [
        {"brand": "contoso", "day": "2023-06-15", "cs": -0.99, "score": -0.9, "url": "https://reviews.example/contoso/evil",
         "body": f"{SCRIPT} The agent said {SQL} and hung up on me."},
        {"brand": "contoso", "day": "2023-06-16", "cs": -0.98, "score": -0.9, "url": "javascript:alert(2)",
         "body": "Support never called back. Worst service ever."},
    ]
    specs += extra or []
    reviews, sentiment = [], []
    for i, s in enumerate(specs):
        rid = f"r{i:04d}"
        reviews.append({"id": rid, "brand_id": s["brand"], "url": s["url"], "body": s["body"], "published_at": s["day"]})
        label = "positive" if s["score"] > 0.2 else "negative" if s["score"] < -0.2 else "neutral"
        sentiment.append({
            "review_id": rid, "label": label, "probabilities": "{}", "score": s["score"],
            "cs_relevance": 0.9 if s["cs"] is not None else 0.1,
            "cs_label": None if s["cs"] is None else ("positive" if s["cs"] > 0 else "negative"),
            "cs_score": s["cs"],
            "cs_sentences": json.dumps([s["body"]]) if s["cs"] is not None else "[]",
            "other_score": None, "flags": "[]",
        })
    return reviews, sentiment


def build_db(path: Path, extra: list[dict[str, Any]] | None = None, *, rollup: bool = True) -> sqlite_utils.Database:
    """A registry, reviews and sentiment written with the shared Builder, then the real roll-ups built."""
    make = Builder.open(path)
    for vendor, name in VENDORS:
        make.vendor(vendor, name=name)
    for brand, name in BRANDS:
        make.brand(brand, name=name, url=f"https://reviews.example/{brand}/")
    for vendor, brand, start, end in ENGAGEMENTS:
        make.engage(vendor, brand, start, end)
    for r, s in zip(*review_rows(extra), strict=True):
        make.review(r["brand_id"], r["published_at"], review_id=r["id"], url=r["url"], body=r["body"], title=None,
                    seen=AS_OF, model=(MODEL_ID, MODEL_REVISION), sentiment=s)
    if rollup:
        build_rollups(make.db, as_of=date.fromisoformat(AS_OF), model_id=MODEL_ID)
    return make.db


def attributable(vendor: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Expected (review, sentiment) pairs for a vendor, computed from the fixture, not the roll-ups."""
    reviews, sentiment = review_rows()
    return [(r, s) for r, s in zip(reviews, sentiment, strict=True) if _vendor_on(r["brand_id"], r["published_at"]) == vendor]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> sqlite_utils.Database:
    return build_db(tmp_path_factory.mktemp("scorecard") / "rep.db")


@pytest.fixture(scope="module")
def cards(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    return {c["vendor"]["id"]: c for c in build_scorecards(db)}


def test_headline_numbers_come_from_attributed_reviews(
    db: sqlite_utils.Database, cards: dict[str, dict[str, Any]]
) -> None:
    for vendor in ("acme", "bravo"):
        row = db["vendor_reputation"].get(vendor)
        for key, column in (("cs_sentiment", "cs_score"), ("shrunk_score", "shrunk_score"),
                            ("share_negative", "share_negative"), ("overall_sentiment", "mean_score")):
            assert cards[vendor]["metrics"][key]["value"] == pytest.approx(row[column], abs=1e-4)
        pairs = attributable(vendor)
        cs = [s["cs_score"] for _, s in pairs if s["cs_score"] is not None and s["cs_relevance"] >= CS_RELEVANCE_THRESHOLD]
        card = cards[vendor]
        assert card["status"] == "ok"
        assert card["n_reviews"] == len(pairs)
        metric = card["metrics"]["cs_sentiment"]
        assert metric["n"] == len(cs)
        assert min(cs) < metric["value"] < max(cs)
        for m in card["metrics"].values():
            if m["low"] is not None:
                assert m["low"] <= m["value"] <= m["high"]
    assert cards["acme"]["metrics"]["cs_sentiment"]["value"] > cards["bravo"]["metrics"]["cs_sentiment"]["value"]
    assert cards["acme"]["rank"] == {"position": 1, "of": 2}
    assert cards["bravo"]["rank"] == {"position": 2, "of": 2}


def test_vendor_against_median_of_vendors_with_scores(cards: dict[str, dict[str, Any]]) -> None:
    acme, bravo = cards["acme"]["metrics"]["cs_sentiment"], cards["bravo"]["metrics"]["cs_sentiment"]
    median = statistics.median([acme["value"], bravo["value"]])  # zeta has no score and does not count
    assert acme["median_all_vendors"] == pytest.approx(median, abs=1e-3)
    assert acme["vs_median"] == pytest.approx(acme["value"] - median, abs=1e-3)
    assert bravo["vs_median"] < 0 < acme["vs_median"]


def test_brands_trend_and_switches(cards: dict[str, dict[str, Any]]) -> None:
    acme = cards["acme"]
    assert {b["brand_id"] for b in acme["brands"]} == {"northwind", "contoso"}
    assert sum(b["n"] for b in acme["brands"]) == acme["n_reviews"]
    months = [m["month"] for m in acme["monthly"]]
    assert months == sorted(months) and "2023-06" in months
    june = next(m for m in acme["monthly"] if m["month"] == "2023-06")
    expected = [s for r, s in attributable("acme") if r["published_at"].startswith("2023-06") and s["cs_score"] is not None]
    assert june["n_cs"] == len(expected)
    out = [s for s in acme["switches"] if s["brand_id"] == "northwind"]
    into = [s for s in cards["bravo"]["switches"] if s["brand_id"] == "northwind"]
    assert out and out[0]["direction"] == "out" and out[0]["to_vendor_id"] == "bravo"
    assert into and into[0]["direction"] == "in" and into[0]["from_vendor_id"] == "acme"
    assert out[0]["cs_change"] < 0  # acme's good service was followed by bravo's poor one


def test_excerpts_are_the_extremes_of_attributed_reviews(cards: dict[str, dict[str, Any]]) -> None:
    acme = cards["acme"]
    scored = sorted(s["cs_score"] for _, s in attributable("acme") if s["cs_score"] is not None)
    assert [e["cs_score"] for e in acme["excerpts"]["worst"]] == pytest.approx(scored[:3], abs=1e-3)
    assert [e["cs_score"] for e in acme["excerpts"]["best"]] == pytest.approx(sorted(scored[-3:], reverse=True), abs=1e-3)
    worst = acme["excerpts"]["worst"][0]
    assert SCRIPT in worst["text"] and worst["url"] == "https://reviews.example/contoso/evil"
    assert all(e["brand_id"] in {"northwind", "contoso"} for e in acme["excerpts"]["worst"] + acme["excerpts"]["best"])


def test_html_shows_hostile_text_as_text(db: sqlite_utils.Database, cards: dict[str, dict[str, Any]]) -> None:
    page = render_html(cards["acme"])
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#39;; DROP TABLE reviews;--" in page
    assert 'href="https://reviews.example/contoso/evil"' in page
    assert "javascript:" not in page  # a non-http link is shown without a link
    assert "<svg" in page and "<path" in page
    bravo = render_html(cards["bravo"])
    assert BRAVO_NAME not in bravo and "Bravo &lt;b&gt;Ops&lt;/b&gt; &amp; &#34;Co&#34;" in bravo
    assert db["reviews"].count == len(review_rows()[0])  # the text was data, never SQL


def test_json_follows_the_schema(tmp_path: Path, cards: dict[str, dict[str, Any]]) -> None:
    schema = scorecard_schema()  # as installed: package data of reputation.scorecards
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    written = write_scorecards(list(cards.values()), tmp_path, ["json"])
    assert sorted(p.name for p in written) == ["acme.json", "bravo.json", "zeta.json"]
    for path in written:
        document = json.loads(path.read_text(encoding="utf-8"))
        validator.validate(document)
        assert document["schema_version"] == schema["properties"]["schema_version"]["const"]
    broken = json.loads((tmp_path / "acme.json").read_text())
    broken["metrics"]["cs_sentiment"]["value"] = 3.0
    assert not validator.is_valid(broken)


def test_vendor_without_attributable_reviews(cards: dict[str, dict[str, Any]]) -> None:
    zeta = cards["zeta"]
    assert zeta["status"] == "no_attributable_reviews" and zeta["n_reviews"] == 0
    assert all(m["value"] is None and m["vs_median"] is None for m in zeta["metrics"].values())
    assert zeta["excerpts"] == {"worst": [], "best": []}
    page = render_html(zeta)
    assert "No attributable reviews" in page
    assert 'id="headline"' not in page and "0.000" not in page


def test_csv_one_row_per_vendor(tmp_path: Path, cards: dict[str, dict[str, Any]]) -> None:
    (path,) = write_scorecards(list(cards.values()), tmp_path, ["csv"])
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["vendor_id"] for r in rows] == ["acme", "bravo", "zeta"]
    acme, zeta = rows[0], rows[2]
    assert float(acme["cs_sentiment"]) == pytest.approx(cards["acme"]["metrics"]["cs_sentiment"]["value"])
    assert int(acme["cs_sentiment_n"]) == cards["acme"]["metrics"]["cs_sentiment"]["n"]
    assert zeta["cs_sentiment"] == "" and zeta["status"] == "no_attributable_reviews"


def test_cli_writes_every_format(tmp_path: Path, db: sqlite_utils.Database) -> None:
    db_path = db.execute("PRAGMA database_list").fetchone()[2]
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["--db", db_path, "scorecard", "--all", "--format", "html", "--format", "csv",
                                      "--format", "json", "--png", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"acme.html", "acme.json", "acme-trend.png", "zeta.html", "scorecards.csv"} <= names
    assert "zeta-trend.png" not in names  # nothing to draw
    assert (out / "acme-trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = CliRunner().invoke(cli, ["--db", db_path, "scorecard", "bravo", "--format", "json", "--out", str(tmp_path / "b")])
    assert one.exit_code == 0 and [p.name for p in (tmp_path / "b").iterdir()] == ["bravo.json"]


def test_unknown_vendor_lists_known_ones(db: sqlite_utils.Database) -> None:
    with pytest.raises(NotFoundError, match=r"unknown vendor 'nope'; known vendors: acme, bravo, zeta"):
        build_scorecards(db, ["nope"])
    db_path = db.execute("PRAGMA database_list").fetchone()[2]
    result = CliRunner().invoke(cli, ["--db", db_path, "scorecard", "nope"])
    assert result.exit_code == 1
    assert "unknown vendor 'nope'; known vendors: acme, bravo, zeta" in result.output


def test_no_rollups_tells_what_to_run(tmp_path: Path) -> None:
    empty = connect(tmp_path / "empty.db")
    with pytest.raises(RollupsMissingError, match="run `reputation rollup`"):
        build_scorecards(empty)
    unrolled = build_db(tmp_path / "unrolled.db", rollup=False)
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "unrolled.db"), "scorecard", "acme"])
    assert result.exit_code == 1 and "run `reputation rollup`" in result.output
    assert unrolled["reviews"].count > 0


def test_unwritable_output_dir_is_named(tmp_path: Path, db: sqlite_utils.Database, cards: dict[str, Any]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "reports"
    with pytest.raises(OutputError, match="a-file/reports"):
        write_scorecards(list(cards.values()), target, ["html"])
    db_path = db.execute("PRAGMA database_list").fetchone()[2]
    result = CliRunner().invoke(cli, ["--db", db_path, "scorecard", "acme", "--out", str(target)])
    assert result.exit_code == 1 and f"cannot write scorecards to '{target}'" in result.output


def test_vendor_or_all_is_required(db: sqlite_utils.Database) -> None:
    db_path = db.execute("PRAGMA database_list").fetchone()[2]
    result = CliRunner().invoke(cli, ["--db", db_path, "scorecard"])
    assert result.exit_code == 2 and "name one or more VENDOR ids, or pass --all" in result.output
