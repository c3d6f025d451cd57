"""Discovery on the demo world's vendor sites, scored against the generator's own engagements."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_world.vendor_sites import press_releases, vendor_site_truth
from demo_world.world import load_world
from reputation.demo import run_demo_discovery
from reputation.engagements.store import list_candidates
from storage.database import connect


def world_db(path: Path) -> str:
    world = load_world()
    db = connect(path)
    db.conn.executemany("INSERT INTO vendors (id, name, website) VALUES (?, ?, ?)",
                        [(v.id, v.name, v.website) for v in world.vendors])
    db.conn.executemany("INSERT INTO brands (id, name, website) VALUES (?, ?, ?)",
                        [(b.id, b.name, b.website) for b in world.brands])
    db.conn.commit()
    db.close()
    return str(path)


def test_vendor_sites_announce_every_kind_of_event() -> None:
    import random

    world = load_world()
    headlines = [p.headline for v in world.vendors for p in press_releases(world, v, random.Random(7))]
    for word in ("selects|chooses|wins|appoints", "renews", "expands", "conclude"):
        assert any(any(w in h for w in word.split("|")) for h in headlines), word
    assert len(vendor_site_truth(world)) == len(world.engagements)


@pytest.mark.parametrize("model", ["keyword", pytest.param(None, marks=pytest.mark.slow)])
def test_demo_discovery_finds_the_generators_engagements(tmp_path: Path, model: str | None) -> None:
    db_path = world_db(tmp_path / "r.db")
    lines: list[str] = []
    score, _ = run_demo_discovery(db_path, tmp_path / "vendor-sites", say=lines.append, sentence_model=model)
    assert score.recall >= 0.9, score
    assert score.precision >= 0.9, score
    assert score.ends_found == score.ends == 1
    assert any(line.startswith("discovery: precision") for line in lines)
    vendor_lines = [line for line in lines if line.startswith("  ")]
    assert len(vendor_lines) == 5 and all("1 pages refused by robots.txt" in line for line in vendor_lines), lines
    rows = list_candidates(connect(db_path))
    assert {r.relation for r in rows} == {"started", "renewed", "expanded", "ended", "client"}
    assert not [r for r in rows if "/news/drafts/" in r.url]  # robots.txt hides the drafts
    assert {r.status for r in rows} == {"proposed"}
    # a second discovery adds nothing new
    again, _ = run_demo_discovery(db_path, tmp_path / "vendor-sites", say=lines.append, sentence_model=model)
    assert len(list_candidates(connect(db_path))) == len(rows)
    assert again == score
