"""Conformance on real saved review pages: each is served from 127.0.0.1 and crawled by the real
Scrapy crawl with ``layout: auto``; counts, star ratings in page order, dates and replies must
match the pages' MANIFEST. The same pages crawled with the platform named give the same ids.

The pages live outside the repository (../shared/real-pages); without them these tests skip.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crawler.extractors import extract_reviews
from crawler.launcher import run_crawl
from reputation.registry.loader import load_registry
from storage.database import connect

REAL_PAGES = Path(__file__).resolve().parents[2] / "shared" / "real-pages"
MANIFEST = REAL_PAGES / "MANIFEST.md"
FAST = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "DOWNLOAD_TIMEOUT": 30, "RETRY_TIMES": 0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8}  # fmt: skip
PLATFORM_OF_PREFIX = {
    "amazon": "amazon",
    "appstore": "app_store",
    "consumeraffairs": "consumeraffairs",
    "googleplay": "google_play",
    "tripadvisor": "tripadvisor",
    "trustpilot": "trustpilot",
    "yelp": "yelp",
}
# pages whose reviews carry no date of their own (the App Store feed has none per entry)
UNDATED = {"appstore_xcode_fr_2021.json", "appstore_xcode_cn_p10_2021.json"}

pytestmark = pytest.mark.skipif(
    not MANIFEST.exists(), reason=f"real saved pages not found in {REAL_PAGES} (folder absent)"
)


@dataclass(frozen=True)
class Expected:
    file: str
    count: int
    ratings: list[int]

    @property
    def platform(self) -> str:
        return PLATFORM_OF_PREFIX[self.file.split("_", 1)[0]]

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", Path(self.file).stem.lower())


def _ratings(cell: str) -> list[int]:
    repeated = re.fullmatch(r"\s*(\d)\s*×\s*(\d+)\s*", cell)
    if repeated:
        return [int(repeated.group(1))] * int(repeated.group(2))
    return [int(value) for value in re.findall(r"\d", cell)]


def manifest() -> list[Expected]:
    """File, review count and ratings from the MANIFEST table."""
    if not MANIFEST.exists():
        return []
    pages = []
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < 8 or not re.fullmatch(r"[\w.-]+\.(?:html|json)", cells[1]):
            continue
        count = int(re.match(r"\d+", cells[5]).group(0))  # type: ignore[union-attr]
        pages.append(Expected(cells[1], count, _ratings(cells[6])))
    return pages


PAGES = manifest()


class _PageServer:
    """Serves each saved page at /p/<slug>/ on an ephemeral 127.0.0.1 port."""

    def __init__(self, pages: list[Expected]) -> None:
        files = {f"/p/{page.slug}/": REAL_PAGES / page.file for page in pages}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = files.get(self.path)
                if path is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = path.read_bytes()
                kind = "application/json" if path.suffix == ".json" else "text/html; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, page: Expected) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/p/{page.slug}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[_PageServer]:
    site = _PageServer(PAGES)
    yield site
    site.close()


def _crawl(tmp: Path, site: _PageServer, *, explicit: bool) -> dict[str, list[dict[str, Any]]]:
    """Crawl every page as its own brand and source; rows per page file, in stored order."""
    lines = ["vendors:", "  - id: acme-contact", "    name: Acme Contact", "brands:"]
    for page in PAGES:
        lines += [f"  - id: {page.slug}", f"    name: {page.slug}", "    sources:", f"      - url: {site.url(page)}"]
        lines += [f"        layout: {page.platform if explicit else 'auto'}"]
    registry = tmp / "vendors.yaml"
    registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db_path = tmp / "reputation.db"
    db = connect(db_path)
    try:
        load_registry(db, registry)
    finally:
        db.close()
    run = run_crawl(db_path, settings=FAST, timeout=300)
    assert run["status"] == "ok", run
    db = connect(db_path)
    try:
        cursor = db.execute("SELECT * FROM reviews ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        stored = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        db.close()
    by_page: dict[str, list[dict[str, Any]]] = {page.file: [] for page in PAGES}
    brand_to_file = {page.slug: page.file for page in PAGES}
    for row in stored:
        by_page[brand_to_file[row["brand_id"]]].append(row)
    return by_page


@pytest.fixture(scope="module")
def auto_rows(tmp_path_factory: pytest.TempPathFactory, server: _PageServer) -> dict[str, list[dict[str, Any]]]:
    return _crawl(tmp_path_factory.mktemp("auto"), server, explicit=False)


@pytest.fixture(scope="module")
def explicit_rows(
    tmp_path_factory: pytest.TempPathFactory, server: _PageServer
) -> dict[str, list[dict[str, Any]]]:
    return _crawl(tmp_path_factory.mktemp("explicit"), server, explicit=True)


def test_manifest_lists_every_saved_page() -> None:
    saved = sorted(p.name for p in REAL_PAGES.iterdir() if p.suffix in {".html", ".json"})
    assert sorted(page.file for page in PAGES) == saved
    assert all(len(page.ratings) == page.count for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=[page.file for page in PAGES])
def test_auto_crawl_matches_manifest(page: Expected, auto_rows: dict[str, list[dict[str, Any]]]) -> None:
    rows = auto_rows[page.file]
    assert len(rows) == page.count
    assert [int(row["rating_value"]) for row in rows] == page.ratings
    assert len({row["id"] for row in rows}) == len(rows)
    assert len({(row["body_hash"], row["author_hash"]) for row in rows}) == len(rows)  # no duplicate copies
    assert all(row["id"].startswith("site:") for row in rows)  # the site's own id was found
    assert all(row["extractor"] == page.platform for row in rows)
    if page.file not in UNDATED:
        assert all(row["published_at"] and row["date_precision"] in {"exact", "relative"} for row in rows)
    # owner replies are kept apart: no reply text inside any stored body
    replies = [item.reply for item in extract_reviews((REAL_PAGES / page.file).read_bytes(), "http://x/").reviews]
    for reply in filter(None, replies):
        probe = " ".join(reply.split())[:60]
        assert all(probe not in " ".join(row["body"].split()) for row in rows)


@pytest.mark.parametrize("page", PAGES, ids=[page.file for page in PAGES])
def test_named_platform_gives_the_same_ids(
    page: Expected,
    auto_rows: dict[str, list[dict[str, Any]]],
    explicit_rows: dict[str, list[dict[str, Any]]],
) -> None:
    assert [row["id"] for row in explicit_rows[page.file]] == [row["id"] for row in auto_rows[page.file]]


def test_replies_truncation_and_traps_on_the_pages() -> None:
    """Facts from the MANIFEST that the stored rows cannot show (no reply/truncated columns yet)."""

    def items(name: str) -> list[Any]:
        return extract_reviews((REAL_PAGES / name).read_bytes(), "http://127.0.0.1/p/x/").reviews

    assert sum(bool(i.reply) for i in items("trustpilot_calo_2026.html")) == 20
    assert sum(bool(i.reply) for i in items("trustpilot_eventnet_2024.html")) == 4
    yelp = items("yelp_rosinas_oceanside_2016.html")
    assert [bool(i.reply) for i in yelp].index(True) == 8 and sum(bool(i.reply) for i in yelp) == 1
    assert yelp[8].reply and yelp[8].reply.endswith("~Rosina")  # the full text, not the shortened one
    assert sum(bool(i.reply) for i in items("yelp_user_oriolem_2019.html")) == 2
    trip = items("tripadvisor_kranjhouse_attraction_2019.html")
    assert [n for n, i in enumerate(trip, 1) if i.truncated] == [2, 3, 4, 5, 8]
    assert all("More" not in (i.body or "")[-6:] for i in trip)
    ca = items("consumeraffairs_sellmytimesharenow_2018.html")
    assert sum("\n\n" in (i.body or "") for i in ca) >= 5  # visible + hidden collapsed parts joined
    assert ca[25].body and "Updated on 07/20/2018" in ca[25].body
    assert ca[24].date_raw == "June 13, 2018" and ca[24].extra["update"].startswith("Sell My Timeshare Now")
    amazon = items("amazon_5lovelanguages_2020.html")
    assert amazon[0].date_raw == "November 16, 2018"
    play = items("googleplay_minecraft_2019.html")
    assert all(i.site_review_id.startswith("gp:") and i.body for i in play)
