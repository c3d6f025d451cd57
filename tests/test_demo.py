"""The whole job on the embedded demo, end to end: real crawl, real model, real roll-ups.

One demo run (module fixture) is shared by the checks below; it is the slowest test
module because it scores every demo review with the default model on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reputation.demo import DemoResult, run_demo
from storage.database import connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    out = tmp_path_factory.mktemp("demo")
    return run_demo(str(out / "reputation.db"), out, say=lambda _line: None)


def query(result: DemoResult, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = connect(result.db_path)
    return [tuple(row) for row in db.execute(sql, params).fetchall()]


def test_every_generated_review_is_stored_once(demo: DemoResult) -> None:
    expected = demo.manifest.total_reviews
    assert demo.crawl["status"] == "ok"
    assert demo.crawl["items_new"] == expected
    assert query(demo, "SELECT COUNT(*), COUNT(DISTINCT id) FROM reviews") == [(expected, expected)]
    per_site = dict(query(demo, "SELECT CASE WHEN extractor LIKE 'layout:%' THEN 'forum' "
                                "WHEN extractor LIKE 'embedded_json%' THEN 'app' "
                                "WHEN extractor = 'jsonld' THEN 'trust' ELSE 'shop' END, COUNT(*) "
                                "FROM reviews GROUP BY 1"))
    assert per_site == demo.manifest.per_site


def test_robots_disallowed_drafts_never_stored(demo: DemoResult) -> None:
    assert query(demo, "SELECT COUNT(*) FROM reviews WHERE url LIKE '%/forum/drafts/%'") == [(0,)]


def test_relative_dates_and_languages_recorded(demo: DemoResult) -> None:
    precision = dict(query(demo, "SELECT date_precision, COUNT(*) FROM reviews GROUP BY 1"))
    assert precision["relative"] == demo.manifest.per_site["forum"]
    assert "missing" not in precision
    non_english = query(demo, "SELECT COUNT(*) FROM reviews WHERE language IN ('de', 'fr', 'es')")[0][0]
    assert non_english >= demo.manifest.non_english - 2


def test_second_run_adds_no_duplicates(demo: DemoResult, tmp_path: Path) -> None:
    again = run_demo(demo.db_path, demo.site_dir.parent, score=False, rollup=False, scorecards=False,
                     say=lambda _line: None)
    assert again.crawl["items_new"] == 0
    assert again.crawl["items_unchanged"] == demo.manifest.total_reviews
    assert again.stored_reviews == demo.manifest.total_reviews


def test_every_review_scored_once(demo: DemoResult) -> None:
    reviews = query(demo, "SELECT COUNT(*) FROM reviews")[0][0]
    rows = query(demo, "SELECT COUNT(*), COUNT(DISTINCT review_id) FROM review_sentiment")
    assert rows == [(reviews, reviews)]
    flagged_english = query(demo, "SELECT COUNT(*) FROM review_sentiment WHERE label IS NULL")[0][0]
    assert flagged_english == 0


def test_vendor_ranking_follows_the_generated_quality(demo: DemoResult) -> None:
    ranked = [row[0] for row in query(demo, "SELECT vendor_id FROM vendor_reputation ORDER BY rank")]
    truth = demo.manifest.vendor_quality_order
    assert ranked[0] == truth[0], (ranked, truth)
    assert set(ranked[-2:]) == set(truth[-2:]), (ranked, truth)
    # the CS score itself must be ordered best > middle > worst, not only the rank
    scores = dict(query(demo, "SELECT vendor_id, cs_score FROM vendor_reputation"))
    assert scores[truth[0]] > scores[truth[2]] > scores[truth[-1]]


def test_switch_to_better_vendor_improves_customer_service(demo: DemoResult) -> None:
    switch = demo.manifest.switches[0]
    rows = query(demo, "SELECT from_vendor_id, to_vendor_id, cs_change, did, n_cs_before, n_cs_after "
                       "FROM vendor_switches WHERE brand_id = ?", (switch["brand"],))
    assert len(rows) == 1
    from_vendor, to_vendor, cs_change, did, n_before, n_after = rows[0]
    assert (from_vendor, to_vendor) == (switch["from_vendor"], switch["to_vendor"])
    assert n_before > 0 and n_after > 0
    # The direction of the customer-service change is what the generator fixed. The
    # difference in differences is reported but not asserted: its baseline (the sentences
    # not about service) is small and still picks up service sentences the aspect model
    # misses, so on ~30 reviews a side its sign is not yet reliable.
    assert cs_change > 0.2
    assert did is not None


def test_scorecards_written_in_every_format(demo: DemoResult) -> None:
    names = {path.name for path in demo.scorecards}
    vendors = demo.manifest.vendor_quality_order
    assert {f"{v}.html" for v in vendors} <= names
    assert {f"{v}.json" for v in vendors} <= names
    assert "scorecards.csv" in names
    card = json.loads((demo.site_dir.parent / "scorecards" / f"{vendors[0]}.json").read_text())
    assert card["vendor"]["id"] == vendors[0]


def test_overview_page_lists_every_vendor_in_rank_order(demo: DemoResult) -> None:
    """index.html sits beside the cards, and its JSON twin ranks the vendors as the generator made them."""
    out = demo.site_dir.parent / "scorecards"
    assert {"index.html", "overview.json", "overview.csv"} <= {path.name for path in out.iterdir()}
    overview = json.loads((out / "overview.json").read_text())
    ranked = [row["vendor_id"] for row in overview["vendors"] if row["rank"] is not None]
    assert ranked == list(demo.manifest.vendor_quality_order)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert all(f"{vendor}.html" in page for vendor in ranked)
    for path in out.iterdir():
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o644, path


def test_datasette_metadata_written_beside_the_output(demo: DemoResult) -> None:
    """The column documentation comes from package data, so it is there without a checkout."""
    assert demo.metadata == demo.site_dir.parent / "datasette-metadata.yaml"
    tables = yaml.safe_load(demo.metadata.read_text(encoding="utf-8"))["databases"]["reputation"]["tables"]
    assert "vendor_reputation" in tables and "vendor_monthly" in tables
