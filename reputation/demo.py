"""The whole job on an embedded site: generate it, serve it on loopback, crawl, score, roll up.

The stages are the scheduled job's own (reputation/pipeline.py); only the crawl settings and
the site differ.

The demo remembers the port it served on (in app_settings) and asks for it again,
so running it twice on the same database re-crawls the same source URLs and adds
no duplicates.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from demo_world import generate_site, serve_directory, write_demo_registry
from demo_world.vendor_sites import serve_vendor_sites, vendor_site_truth, write_vendor_sites
from reputation import pipeline
from reputation.engagements.evaluate import DiscoveryScore, score_discovery
from reputation.engagements.store import list_candidates
from reputation.registry.loader import load_registry
from reputation.rollups.build import RollupSummary
from storage.database import connect, transaction
from storage.runlog import RunRow

if TYPE_CHECKING:
    from reputation.scoring.job import ScoreSummary  # torch: only the score stage loads it

PORT_KEY = "demo_port"
METADATA_NAME = "datasette-metadata.yaml"  # package data of reputation.rollups
# The demo server is our own process on loopback: politeness delays would only make
# the demo slow, so they are lifted here (and only here). robots.txt is still obeyed.
DEMO_CRAWL_SETTINGS = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "CONCURRENT_REQUESTS_PER_DOMAIN": 8}


@dataclass
class DemoResult:
    db_path: str
    site_dir: Path
    base_url: str
    manifest: Any
    crawl: RunRow  # the crawl's run-log row
    metadata: Path  # the Datasette metadata (column meanings) written beside the output
    score: ScoreSummary | None = None
    rollup: RollupSummary | None = None
    scorecards: list[Path] = field(default_factory=list)
    stored_reviews: int = 0
    discovery: DiscoveryScore | None = None  # candidates from the vendor sites against the world's engagements
    discovery_lines: list[str] = field(default_factory=list)


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


def write_datasette_metadata(out_dir: Path) -> Path:
    """Copy the column documentation (package data) beside the demo output for ``datasette -m``."""
    source = resources.files("reputation.rollups").joinpath(METADATA_NAME)
    target = out_dir / METADATA_NAME
    target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return target


def run_demo(
    db_path: str,
    out_dir: Path,
    *,
    score: bool = True,
    rollup: bool = True,
    scorecards: bool = True,
    discover: bool = True,
    say: Callable[[str], None] = print,
    progress: bool = True,
) -> DemoResult:
    """Run every stage that exists against the generated site; return what each produced.

    Each step's line goes to ``say``; ``progress`` shows the scoring progress bar (on stderr).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = write_datasette_metadata(out_dir)
    site_dir = out_dir / "site"
    manifest = generate_site(site_dir)
    say(f"generated the demo site: {manifest.total_reviews} reviews on {manifest.pages} pages in {site_dir}")
    db = connect(db_path)
    # Full crawls: the demo shows that a second run over every page stores no duplicate.
    job = pipeline.Job(db_path, db, crawl_settings=DEMO_CRAWL_SETTINGS, full=True, progress=progress)
    port = _remembered_port(db)
    with serve_directory(site_dir, port=port) as base_url:
        _remember_port(db, base_url)
        say(f"serving it on {base_url}")
        registry_file = out_dir / "vendors.yaml"
        write_demo_registry(manifest, base_url, registry_file)
        summary = load_registry(db, registry_file)
        say(f"registry: {summary.vendors} vendors, {summary.brands} brands, {summary.sources} sources")
        crawl = pipeline.crawl(job)
    stored = db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
    result = DemoResult(db_path, site_dir, base_url, manifest, crawl, stored_reviews=stored,
                        metadata=metadata)
    say(
        f"crawl: {crawl.get('pages', 0)} pages, {crawl.get('items_new', 0)} new, "
        f"{crawl.get('items_updated', 0)} updated, {crawl.get('items_unchanged', 0)} unchanged; "
        f"{stored} reviews stored"
    )
    if discover:
        result.discovery, result.discovery_lines = run_demo_discovery(db_path, out_dir / "vendor-sites", say=say)
    if score:
        result.score = pipeline.score(job)
        say(f"score: {result.score}")
    if rollup:
        result.rollup = pipeline.rollup(job)
        say(f"rollup: {result.rollup}")
    if scorecards:
        result.scorecards = pipeline.write_scorecards(job, out_dir / "scorecards")
    return result


def run_demo_discovery(db_path: str, sites_dir: Path, *, say: Callable[[str], None] = print,
                       sentence_model: str | None = None) -> tuple[DiscoveryScore, list[str]]:
    """Serve each demo vendor's own site, discover candidates from it, and score them against the world.

    The answer key is the generator's own engagements; the registry already holds them, so the
    candidates stay proposals here (nothing is accepted).
    """
    from reputation.engagements.discover import discover, load_sentence_model  # torch, Scrapy: on use

    world_truth = vendor_site_truth()
    vendor_ids = sorted({e.vendor_id for e in world_truth})
    model, name = load_sentence_model(sentence_model)
    with serve_vendor_sites(sites_dir, vendor_ids) as urls:
        write_vendor_sites(sites_dir, urls)
        say(f"discovery: {len(urls)} vendor sites served on loopback, sentence model {name}")
        results = discover(db_path, vendor_ids, sites=urls, model=model, settings=DEMO_CRAWL_SETTINGS)
    lines = [r.line() for r in results]
    for line in lines:
        say(f"  {line}")
    db = connect(db_path)
    try:
        found = score_discovery(list_candidates(db, vendor=None), world_truth)
    finally:
        db.close()
    say(found.line())
    return found, lines
