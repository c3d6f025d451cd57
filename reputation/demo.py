"""The whole job on an embedded site: generate it, serve it on loopback, crawl, score, roll up.

The demo remembers the port it served on (in app_settings) and asks for it again,
so running it twice on the same database re-crawls the same source URLs and adds
no duplicates.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from reputation.registry.loader import load_registry
from storage.database import connect, transaction

PORT_KEY = "demo_port"
# The demo server is our own process on loopback: politeness delays would only make
# the demo slow, so they are lifted here (and only here). robots.txt is still obeyed.
DEMO_CRAWL_SETTINGS = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "CONCURRENT_REQUESTS_PER_DOMAIN": 8}


@dataclass
class DemoResult:
    db_path: str
    site_dir: Path
    base_url: str
    manifest: Any
    crawl: dict[str, Any]
    score: Any = None
    rollup: Any = None
    scorecards: list[Path] = field(default_factory=list)
    stored_reviews: int = 0


def _remembered_port(db: sqlite_utils.Database) -> int:
    row = db.execute("SELECT value FROM app_settings WHERE key = ?", (PORT_KEY,)).fetchone()
    if row is None:
        return 0
    port = int(row[0])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _remember_port(db: sqlite_utils.Database, base_url: str) -> None:
    port = base_url.rsplit(":", 1)[1].strip("/")
    with transaction(db) as conn:
        conn.execute(
            "INSERT INTO app_settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (PORT_KEY, port),
        )


def run_demo(
    db_path: str,
    out_dir: Path,
    *,
    score: bool = True,
    rollup: bool = True,
    scorecards: bool = True,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run every stage that exists against the generated site; return what each produced."""
    from crawler.launcher import run_crawl
    from demo_world import generate_site, serve_directory, write_demo_registry

    out_dir.mkdir(parents=True, exist_ok=True)
    site_dir = out_dir / "site"
    manifest = generate_site(site_dir)
    say(f"generated the demo site: {manifest.total_reviews} reviews on {manifest.pages} pages in {site_dir}")
    db = connect(db_path)
    port = _remembered_port(db)
    with serve_directory(site_dir, port=port) as base_url:
        _remember_port(db, base_url)
        say(f"serving it on {base_url}")
        registry_file = out_dir / "vendors.yaml"
        write_demo_registry(manifest, base_url, registry_file)
        summary = load_registry(db, registry_file)
        say(f"registry: {summary.vendors} vendors, {summary.brands} brands, {summary.sources} sources")
        crawl = run_crawl(db_path, settings=DEMO_CRAWL_SETTINGS)
    stored = db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    result = DemoResult(db_path, site_dir, base_url, manifest, crawl, stored_reviews=stored)
    say(
        f"crawl: {crawl.get('pages', 0)} pages, {crawl.get('items_new', 0)} new, "
        f"{crawl.get('items_updated', 0)} updated, {crawl.get('items_unchanged', 0)} unchanged; "
        f"{stored} reviews stored"
    )
    if score:
        from reputation.scoring.job import score_reviews

        result.score = score_reviews(db, progress=True)
        say(f"score: {result.score}")
    if rollup:
        from reputation.rollups.build import build_rollups

        result.rollup = build_rollups(db)
        say(f"rollup: {result.rollup}")
    if scorecards:
        from reputation.scorecards.data import build_scorecards
        from reputation.scorecards.render import write_scorecards

        cards = build_scorecards(db)
        result.scorecards = write_scorecards(cards, out_dir / "scorecards", ("html", "csv", "json"))
    return result
