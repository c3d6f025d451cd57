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

from crawler.pipelines.review_writer import rekey
from reputation import api
from reputation.cli import cli
from reputation.rollups.build import RollupError, build_rollups
from reputation.rollups.ranking import MIN_PERIOD_N, MIN_RANK_N, ranking
from reputation.rollups.statistics import bounded_mean_interval
from reputation.rollups.views import TABLES, VIEWS
from storage.database import transaction
from storage.errors import NotFoundError

AS_OF = date(2024, 12, 31)


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
    # CS scores 0.2, 0.4, 0.6: mean 0.4, sd 0.2, bounded interval on 3 reviews
    assert acme["cs_score"] == pytest.approx(0.4)
    low, high = bounded_mean_interval(0.4, 0.2, 3)
    assert (acme["cs_score_low"], acme["cs_score_high"]) == (pytest.approx(low), pytest.approx(high))
    assert -1 < acme["cs_score_low"] < 0.4 < acme["cs_score_high"] < 1
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
    # n = 1: no spread to estimate, so the worst case (Wilson on 1 trial), still inside -1..1
    assert -1 < bolt["cs_score_low"] < -0.4 < bolt["cs_score_high"] < 1
    assert bolt["shrunk_score_low"] < bolt["shrunk_score"] < bolt["shrunk_score_high"]
    idle = row(db, "vendor_reputation", vendor_id="idle")
    assert idle["n_reviews"] == 0
    assert all(
        idle[c] is None
        for c in ("mean_score", "cs_score", "share_positive", "shrunk_score", "shrunk_score_low", "recency_score")
    )
    # 3, 1 and 0 customer-service reviews: all below MIN_RANK_N, so nobody is ranked
    assert [r["vendor_id"] for r in db.query("SELECT vendor_id FROM latest_vendor_reputation")] == [
        "acme",
        "bolt",
        "idle",
    ]
    for vendor in (acme, bolt, idle):
        assert (vendor["rank"], vendor["rank_status"], vendor["p_best"]) == (None, "not enough evidence", None)
    assert summary.n_vendors_ranked == 0
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


def spread(make: Builder, brand: str, mean: float, n: int, months: tuple[str, ...] = ("2024-02", "2024-05")) -> None:
    """``n`` customer-service reviews alternating mean +/- 0.1, spread over ``months``."""
    for i in range(n):
        make.review(brand, f"{months[i % len(months)]}-{i % 27 + 1:02d}", cs=mean + (0.1 if i % 2 else -0.1))


