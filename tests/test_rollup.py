"""Roll-ups on small hand-built databases whose right answers are worked out in the comments."""

from __future__ import annotations

import json
import math
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
import yaml
from click.testing import CliRunner
from conftest import Builder

from reputation import api
from reputation.cli import cli
from reputation.rollups.build import RollupError, build_rollups
from reputation.rollups.views import TABLES, VIEWS
from storage.errors import NotFoundError

AS_OF = date(2024, 12, 31)
T95_2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom


def row(db: sqlite_utils.Database, table: str, **key: str) -> dict[str, Any]:
    where = " AND ".join(f"{k} = ?" for k in key)
    rows = list(db.query(f"SELECT * FROM {table} WHERE {where}", list(key.values())))
    assert len(rows) == 1, rows
    return rows[0]


def test_attribution_follows_engagement_windows(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme", "bolt").brand("shop")
    make.engage("acme", "shop", "2024-01-01", "2024-03-31").engage("bolt", "shop", "2024-04-01")  # open end
    make.review("shop", "2023-12-15", cs=0.5)  # before any engagement: brand only
    make.review("shop", "2024-01-01", cs=0.1)  # first day, inclusive
    make.review("shop", "2024-03-31", cs=0.3)  # last day, inclusive
    make.review("shop", "2024-11-30", cs=-0.2)  # open window runs to as_of
    build_rollups(db, as_of=AS_OF)
    assert row(db, "brand_reputation", brand_id="shop")["n_reviews"] == 4
    acme, bolt = (
        row(db, "vendor_reputation", vendor_id="acme"),
        row(db, "vendor_reputation", vendor_id="bolt"),
    )
    assert (acme["n_reviews"], acme["n_cs"], acme["cs_score"]) == (2, 2, pytest.approx(0.2))
    assert (bolt["n_reviews"], bolt["cs_score"]) == (1, pytest.approx(-0.2))
    assert json.loads(acme["brands"]) == [
        {"brand_id": "shop", "brand_name": "Shop", "n": 2, "n_cs": 2, "weight": 1.0}
    ]


def test_concurrent_vendors_split_each_review_by_share(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme", "bolt").brand("bank")
    make.engage("acme", "bank", "2024-01-01", share=0.6).engage("bolt", "bank", "2024-01-01", share=0.2)
    rid = make.review("bank", "2024-05-01", cs=0.4, label="positive", score=0.5)
    build_rollups(db, as_of=AS_OF)
    weights = dict(
        db.execute("SELECT vendor_id, weight FROM vendor_review_attribution WHERE review_id = ?", [rid])
    )
    assert weights == {"acme": pytest.approx(0.75), "bolt": pytest.approx(0.25)}  # 0.6/0.8 and 0.2/0.8
    assert sum(weights.values()) == pytest.approx(1.0)
    assert row(db, "vendor_reputation", vendor_id="acme")["cs_score"] == pytest.approx(0.4)
    assert row(db, "brand_reputation", brand_id="bank")["n_reviews"] == 1  # counted once for the brand


def test_metrics_intervals_shrinkage_and_rank(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme", "bolt", "idle").brand("shop", "bank")
    make.engage("acme", "shop", "2024-01-01").engage("bolt", "bank", "2024-01-01")
    for value, label in ((0.2, "positive"), (0.4, "positive"), (0.6, "negative")):
        make.review("shop", "2024-06-01", cs=value, score=value, label=label)
    make.review("bank", "2024-06-01", cs=-0.4, score=-0.4, label="negative")
    summary = build_rollups(db, as_of=AS_OF, prior_strength=20)
    acme = row(db, "vendor_reputation", vendor_id="acme")
    # CS scores 0.2, 0.4, 0.6: mean 0.4, sd 0.2, t interval with 2 df
    assert acme["cs_score"] == pytest.approx(0.4)
    assert acme["cs_score_low"] == pytest.approx(0.4 - T95_2 * 0.2 / math.sqrt(3))
    assert acme["cs_score_high"] == pytest.approx(0.4 + T95_2 * 0.2 / math.sqrt(3))
    # 2 positive of 3, Wilson with z = 1.959964
    z = 1.959963984540054
    p, n = 2 / 3, 3
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert acme["share_positive"] == pytest.approx(p)
    assert (acme["share_positive_low"], acme["share_positive_high"]) == (
        pytest.approx(centre - half),
        pytest.approx(centre + half),
    )
    # prior = pooled CS mean over vendors (0.2 + 0.4 + 0.6 - 0.4) / 4 = 0.2
    assert acme["shrunk_score"] == pytest.approx((3 * 0.4 + 20 * 0.2) / 23)
    bolt = row(db, "vendor_reputation", vendor_id="bolt")
    assert bolt["shrunk_score"] == pytest.approx((1 * -0.4 + 20 * 0.2) / 21)
    assert (bolt["cs_score_low"], bolt["cs_score_high"]) == (None, None)  # n = 1: no spread to estimate
    idle = row(db, "vendor_reputation", vendor_id="idle")
    assert idle["n_reviews"] == 0
    assert all(
        idle[c] is None for c in ("mean_score", "cs_score", "share_positive", "shrunk_score", "recency_score")
    )
    assert [r["vendor_id"] for r in db.query("SELECT vendor_id FROM latest_vendor_reputation")] == [
        "acme",
        "bolt",
        "idle",
    ]
    assert (acme["rank"], bolt["rank"], idle["rank"]) == (1, 2, 3)
    assert summary.n_vendors_ranked == 2
    meta = dict(db.execute("SELECT key, value FROM rollup_meta"))
    assert (meta["model_id"], meta["as_of"], float(meta["prior_cs_score_vendors"])) == (
        "m",
        "2024-12-31",
        pytest.approx(0.2),
    )


def test_recency_weight_halves_per_half_life(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme").brand("shop").engage("acme", "shop", "2024-01-01")
    make.review("shop", "2024-12-31", cs=1.0)  # age 0: weight 1
    make.review("shop", "2024-07-04", cs=0.0)  # age 180 days: weight 0.5
    build_rollups(db, as_of=AS_OF, half_life_days=180)
    assert row(db, "vendor_reputation", vendor_id="acme")["recency_score"] == pytest.approx(1.0 / 1.5)
    assert row(db, "brand_reputation", brand_id="shop")["recency_score"] == pytest.approx(1.0 / 1.5)


def test_brand_balance_weighs_brands_by_sqrt_n(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme").brand("big", "small")
    make.engage("acme", "big", "2024-01-01").engage("acme", "small", "2024-01-01")
    for _ in range(4):
        make.review("big", "2024-06-01", cs=1.0)
    make.review("small", "2024-06-01", cs=-1.0)
    build_rollups(db, as_of=AS_OF)
    acme = row(db, "vendor_reputation", vendor_id="acme")
    # weights sqrt(4) = 2 and sqrt(1) = 1: (2 * 1 + 1 * -1) / 3, not the pooled (4 - 1) / 5
    assert acme["cs_score"] == pytest.approx(1 / 3)
    assert [(b["brand_id"], b["weight"]) for b in json.loads(acme["brands"])] == [
        ("big", 0.6667),
        ("small", 0.3333),
    ]
    assert acme["n_brands"] == 2


def test_vendor_switch_difference_in_differences(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme", "bolt").brand("shop")
    make.engage("acme", "shop", "2024-01-01", "2024-03-31").engage("bolt", "shop", "2024-04-20")
    make.review("shop", "2024-02-01", cs=0.0)
    make.review("shop", "2024-03-01", cs=-0.2)
    make.review("shop", "2024-03-15", score=0.2)  # non-CS baseline before
    make.review("shop", "2024-05-01", cs=0.6)
    make.review("shop", "2024-06-01", score=0.3)  # non-CS baseline after
    make.review("shop", "2024-12-01", cs=-1.0)  # after the 180-day window
    build_rollups(db, as_of=AS_OF)
    switch = row(db, "vendor_switches", brand_id="shop")
    assert (switch["from_vendor_id"], switch["to_vendor_id"], switch["switch_date"]) == (
        "acme",
        "bolt",
        "2024-04-20",
    )
    assert (
        switch["n_cs_before"],
        switch["n_cs_after"],
        switch["n_other_before"],
        switch["n_other_after"],
    ) == (2, 1, 1, 1)
    assert switch["cs_before"] == pytest.approx(-0.1)
    assert switch["cs_change"] == pytest.approx(0.7)
    assert switch["other_change"] == pytest.approx(0.1)
    assert switch["did"] == pytest.approx(0.6)


def test_as_of_reproduces_the_past(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme", "bolt").brand("shop")
    make.engage("acme", "shop", "2024-01-01").engage("bolt", "shop", "2024-08-01")  # unknown in June
    make.review("shop", "2024-03-01", cs=0.5)
    make.review("shop", "2024-05-01", cs=0.1, seen="2024-09-01")  # crawled after as_of
    make.review("shop", "2024-09-01", cs=-0.5)
    build_rollups(db, as_of=date(2024, 6, 30))
    acme = row(db, "vendor_reputation", vendor_id="acme")
    assert (acme["n_reviews"], acme["cs_score"]) == (1, pytest.approx(0.5))
    assert row(db, "vendor_reputation", vendor_id="bolt")["n_reviews"] == 0
    assert dict(db.execute("SELECT key, value FROM rollup_meta"))["as_of"] == "2024-06-30"
    build_rollups(db, as_of=AS_OF)
    acme = row(db, "vendor_reputation", vendor_id="acme")
    # both vendors from August: the September review weighs 0.5 for each
    assert (acme["n_reviews"], acme["cs_score"]) == (3, pytest.approx((0.5 + 0.1 - 0.5 * 0.5) / 2.5))
    assert row(db, "vendor_reputation", vendor_id="bolt")["n_reviews"] == 1


def test_exclusions_copies_non_english_undated(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme", "bolt").brand("solo", "shared")
    make.engage("acme", "solo", "2024-01-01").engage("acme", "shared", "2024-01-01", "2024-05-31")
    make.engage("bolt", "shared", "2024-06-01")
    text = "The agent hung up on me twice and never called back about the missing parcel, awful support."
    original = make.review("solo", "2024-03-01", cs=-0.8, author="x", body=text)
    copy = make.review("solo", "2024-03-05", cs=-0.8, author="x", body=text + " Avoid.")
    make.review("solo", "2024-03-06", cs=0.9, language="fr")
    make.review("solo", None, cs=0.2, precision="missing")  # single-vendor brand: attributed
    make.review("shared", None, cs=0.2, precision="missing")  # two vendors: not attributed
    make.review("shared", "2024-07-01", cs=0.4, precision="relative")
    summary = build_rollups(db, as_of=AS_OF)
    assert [tuple(r) for r in db.execute("SELECT review_id, original_id FROM review_duplicates")] == [
        (copy, original)
    ]
    solo = row(db, "brand_reputation", brand_id="solo")
    assert (solo["n_reviews"], solo["n_duplicates"], solo["n_non_english"], solo["n_cs"]) == (3, 1, 1, 2)
    assert solo["cs_score"] == pytest.approx(-0.3)  # -0.8 and the undated 0.2
    acme = row(db, "vendor_reputation", vendor_id="acme")
    assert (acme["n_reviews"], acme["n_cs"], acme["n_undated"], acme["n_duplicates"]) == (3, 2, 1, 1)
    bolt = row(db, "vendor_reputation", vendor_id="bolt")
    assert (bolt["n_reviews"], bolt["n_relative_date"], bolt["n_undated"]) == (1, 1, 1)
    assert (summary.n_duplicates, summary.n_non_english, summary.n_undated) == (1, 1, 2)
    months = {r["month"] for r in db.query("SELECT month FROM vendor_monthly WHERE vendor_id = 'acme'")}
    assert months == {"2024-03"}  # the undated review has no month


def test_rebuild_is_idempotent(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme", "bolt").brand("shop")
    make.engage("acme", "shop", "2024-01-01", "2024-03-31").engage("bolt", "shop", "2024-04-01", share=0.5)
    for i in range(12):
        make.review("shop", f"2024-{i + 1:02d}-10", cs=(i % 5) / 5 - 0.4, score=(i % 3) / 3, label="positive")

    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        out = {t: [tuple(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in TABLES}
        out["rollup_meta"] = [r for r in out["rollup_meta"] if r[0] != "built_at"]
        return out

    build_rollups(db, as_of=AS_OF)
    first = snapshot()
    build_rollups(db, as_of=AS_OF)
    assert snapshot() == first
    assert first["vendor_monthly"]


def test_model_choice_and_errors(db: sqlite_utils.Database, make: Builder) -> None:
    with pytest.raises(RollupError, match="no reviews"):
        build_rollups(db, as_of=AS_OF)
    make.vendor("acme").brand("shop").engage("acme", "shop", "2024-01-01")
    make.review("shop", "2024-06-01", cs=0.5)
    make.review("shop", "2024-06-02", cs=0.5)
    make.review("shop", "2024-06-03", cs=-0.5, model=("other", "7"))
    with pytest.raises(RollupError, match=r"no reviews on or before 2023-01-01"):
        build_rollups(db, as_of=date(2023, 1, 1))
    with pytest.raises(NotFoundError, match="nope"):
        build_rollups(db, as_of=AS_OF, model_id="nope")
    assert build_rollups(db, as_of=AS_OF).model_id == "m"  # most scores
    build_rollups(db, as_of=AS_OF, model_id="other@7")
    assert row(db, "brand_reputation", brand_id="shop")["cs_score"] == pytest.approx(-0.5)


def test_search_views_cli_and_api(db_path: Path, db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme").brand("shop").engage("acme", "shop", "2024-01-01")
    make.review("shop", "2024-06-01", cs=-0.9, body="Refund never arrived, the hotline kept me waiting")
    make.review("shop", "2024-07-01", cs=0.7, body="Lovely chat agent sorted everything")
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "rollup", "--as-of", "2024-12-31", "--prior-strength", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "roll-ups as of 2024-12-31" in result.output
    hits = list(db.query("SELECT rowid FROM reviews_fts WHERE reviews_fts MATCH 'hotline'"))
    assert len(hits) == 1
    make.review("shop", "2024-08-01", body="the hotline again")  # triggers keep search current
    assert len(list(db.query("SELECT rowid FROM reviews_fts WHERE reviews_fts MATCH 'hotline'"))) == 2
    assert len(list(db.query("SELECT * FROM review_scores WHERE cs_score IS NOT NULL"))) == 2

    frames = api.load_rollups(db_path)
    assert set(frames) == set(api.ROLLUP_TABLES)
    table = api.vendor_table(db_path)
    assert table.loc[0, "vendor_id"] == "acme"
    assert table.loc[0, "brands"][0]["brand_id"] == "shop"
    assert list(api.monthly(db_path, "acme")["month"]) == ["2024-06", "2024-07"]
    assert api.switches(db_path).empty
    with pytest.raises(NotFoundError):
        api.monthly(db_path, "ghost")

    empty = CliRunner().invoke(cli, ["--db", str(db_path.parent / "empty.db"), "rollup"])
    assert empty.exit_code == 1
    assert "no reviews yet" in empty.output


def test_metadata_documents_every_rollup_column(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme").brand("shop").engage("acme", "shop", "2024-01-01")
    make.review("shop", "2024-06-01", cs=0.1)
    build_rollups(db, as_of=AS_OF)
    path = resources.files("reputation.rollups").joinpath("datasette-metadata.yaml")  # as installed
    tables = yaml.safe_load(path.read_text(encoding="utf-8"))["databases"]["reputation"]["tables"]
    for name in [
        *TABLES,
        *VIEWS,
        "reviews",
        "review_sentiment",
        "engagements",
        "vendors",
        "brands",
        "sources",
    ]:
        actual = {
            c.name for c in (db.table(name) if name in TABLES or name not in VIEWS else db.view(name)).columns
        }
        documented = set(tables[name]["columns"])
        assert actual <= documented, f"{name}: undocumented {sorted(actual - documented)}"
        if name in TABLES or name in VIEWS:
            assert documented == actual, f"{name}: documented but absent {sorted(documented - actual)}"
