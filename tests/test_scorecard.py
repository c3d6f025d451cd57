"""Vendor scorecards and the overview on a small hand-built database: numbers, escaping, schema, files."""

from __future__ import annotations

import csv
import json
import os
import random
import stat
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
from reputation.rollups.ranking import MIN_PERIOD_N, MIN_RANK_N
from reputation.scorecards.content import (
    EXCERPT_THRESHOLD,
    RollupsMissingError,
    build_scorecards,
    scorecard_schema,
)
from reputation.scorecards.overview import build_overview, overview_schema
from reputation.scorecards.render import (
    OutputError,
    render_html,
    render_overview_csv,
    render_overview_html,
    write_scorecards,
)
from storage.database import connect
from storage.errors import NotFoundError, ReputationError

MODEL_ID, MODEL_REVISION = "test-model", "r1"
AS_OF = "2024-07-01"
NOW = "2024-07-01T00:00:00+00:00"
SCRIPT = "<script>alert(1)</script>"
SQL = "'; DROP TABLE reviews;--"
BRAVO_NAME = 'Bravo <b>Ops</b> & "Co"'
# A vendor name that is a spreadsheet formula and markup at once; too few reviews to be ranked.
TINY_NAME = '=HYPERLINK("https://evil.example","Tiny") <script>window.__pwned=1</script>'

VENDORS = [("acme", "Acme Contact Centres"), ("bravo", BRAVO_NAME), ("cobalt", "Cobalt Care"),
           ("tiny", TINY_NAME), ("zeta", "Zeta Idle")]
BRANDS = [("northwind", "Northwind Air"), ("contoso", "Contoso Bank"), ("fabrikam", "Fabrikam Mobile"),
          ("globex", "Globex Energy"), ("initech", "Initech Telecom"), ("hooli", "Hooli Shop")]
# (vendor, brand, start, end): northwind switches from acme to bravo; zeta's window has no reviews.
ENGAGEMENTS = [
    ("acme", "northwind", "2023-01-01", "2023-12-31"),
    ("bravo", "northwind", "2024-01-01", None),
    ("acme", "contoso", "2023-01-01", None),
    ("bravo", "fabrikam", "2023-01-01", None),
    ("cobalt", "initech", "2023-01-01", None),
    ("tiny", "hooli", "2024-01-01", None),
    ("zeta", "globex", "2030-01-01", None),
]
# Customer-service tone each vendor leaves in reviews: acme and cobalt too close to tell apart.
VENDOR_TONE = {"acme": 0.45, "cobalt": 0.42, "bravo": -0.35, "tiny": 0.9, None: 0.0}
DAYS = (3, 7, 11, 15, 19, 23, 27)  # reviews per brand and month: enough for every quarter to be drawn
# A review that is negative about one service detail but mostly praise: never a "worst" excerpt.
MOSTLY_POSITIVE = "Mostly praise: lovely staff, quick refund, one slow reply."