def test_ranking_verdicts_p_best_and_minimum_n(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("alpha", "beta", "gamma", "delta", "idle").brand("a", "b", "g", "d")
    for vendor, brand in (("alpha", "a"), ("beta", "b"), ("gamma", "g"), ("delta", "d")):
        make.engage(vendor, brand, "2024-01-01")
    spread(make, "a", 0.8, 40, ("2024-02",) * 3 + ("2024-05",) * 2)  # 24 in Q1, 16 in Q2
    spread(make, "b", 0.75, 40)  # a hair behind alpha: the intervals overlap
    spread(make, "g", -0.5, 40)  # far below beta: the intervals do not overlap
    spread(make, "d", 1.0, MIN_RANK_N - 1)  # the best score, but too few reviews for a rank
    summary = build_rollups(db, as_of=AS_OF)
    rows = ranking(db)
    assert [(r["vendor_id"], r["rank"], r["status"]) for r in rows] == [
        ("alpha", 1, "ranked"),
        ("beta", 2, "ranked"),
        ("gamma", 3, "ranked"),
        ("delta", None, "not enough evidence"),
        ("idle", None, "not enough evidence"),
    ]
    alpha, beta, gamma, delta, idle = rows
    assert summary.n_vendors_ranked == 3
    assert (alpha["verdict_vs_next"], beta["verdict_vs_next"], gamma["verdict_vs_next"]) == ("tied", "ahead", None)
    assert alpha["cs_shrunk_low"] < beta["cs_shrunk_high"]  # overlap, hence tied
    assert beta["cs_shrunk_low"] > gamma["cs_shrunk_high"]
    assert alpha["verdict_text"] == "Alpha and Beta cannot be told apart on this evidence: the intervals overlap"
    assert beta["verdict_text"] == "Beta is ahead of Gamma: the intervals do not overlap"
    assert delta["verdict_text"] == f"Delta: not enough evidence to rank ({MIN_RANK_N - 1} customer-service reviews, {MIN_RANK_N} needed)"
    assert idle["n"] == 0 and idle["cs_shrunk"] is None and idle["verdict_vs_next"] is None
    assert delta["p_best"] is None and delta["cs_shrunk"] is not None  # a score, but no rank claimed
    # P(best) over the ranked vendors sums to 1; alpha is ahead of beta on a coin-flip-plus, not certainty
    assert sum(r["p_best"] for r in rows if r["rank"] is not None) == pytest.approx(1.0)
    assert alpha["p_best"] > beta["p_best"] > gamma["p_best"]
    assert 0.5 < alpha["p_ahead_next"] < 0.95 and beta["p_ahead_next"] > 0.99
    for r in rows[:3]:
        assert -1 <= r["cs_shrunk_low"] < r["cs_shrunk"] < r["cs_shrunk_high"] <= 1
        assert -1 <= r["cs_low"] < r["cs_score"] < r["cs_high"] <= 1
    assert alpha["evidence"] == {
        "brands": [{"brand_id": "a", "brand_name": "A", "n": 40, "n_cs": 40, "weight": 1.0}],
        "n_reviews": 40,
        "n_cs": 40,
        "first_review": "2024-02-01",
        "last_review": "2024-05-25",
        "as_of": "2024-12-31",
    }
    build_rollups(db, as_of=AS_OF)
    assert [r["p_best"] for r in ranking(db)] == [r["p_best"] for r in rows]  # seeded: same numbers again
    quarters = list(db.query("SELECT * FROM vendor_quarterly WHERE vendor_id = 'alpha' ORDER BY quarter"))
    assert [(q["quarter"], q["start_date"], q["end_date"], q["n_cs"], q["enough"]) for q in quarters] == [
        ("2024-Q1", "2024-01-01", "2024-03-31", 24, int(MIN_PERIOD_N <= 24)),
        ("2024-Q2", "2024-04-01", "2024-06-30", 16, int(MIN_PERIOD_N <= 16)),
    ]
    assert quarters[0]["cs_score"] == pytest.approx(0.8)
    assert -1 <= quarters[0]["cs_score_low"] < 0.8 < quarters[0]["cs_score_high"] <= 1


def test_channel_scope_attributes_reviews_by_the_channel_they_reveal(
    db: sqlite_utils.Database, make: Builder
) -> None:
    make.vendor("voicey", "chatty", "allco").brand("air", "bank")
    engagements = db.table("engagements")
    for vendor, brand, scope in (("voicey", "air", "voice"), ("chatty", "air", "chat"),
                                 ("voicey", "bank", "phone"), ("allco", "bank", "all")):
        engagements.insert({"vendor_id": vendor, "brand_id": brand, "start_date": "2024-01-01", "share": 0.5,
                            "scope": scope})
    day = "2024-06-01"
    chat = make.review("air", day, cs=0.8, body="The live chat agent sorted it in minutes.")
    chat_email = make.review("air", day, cs=0.4, body="Chat support promised an email follow-up, which came.")
    voice = make.review("air", day, cs=-0.6, body="I called twice and sat on hold for an hour.")
    silent = make.review("air", day, cs=0.2, body="Support was fine.")
    both = make.review("air", day, cs=0.0, body="I phoned, then tried the Chat as well.")
    bank_email = make.review("bank", day, cs=0.5, body="They emailed me back the same day.")
    bank_phone = make.review("bank", day, cs=-0.5, body="The call centre kept me waiting.")
    bank_silent = make.review("bank", day, cs=0.1, body="Fine support overall.")
    build_rollups(db, as_of=AS_OF)

    def attributed(review_id: str) -> dict[str, tuple[float, str, str]]:
        rows = db.execute(
            "SELECT vendor_id, weight, channels, basis FROM vendor_review_attribution WHERE review_id = ?",
            [review_id],
        )
        return {v: (pytest.approx(w), c, b) for v, w, c, b in rows}

    assert attributed(chat) == {"chatty": (1.0, "chat", "scope")}
    assert attributed(chat_email) == {"chatty": (1.0, "chat,email", "scope")}  # only chat is a scope here
    assert attributed(voice) == {"voicey": (1.0, "voice", "scope")}
    assert attributed(silent) == {"chatty": (0.5, "", "share"), "voicey": (0.5, "", "share")}
    assert attributed(both) == {"chatty": (0.5, "chat,voice", "share"), "voicey": (0.5, "chat,voice", "share")}
    assert attributed(bank_email) == {"allco": (1.0, "email", "scope")}  # no email scope: the all-scope vendor
    assert attributed(bank_phone) == {"voicey": (1.0, "voice", "scope")}  # scope "phone" names the voice channel
    assert attributed(bank_silent) == {"allco": (0.5, "", "share"), "voicey": (0.5, "", "share")}
    keywords = dict(db.execute("SELECT review_id, keywords FROM review_channels"))
    assert keywords[voice] == "called, on hold"
    assert keywords[both] == "chat, phoned"
    assert keywords[silent] == ""
    # each review's weights add up to 1, and the brand counts every review once
    total = db.execute("SELECT sum(weight) FROM vendor_review_attribution WHERE brand_id = 'air'").fetchone()[0]
    assert total == pytest.approx(5.0)
    assert row(db, "brand_reputation", brand_id="air")["n_reviews"] == 5
    chatty = row(db, "vendor_reputation", vendor_id="chatty")
    # chat 0.8 and chat_email 0.4 at weight 1, silent 0.2 and both 0.0 at weight 0.5
    assert chatty["cs_score"] == pytest.approx((0.8 + 0.4 + 0.5 * 0.2 + 0.5 * 0.0) / 3)
    assert chatty["n_reviews"] == 4


def test_channel_scans_are_reused_until_the_text_or_the_id_changes(
    db: sqlite_utils.Database, make: Builder
) -> None:
    make.vendor("voicey", "chatty").brand("air")
    for vendor, scope in (("voicey", "voice"), ("chatty", "chat")):
        db.table("engagements").insert(
            {"vendor_id": vendor, "brand_id": "air", "start_date": "2024-01-01", "share": 0.5, "scope": scope}
        )
    edited = make.review("air", "2024-06-01", cs=0.5, body="I called and waited on hold.")
    kept = make.review("air", "2024-06-02", cs=-0.5, body="The live chat was quick.")
    build_rollups(db, as_of=AS_OF)
    saved = {r: (c, k) for r, _rowid, _key, c, k in db.execute("SELECT * FROM review_channel_scans")}
    assert saved == {edited: ("voice", "called, on hold"), kept: ("chat", "live chat")}

    def attributed(review_id: str) -> dict[str, tuple[float, str]]:
        rows = db.execute(
            "SELECT vendor_id, weight, basis FROM vendor_review_attribution WHERE review_id = ?", [review_id]
        )
        return {v: (pytest.approx(w), b) for v, w, b in rows}

    # an edited text is read again; a saved scan whose text is unchanged is used as it is
    with transaction(db) as conn:
        conn.execute("UPDATE reviews SET body = 'Sorted over email, then on Twitter.' WHERE id = ?", [edited])
        conn.execute("UPDATE review_channel_scans SET keywords = 'as saved' WHERE review_id = ?", [kept])
    build_rollups(db, as_of=AS_OF)
    found = {r: (c, k) for r, _b, c, k in db.execute("SELECT * FROM review_channels")}
    assert found == {edited: ("email,social", "email, twitter"), kept: ("chat", "as saved")}
    assert attributed(edited) == {"voicey": (0.5, "share"), "chatty": (0.5, "share")}  # no email scope

    # a re-keyed review is found under its new id, and no saved scan is left under the old one
    with transaction(db) as conn:
        rekey(conn, kept, "site:src-air:77", "77")
    build_rollups(db, as_of=AS_OF)
    scanned = {r for (r,) in db.execute("SELECT review_id FROM review_channel_scans")}
    assert scanned == {edited, "site:src-air:77"}
    assert attributed("site:src-air:77") == {"chatty": (1.0, "scope")}


def test_metadata_canned_queries_run(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("acme").brand("shop").engage("acme", "shop", "2024-01-01")
    make.review("shop", "2024-06-01", cs=-0.5, body="Waited on hold for ages")
    build_rollups(db, as_of=AS_OF)
    path = resources.files("reputation.rollups").joinpath("datasette-metadata.yaml")
    queries = yaml.safe_load(path.read_text(encoding="utf-8"))["databases"]["reputation"]["queries"]
    params = {"vendor": "acme", "brand": "shop", "q": "hold"}
    for name, spec in queries.items():
        rows = db.execute(spec["sql"], params).fetchall()
        assert rows, name
    trend = db.execute(queries["quarterly_trend"]["sql"], params).fetchall()
    assert [r[0] for r in trend] == ["2024-Q2"]


def test_copy_search_is_reused_until_a_review_of_the_group_changes(
    db: sqlite_utils.Database, make: Builder
) -> None:
    make.vendor("acme").brand("shop").engage("acme", "shop", "2024-01-01")
    text = "The agent hung up on me twice and never called back about the missing parcel, awful support."
    other = "Quick delivery, the jacket fits and the colour is exactly as shown in the photos."
    original = make.review("shop", "2024-03-01", cs=-0.8, author="x", body=text)
    copy = make.review("shop", "2024-03-05", cs=-0.8, author="x", body=text)
    make.review("shop", "2024-03-06", cs=0.5, author="y", body=other)  # a lone review: no group

    def links() -> list[tuple[str, str]]:
        return [(r, o) for r, o in db.execute("SELECT review_id, original_id FROM review_duplicates ORDER BY 1")]

    def saved() -> list[tuple[str, str, list[list[Any]]]]:
        rows = db.execute("SELECT author_hash, brand_id, copies FROM review_copy_groups ORDER BY 1, 2")
        return [(a, b, json.loads(c)) for a, b, c in rows]

    def shop() -> tuple[int, int]:
        brand = row(db, "brand_reputation", brand_id="shop")
        return brand["n_reviews"], brand["n_duplicates"]

    build_rollups(db, as_of=AS_OF)
    assert links() == [(copy, original)] and shop() == (2, 1)
    assert saved() == [("x", "shop", [[copy, original, 1.0]])]

    # an unchanged group is not compared again: its saved result is used as it is
    with transaction(db) as conn:
        conn.execute("UPDATE review_copy_groups SET copies = '[]'")
    build_rollups(db, as_of=AS_OF)
    assert links() == [] and shop() == (3, 0)

    # editing a review's text drops its group's saved result (trigger), so the group is searched again
    with transaction(db) as conn:
        conn.execute("UPDATE reviews SET body = ? WHERE id = ?", [text + " Avoid.", copy])
    build_rollups(db, as_of=AS_OF)
    assert links() == [(copy, original)] and shop() == (2, 1)
    first = dict(db.execute("SELECT review_id, similarity FROM review_duplicates").fetchall())
    assert 0.5 <= first[copy] < 1.0

    # a re-keyed original: the link names the new id
    with transaction(db) as conn:
        rekey(conn, original, "site:src-shop:41", "41")
    build_rollups(db, as_of=AS_OF)
    assert links() == [(copy, "site:src-shop:41")]

    # a new review in the group changes its fingerprint: a third copy joins the cluster
    third = make.review("shop", "2024-03-09", cs=-0.8, author="x", body=text)
    build_rollups(db, as_of=AS_OF)
    assert links() == sorted([(copy, "site:src-shop:41"), (third, "site:src-shop:41")]) and shop() == (2, 2)

    # deleting the original: the copies link to the earliest one left
    with transaction(db) as conn:
        conn.execute("DELETE FROM reviews WHERE id = 'site:src-shop:41'")
    build_rollups(db, as_of=AS_OF)
    assert links() == [(third, copy)] and shop() == (2, 1)

    # an as_of before the copies: no candidates, and the group's saved row goes
    build_rollups(db, as_of=date(2024, 3, 6))
    assert links() == [] and saved() == []
    build_rollups(db, as_of=AS_OF)  # and the search runs again when the group is back in scope
    assert links() == [(third, copy)] and [link[:2] for link in saved()[0][2]] == [[third, copy]]


def test_rebuild_with_saved_searches_matches_a_first_build(tmp_path: Path) -> None:
    """A rebuild that reuses every saved result writes exactly what a build from nothing writes."""
    from bench.synth import AS_OF as SYNTH_AS_OF
    from bench.synth import make_database
    from storage.database import connect

    path = make_database(tmp_path / "synth.db", 3_000)
    db = connect(path)

    def snapshot() -> dict[str, list[tuple[Any, ...]]]:
        out = {t: sorted((tuple(r) for r in db.execute(f"SELECT * FROM {t}")), key=repr) for t in TABLES}
        out["rollup_meta"] = [r for r in out["rollup_meta"] if r[0] != "built_at"]
        return out

    try:
        build_rollups(db, as_of=SYNTH_AS_OF)
        first = snapshot()
        assert first["review_duplicates"] and first["review_channels"]
        groups = db.execute("SELECT count(*) FROM review_copy_groups").fetchone()[0]
        assert groups > 0
        build_rollups(db, as_of=SYNTH_AS_OF)
        assert snapshot() == first
        with transaction(db) as conn:  # forget every saved result: the same rows again
            conn.execute("DELETE FROM review_copy_groups")
            conn.execute("DELETE FROM review_channel_scans")
        build_rollups(db, as_of=SYNTH_AS_OF)
        assert snapshot() == first
        assert db.execute("SELECT count(*) FROM review_copy_groups").fetchone()[0] == groups
    finally:
        db.close()


def test_channel_scans_are_dropped_by_title_edits_and_deletes(db: sqlite_utils.Database, make: Builder) -> None:
    make.vendor("voicey", "chatty").brand("air")
    for vendor, scope in (("voicey", "voice"), ("chatty", "chat")):
        db.table("engagements").insert(
            {"vendor_id": vendor, "brand_id": "air", "start_date": "2024-01-01", "share": 0.5, "scope": scope}
        )
    titled = make.review("air", "2024-06-01", cs=0.5, title="Quick chat", body="Sorted in minutes.")
    gone = make.review("air", "2024-06-02", cs=-0.5, body="I rang twice.")
    steady = make.review("air", "2024-06-03", cs=0.1, title="Fine", body="Arrived on time.")
    build_rollups(db, as_of=AS_OF)

    def scans() -> dict[str, str]:
        return dict(db.execute("SELECT review_id, channels FROM review_channel_scans").fetchall())

    assert scans() == {titled: "chat", gone: "voice", steady: ""}
    with transaction(db) as conn:
        conn.execute("UPDATE reviews SET title = 'Called them' WHERE id = ?", [titled])
        conn.execute("UPDATE reviews SET last_seen = '2025-02-01T00:00:00+00:00' WHERE id = ?", [gone])
    assert scans() == {gone: "voice", steady: ""}  # a title edit drops the saved scan; a re-sighting keeps it
    with transaction(db) as conn:
        conn.execute("DELETE FROM reviews WHERE id = ?", [gone])
    assert scans() == {steady: ""}
    build_rollups(db, as_of=AS_OF)
    assert scans() == {titled: "voice", steady: ""}
    found = dict(db.execute("SELECT review_id, channels FROM review_channels").fetchall())
    assert found == {titled: "voice", steady: ""}

    # INSERT OR REPLACE deletes without firing the triggers (unless recursive_triggers is on, as
    # sqlite-utils sets it; other tools leave it off), but the new row has a new rowid
    replaced = next(db.query("SELECT * FROM reviews WHERE id = ?", [titled]))
    replaced["title"] = "Emailed them"
    db.conn.execute("PRAGMA recursive_triggers = OFF")
    try:
        with transaction(db) as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO reviews ({', '.join(replaced)}) VALUES ({', '.join('?' for _ in replaced)})",
                list(replaced.values()),
            )
    finally:
        db.conn.execute("PRAGMA recursive_triggers = ON")
    assert scans() == {titled: "voice", steady: ""}
    build_rollups(db, as_of=AS_OF)
    assert scans() == {titled: "email", steady: ""}


def test_migration_13_empties_channel_scans_saved_before_the_triggers(tmp_path: Path) -> None:
    """Scans saved by an older release were checked by hashing the text; without that check an edit
    made since could go unseen, so the migration that adds the triggers drops them."""
    import sqlite3

    from storage.database import MIGRATIONS, connect

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for version, description, script in MIGRATIONS:
        if version < 13:
            conn.executescript(script)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01')", (version, description))
    conn.execute(
        "CREATE TABLE review_channel_scans (review_id TEXT PRIMARY KEY, scan_key BLOB NOT NULL, "
        "channels TEXT NOT NULL, keywords TEXT NOT NULL) WITHOUT ROWID"
    )
    conn.execute("INSERT INTO review_channel_scans VALUES ('r1', x'00', 'chat', 'chat')")
    conn.commit()
    conn.close()
    db = connect(path)
    try:
        assert db.execute("SELECT count(*) FROM review_channel_scans").fetchone()[0] == 0
        triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert {"review_channel_scans_au", "review_channel_scans_ad", "review_copy_groups_au"} <= triggers
    finally:
        db.close()
