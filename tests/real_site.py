"""Real saved pages (../shared/real-pages) served from 127.0.0.1 and crawled by the real Scrapy crawl.

Helpers for tests that need a real page behind a real crawl: register one source per page
straight into the database, crawl, switch a source's layout, read rows back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from servers import LocalServer

from crawler.launcher import run_crawl
from reputation.registry.loader import source_id
from storage.database import connect
from storage.runlog import RunRow

REAL_PAGES = Path(__file__).resolve().parents[2] / "shared" / "real-pages"
FAST = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "DOWNLOAD_TIMEOUT": 30, "RETRY_TIMES": 0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8}  # fmt: skip

needs_real_pages = pytest.mark.skipif(
    not (REAL_PAGES / "MANIFEST.md").exists(),
    reason=f"real saved pages not found in {REAL_PAGES} (folder absent)",
)


def serve(server: LocalServer, name: str) -> str:
    """Route the saved page ``name`` at /p/<stem>/; return its URL."""
    path = f"/p/{Path(name).stem.replace('_', '-')}/"
    kind = "application/json" if name.endswith(".json") else "text/html; charset=utf-8"
    server.route(path, (REAL_PAGES / name).read_bytes(), content_type=kind)
    return server.url(path)


def register(db_path: Path, sources: list[tuple[str, str, str]]) -> dict[str, str]:
    """(brand, url, layout) rows into brands and sources; returns brand -> source id."""
    db = connect(db_path)
    try:
        ids = {}
        for brand, url, layout in sources:
            db.table("brands").insert({"id": brand, "name": brand}, ignore=True)
            db.table("sources").insert(
                {"id": source_id(url), "brand_id": brand, "url": url, "layout": layout}
            )
            ids[brand] = source_id(url)
    finally:
        db.close()
    return ids


def set_layout(db_path: Path, layouts: dict[str, str]) -> None:
    """Switch the layout of the named brands' sources (what an analyst does in vendors.yaml)."""
    db = connect(db_path)
    try:
        for brand, layout in layouts.items():
            db.execute("UPDATE sources SET layout = ? WHERE brand_id = ?", [layout, brand])
        db.conn.commit()
    finally:
        db.close()


def crawl(db_path: Path, **settings: Any) -> RunRow:
    run = run_crawl(db_path, settings={**FAST, **settings}, timeout=300)
    assert run["status"] == "ok", run
    return run