def _month_dates() -> list[str]:
    return [f"{y}-{m:02d}-{d:02d}" for y in (2023, 2024) for m in range(1, 13) for d in DAYS if (y, m) <= (2024, 6)]


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
        if brand == "hooli":
            continue
        for day in _month_dates():
            tone = VENDOR_TONE[_vendor_on(brand, day)]
            relevant = rng.random() < 0.8
            cs = max(-0.95, min(0.95, tone + rng.uniform(-0.4, 0.4))) if relevant else None
            specs.append({
                "brand": brand, "day": day, "cs": cs, "score": max(-1.0, min(1.0, (cs or 0) + rng.uniform(-0.2, 0.2))),
                "body": f"Review of {brand} on {day}. The support line was {'helpful' if (cs or 0) > 0 else 'slow'}.",
                "url": f"https://reviews.example/{brand}/{day}",
            })
    # tiny: a handful of glowing reviews, far fewer than a rank needs
    specs += [{"brand": "hooli", "day": f"2024-03-{d:02d}", "cs": 0.9, "score": 0.9, "url": None,
               "body": f"Hooli support was great on day {d}."} for d in range(1, 6)]
    specs += [
        {"brand": "contoso", "day": "2023-06-15", "cs": -0.99, "score": -0.9, "url": "https://reviews.example/contoso/evil",
         "body": f"{SCRIPT} The agent said {SQL} and hung up on me."},
        {"brand": "contoso", "day": "2023-06-16", "cs": -0.98, "score": -0.9, "url": "javascript:alert(2)",
         "body": "Support never called back. Worst service ever."},
        {"brand": "northwind", "day": "2023-06-17", "cs": -0.97, "score": 0.8, "url": "https://reviews.example/n/mixed",
         "body": MOSTLY_POSITIVE},
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
def cards(db: sqlite_utils.Database) -> dict[str, Any]:
    return {c["vendor"]["id"]: c for c in build_scorecards(db)}


def test_headline_numbers_come_from_attributed_reviews(
    db: sqlite_utils.Database, cards: dict[str, Any]
) -> None:
    for vendor in ("acme", "bravo", "cobalt"):
        row = db.table("vendor_reputation").get(vendor)
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
        shrunk = card["metrics"]["shrunk_score"]
        assert shrunk["low"] is not None and shrunk["low"] <= shrunk["value"] <= shrunk["high"]
        dates = sorted(r["published_at"] for r, _ in pairs)
        assert card["period"] == {"first": dates[0], "last": dates[-1]}
    assert cards["acme"]["metrics"]["cs_sentiment"]["value"] > cards["bravo"]["metrics"]["cs_sentiment"]["value"]
    # acme and cobalt cannot be told apart (ranks 1 and 2, both tied); bravo is clearly last
    assert {cards["acme"]["rank"]["position"], cards["cobalt"]["rank"]["position"]} == {1, 2}
    assert cards["acme"]["rank"]["tied"] and cards["cobalt"]["rank"]["tied"]
    assert cards["bravo"]["rank"] == {"position": 3, "of": 3, "tied": False, "p_best": cards["bravo"]["rank"]["p_best"],
                                      "min_n": MIN_RANK_N, "enough_evidence": True}
    assert cards["bravo"]["rank"]["p_best"] < 0.01
    assert sum(cards[v]["rank"]["p_best"] for v in ("acme", "bravo", "cobalt")) == pytest.approx(1.0, abs=1e-3)


def test_intervals_stay_within_their_range(cards: dict[str, Any]) -> None:
    for card in cards.values():
        for key, m in card["metrics"].items():
            low, high = (0.0, 1.0) if key.startswith("share") else (-1.0, 1.0)
            for value in (m["value"], m["low"], m["high"]):
                assert value is None or low <= value <= high
        for q in card["quarterly"]:
            for value in (q["cs_score"], q["cs_score_low"], q["cs_score_high"]):
                assert value is None or -1.0 <= value <= 1.0


def test_vendor_against_median_of_ranked_vendors(cards: dict[str, Any]) -> None:
    values = {v: cards[v]["metrics"]["cs_sentiment"]["value"] for v in ("acme", "bravo", "cobalt")}
    median = statistics.median(values.values())  # tiny (too few reviews) and zeta (none) do not count
    acme, bravo = cards["acme"]["metrics"]["cs_sentiment"], cards["bravo"]["metrics"]["cs_sentiment"]
    assert acme["median_all_vendors"] == pytest.approx(median, abs=1e-3)
    assert acme["vs_median"] == pytest.approx(acme["value"] - median, abs=1e-3)
    assert bravo["vs_median"] < 0 <= acme["vs_median"]


def test_brands_trend_and_switches(cards: dict[str, Any]) -> None:
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
    # ... which counts for acme (service fell after the client left it) and against bravo
    assert out[0]["cs_change_for_vendor"] == pytest.approx(-out[0]["cs_change"])
    assert into[0]["cs_change_for_vendor"] == pytest.approx(into[0]["cs_change"]) and into[0]["cs_change_for_vendor"] < 0


def test_quarterly_trend_with_gaps_below_the_minimum(cards: dict[str, Any]) -> None:
    acme = cards["acme"]
    assert acme["min_period_n"] == MIN_PERIOD_N
    quarters = [q["quarter"] for q in acme["quarterly"]]
    assert quarters == sorted(quarters) and "2023-Q2" in quarters
    q2 = next(q for q in acme["quarterly"] if q["quarter"] == "2023-Q2")
    expected = [s for r, s in attributable("acme") if "2023-04" <= r["published_at"][:7] <= "2023-06"
                and s["cs_score"] is not None]
    assert q2["n_cs"] == len(expected) and q2["enough"] is (len(expected) >= MIN_PERIOD_N) is True
    assert q2["cs_score_low"] <= q2["cs_score"] <= q2["cs_score_high"]
    tiny = cards["tiny"]["quarterly"]
    assert tiny and all(not q["enough"] for q in tiny)  # 5 reviews: drawn as a gap, so no chart
    assert "<svg" not in render_html(cards["tiny"])
    page = render_html(cards["acme"])
    assert "<svg" in page and "Customer-service score by quarter" in page
    assert page.count("<svg") == 1  # one chart, and no second axis: n sits under the quarter labels


def test_switch_table_labelled_and_coloured_for_the_cards_vendor(cards: dict[str, Any]) -> None:
    acme, bravo = render_html(cards["acme"]), render_html(cards["bravo"])
    for page in (acme, bravo):
        assert "Baseline: brand's non-service sentiment change" in page
        assert "Other vendors" not in page
    change = f"{cards['acme']['switches'][0]['cs_change']:+.2f}"
    # the same fall in service is good news on the card of the vendor the client left, bad on the new one's
    assert f'class="num pos">{change}<' in acme
    assert f'class="num neg">{change}<' in bravo


def test_excerpts_are_clear_service_sentences(cards: dict[str, Any]) -> None:
    reviews, sentiment = review_rows()
    label = {s["review_id"]: s["label"] for s in sentiment}
    for card in cards.values():
        worst, best = card["excerpts"]["worst"], card["excerpts"]["best"]
        assert card["excerpts"]["threshold"] == EXCERPT_THRESHOLD
        assert all(e["cs_score"] <= -EXCERPT_THRESHOLD and label[e["review_id"]] != "positive" for e in worst)
        assert all(e["cs_score"] >= EXCERPT_THRESHOLD and label[e["review_id"]] != "negative" for e in best)
        assert not {e["review_id"] for e in worst} & {e["review_id"] for e in best}
        assert all(MOSTLY_POSITIVE not in e["text"] for e in worst + best)
    # acme's service is good: its only clearly negative reviews are the two hostile ones; the review that is
    # negative about service but positive overall is left out, and nothing weaker fills the third place
    acme = cards["acme"]
    assert [e["url"] for e in acme["excerpts"]["worst"]] == ["https://reviews.example/contoso/evil", "javascript:alert(2)"]
    assert SCRIPT in acme["excerpts"]["worst"][0]["text"]
    assert len(acme["excerpts"]["best"]) == 3
    assert all(e["brand_id"] in {"northwind", "contoso"} for e in acme["excerpts"]["worst"] + acme["excerpts"]["best"])
    # one excerpt per brand before a second from the same brand
    assert {e["brand_id"] for e in cards["bravo"]["excerpts"]["worst"]} == {"northwind", "fabrikam"}


def test_html_shows_hostile_text_as_text(db: sqlite_utils.Database, cards: dict[str, Any]) -> None:
    page = render_html(cards["acme"])
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#39;; DROP TABLE reviews;--" in page
    assert 'href="https://reviews.example/contoso/evil"' in page
    assert "javascript:" not in page  # a non-http link is shown without a link
    assert "<svg" in page and "<path" in page
    bravo = render_html(cards["bravo"])
    assert BRAVO_NAME not in bravo and "Bravo &lt;b&gt;Ops&lt;/b&gt; &amp; &#34;Co&#34;" in bravo
    tiny = render_html(cards["tiny"])
    assert "<script>" not in tiny and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in tiny
    assert db["reviews"].count == len(review_rows()[0])  # the text was data, never SQL


def test_json_follows_the_schema(tmp_path: Path, db: sqlite_utils.Database, cards: dict[str, Any]) -> None:
    schema = scorecard_schema()  # as installed: package data of reputation.scorecards
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    written = write_scorecards(list(cards.values()), tmp_path, ["json"], overview=build_overview(db))
    assert sorted(p.name for p in written) == ["acme.json", "bravo.json", "cobalt.json", "overview.json",
                                               "tiny.json", "zeta.json"]
    for path in written:
        if path.name == "overview.json":
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        validator.validate(document)
        assert document["schema_version"] == schema["properties"]["schema_version"]["const"]
    raw = (tmp_path / "acme.json").read_text(encoding="utf-8")
    assert "<script>" not in raw and SCRIPT in json.dumps(json.loads(raw)["excerpts"], ensure_ascii=False)
    assert "<script>" not in (tmp_path / "overview.json").read_text(encoding="utf-8")
    broken = json.loads((tmp_path / "acme.json").read_text())
    broken["metrics"]["cs_sentiment"]["value"] = 3.0
    assert not validator.is_valid(broken)
    broken = json.loads((tmp_path / "acme.json").read_text())
    broken["excerpts"]["worst"][0]["cs_score"] = 0.4  # a positive "worst" excerpt
    assert not validator.is_valid(broken)
    overview = json.loads((tmp_path / "overview.json").read_text(encoding="utf-8"))
    overview_validator = jsonschema.Draft202012Validator(overview_schema(), format_checker=jsonschema.FormatChecker())
    overview_validator.validate(overview)
    tiny = next(v for v in overview["vendors"] if v["vendor_id"] == "tiny")
    tiny["score"] = 0.9  # a score for a vendor without enough evidence
    assert not overview_validator.is_valid(overview)


def test_vendors_without_enough_evidence(cards: dict[str, Any]) -> None:
    zeta, tiny = cards["zeta"], cards["tiny"]
    assert zeta["status"] == "no_attributable_reviews" and zeta["n_reviews"] == 0
    assert tiny["status"] == "not_enough_evidence" and 0 < tiny["metrics"]["cs_sentiment"]["n"] < MIN_RANK_N
    for card in (zeta, tiny):
        assert card["rank"]["position"] is None and card["rank"]["p_best"] is None
        assert not card["rank"]["enough_evidence"]
        # no number that would look precise: values, intervals and comparisons are all null
        assert all(m["value"] is None and m["low"] is None and m["vs_median"] is None for m in card["metrics"].values())
        page = render_html(card)
        assert "Not enough evidence" in page
        assert 'id="headline"' not in page and "0.000" not in page and "Rank <strong>" not in page
    assert zeta["excerpts"]["worst"] == [] and zeta["excerpts"]["best"] == []


def test_overview_ranks_verdicts_and_evidence(db: sqlite_utils.Database) -> None:
    overview = build_overview(db)
    jsonschema.Draft202012Validator(overview_schema(), format_checker=jsonschema.FormatChecker()).validate(overview)
    vendors: dict[str, Any] = {v["vendor_id"]: v for v in overview["vendors"]}
    order = [v["vendor_id"] for v in overview["vendors"]]
    assert set(order[:2]) == {"acme", "cobalt"} and order[2] == "bravo"
    assert order[3:] == ["tiny", "zeta"]  # not enough evidence: most reviews first
    assert overview["n_ranked"] == 3 and overview["min_rank_n"] == MIN_RANK_N
    first, second = overview["verdicts"]
    assert first["verdict"] == "tied" and "cannot be told apart on this evidence" in first["text"]
    assert second["verdict"] == "ahead" and second["lower_id"] == "bravo"
    assert "intervals do not overlap" in second["text"]
    assert vendors["acme"]["tied"] and vendors["cobalt"]["tied"] and not vendors["bravo"]["tied"]
    for vid in ("tiny", "zeta"):
        v = vendors[vid]
        assert v["status"] == "not_enough_evidence" and "not enough evidence" in v["verdict_text"]
        assert v["rank"] is None and v["score"] is None and v["score_low"] is None and v["p_best"] is None
    acme = vendors["acme"]
    assert acme["card"] == "acme.html" and {b["brand_id"] for b in acme["brands"]} == {"northwind", "contoso"}
    assert acme["score_low"] < acme["score"] < acme["score_high"]
    assert acme["first_review"] == "2023-01-03"

    page = render_overview_html(overview)
    assert page.count('class="vendor-mark"') == 3  # one mark per ranked vendor, none for the others
    assert page.count('class="tie"') == 1  # the bracket joining the two that cannot be told apart
    assert page.count("not enough evidence") >= 2
    assert 'href="acme.html"' in page and 'href="zeta.html"' in page
    assert "<script>" not in page and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert BRAVO_NAME not in page

    rows = list(csv.DictReader(render_overview_csv(overview).splitlines()))
    assert [r["vendor_id"] for r in rows] == order
    assert rows[2]["rank"] == "3" and rows[2]["verdict_vs_next"] == ""
    tiny = next(r for r in rows if r["vendor_id"] == "tiny")
    assert tiny["rank"] == "" and tiny["score"] == "" and tiny["p_best"] == "" and tiny["status"] == "not_enough_evidence"
    assert tiny["vendor_name"] == "'" + TINY_NAME  # a formula is shown as text in a spreadsheet
    assert tiny["verdict_text"].startswith("'=")


def test_csv_one_row_per_vendor_in_a_meaningful_order(tmp_path: Path, cards: dict[str, Any]) -> None:
    (path,) = write_scorecards(list(cards.values()), tmp_path, ["csv"])
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    header = next(csv.reader(path.open(encoding="utf-8")))
    assert header[:12] == ["vendor_id", "vendor_name", "status", "rank", "rank_of", "tied", "p_best", "min_n",
                           "shrunk_score", "shrunk_score_low", "shrunk_score_high", "shrunk_score_n"]
    assert header != sorted(header)
    assert [r["vendor_id"] for r in rows] == ["acme", "bravo", "cobalt", "tiny", "zeta"]
    acme, tiny, zeta = rows[0], rows[3], rows[4]
    assert float(acme["cs_sentiment"]) == pytest.approx(cards["acme"]["metrics"]["cs_sentiment"]["value"])
    assert int(acme["cs_sentiment_n"]) == cards["acme"]["metrics"]["cs_sentiment"]["n"]
    assert zeta["cs_sentiment"] == "" and zeta["status"] == "no_attributable_reviews"
    assert tiny["rank"] == "" and tiny["shrunk_score"] == "" and tiny["status"] == "not_enough_evidence"
    assert tiny["vendor_name"] == "'" + TINY_NAME


def test_every_file_is_readable_by_all_whatever_the_umask(
    tmp_path: Path, db: sqlite_utils.Database, cards: dict[str, Any]
) -> None:
    old = os.umask(0o077)
    try:
        written = write_scorecards(list(cards.values()), tmp_path / "out", ["html", "json", "csv"], png=True,
                                   overview=build_overview(db))
    finally:
        os.umask(old)
    names = {p.name for p in written}
    assert {"index.html", "overview.json", "overview.csv", "acme.html", "acme-trend.png", "scorecards.csv"} <= names
    assert "tiny-trend.png" not in names  # every quarter is a gap: nothing to draw
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_cli_writes_every_format(tmp_path: Path, db: sqlite_utils.Database) -> None:
    db_path = db.execute("PRAGMA database_list").fetchone()[2]
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["--db", db_path, "scorecard", "--all", "--format", "html", "--format", "csv",
                                      "--format", "json", "--png", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"acme.html", "acme.json", "acme-trend.png", "zeta.html", "scorecards.csv", "index.html", "overview.json",
            "overview.csv"} <= names
    assert "zeta-trend.png" not in names  # nothing to draw
    assert 'href="index.html"' in (out / "acme.html").read_text(encoding="utf-8")
    assert (out / "acme-trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = CliRunner().invoke(cli, ["--db", db_path, "scorecard", "bravo", "--format", "json", "--out", str(tmp_path / "b")])
    # one vendor: its card only, no overview that would list a single vendor
    assert one.exit_code == 0 and [p.name for p in (tmp_path / "b").iterdir()] == ["bravo.json"]


def test_unknown_vendor_lists_known_ones(db: sqlite_utils.Database) -> None:
    with pytest.raises(NotFoundError, match=r"unknown vendor 'nope'; known vendors: acme, bravo, cobalt, tiny, zeta"):
        build_scorecards(db, ["nope"])
    db_path = db.execute("PRAGMA database_list").fetchone()[2]
    result = CliRunner().invoke(cli, ["--db", db_path, "scorecard", "nope"])
    assert result.exit_code == 1
    assert "unknown vendor 'nope'; known vendors: acme, bravo, cobalt, tiny, zeta" in result.output


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
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert issubclass(OutputError, ReputationError)


def test_vendor_or_all_is_required(db: sqlite_utils.Database) -> None:
    db_path = db.execute("PRAGMA database_list").fetchone()[2]
    result = CliRunner().invoke(cli, ["--db", db_path, "scorecard"])
    assert result.exit_code == 2 and "name one or more VENDOR ids, or pass --all" in result.output
