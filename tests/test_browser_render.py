"""`render: browser` sources: a listing whose reviews only a script writes, crawled for real.

The site is a LocalServer on 127.0.0.1 whose listing page is an empty shell: a script fetches
the reviews as JSON and writes schema.org microdata cards into the page. Over plain HTTP the
crawl finds nothing and says the page is JavaScript-only; rendered in the machine's Chromium
(scrapy-playwright, crawler.browser) it finds every review. Without a browser the source fails
with one reason and the rest of the crawl goes on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from crawl_support import load_sources
from servers import Hit, LocalServer, Reply
from test_crawl import FAST as CRAWL_FAST
from test_crawl import review, rows, trust_page

from crawler.launcher import run_crawl
from reputation.commands.crawl import summary
from reputation.registry.loader import parse_registry, source_id
from storage.errors import RegistryError

CHROMIUM = "/usr/bin/chromium"
HAS_PLAYWRIGHT = importlib.util.find_spec("scrapy_playwright") is not None
needs_playwright = pytest.mark.skipif(
    not HAS_PLAYWRIGHT, reason="scrapy-playwright not installed (pip install 'reputation[browser]')"
)
needs_chromium = pytest.mark.skipif(
    not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)),
    reason=f"{CHROMIUM} not installed (run `make browser`)",
)
# A loopback page comes back in milliseconds, but a loaded machine can stall the crawl's reactor
# past a 1 s timeout: a retry would add a hit to the counts checked below.
FAST = {**CRAWL_FAST, "DOWNLOAD_TIMEOUT": 30}
# A browser start and a page's scripts (Chromium on a loaded machine) need longer still.
RENDERED = {**FAST, "DOWNLOAD_TIMEOUT": 120}

REVIEWS = [
    {"author": "Ana P.", "date": "2024-05-03", "rating": 4, "body": "The agent fixed my booking in minutes."},
    {"author": "Bo K.", "date": "2024-05-04", "rating": 1, "body": "Waited an hour on hold, then cut off."},
    {"author": "Cy L.", "date": "2024-05-06", "rating": 5, "body": "Refund came the same day, thank you."},
]
SHELL = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Acme reviews</title></head>
<body><h1>Acme</h1><img src="logo.png" alt=""><div id="reviews"></div>
<noscript>Turn on JavaScript to see the reviews.</noscript><script src="app.js"></script></body></html>"""
# Writes one microdata card per review; text goes in as text, never as markup.
APP_JS = """
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
fetch("reviews.json").then(r => r.json()).then(items => {
  const list = document.getElementById("reviews");
  for (const r of items) {
    const card = el("article", {itemscope: "", itemtype: "https://schema.org/Review"});
    const author = el("span", {itemprop: "author", itemscope: "", itemtype: "https://schema.org/Person"});
    author.append(el("span", {itemprop: "name"}, r.author));
    const rating = el("span", {itemprop: "reviewRating", itemscope: "", itemtype: "https://schema.org/Rating"});
    rating.append(el("meta", {itemprop: "ratingValue", content: String(r.rating)}),
                  el("meta", {itemprop: "bestRating", content: "5"}));
    card.append(author, el("time", {itemprop: "datePublished", datetime: r.date}, r.date), rating,
                el("p", {itemprop: "reviewBody"}, r.body));
    list.append(card);
  }
});
"""


def script_site(site: LocalServer, base: str = "/js/acme/") -> str:
    """The shell page, its script and the JSON (answered a little late, like a real API)."""
    site.route(base, SHELL)
    site.route(base + "app.js", APP_JS, content_type="text/javascript")
    site.route(base + "reviews.json", json.dumps(REVIEWS), content_type="application/json", delay=0.3)
    site.route(base + "logo.png", b"\x89PNG", content_type="image/png")
    return site.url(base)


def register(tmp_path: Path, db_path: Path, sources: dict[str, tuple[str, str]]) -> None:
    """One vendor serving one brand per entry: brand -> (source URL, render)."""
    entries = {brand: [{"url": url, "render": render}] for brand, (url, render) in sources.items()}
    load_sources(tmp_path, db_path, entries)


def user_agent(hit: Hit) -> str:
    """The User-Agent a request carried (the browser sends header names in lower case)."""
    return next((v for k, v in hit.headers.items() if k.lower() == "user-agent"), "")


def source_row(db_path: Path, url: str) -> dict[str, Any]:
    return rows(db_path, "SELECT * FROM sources WHERE id = ?", [source_id(url)])[0]


@pytest.mark.browser
@needs_playwright
@needs_chromium
def test_a_script_filled_listing_gives_nothing_over_http_and_every_review_in_the_browser(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    url = script_site(local_server)

    register(tmp_path, db_path, {"acme": (url, "http")})
    plain = run_crawl(db_path, brands=["acme"], settings=FAST, log_path=tmp_path / "http.log")
    assert source_row(db_path, url)["last_crawl_status"] == "empty: javascript_only"
    assert plain["items_new"] == 0
    assert rows(db_path, "SELECT COUNT(*) AS n FROM reviews")[0]["n"] == 0
    assert local_server.hits_for("/js/acme/reviews.json") == []  # nothing ran the script
    log = (tmp_path / "http.log").read_text(encoding="utf-8")
    assert "scrapy_playwright" not in log and "browser rendering" not in log  # no browser in a plain crawl

    register(tmp_path, db_path, {"acme": (url, "browser")})  # the same source, now rendered
    assert source_row(db_path, url)["render"] == "browser"
    rendered = run_crawl(db_path, brands=["acme"], settings=RENDERED, log_path=tmp_path / "browser.log")
    log = (tmp_path / "browser.log").read_text(encoding="utf-8")
    assert rendered["status"] == "ok", log[-3000:]
    assert source_row(db_path, url)["last_crawl_status"] == "ok"
    assert rendered["items_new"] == len(REVIEWS)
    stored = rows(db_path, "SELECT body, rating, published_at FROM reviews ORDER BY published_at")
    assert [(r["body"], r["published_at"][:10]) for r in stored] == [(r["body"], r["date"]) for r in REVIEWS]
    assert [r["rating"] for r in stored] == [0.75, 0.0, 1.0]
    assert rendered["errors"] == 0 and "Traceback" not in log

    # The browser fetched the listing and its script's data once each, as the crawl's bot, and no image.
    page_hits = local_server.hits_for("/js/acme/")
    assert len(page_hits) == 2  # one plain, one rendered
    assert {user_agent(h).split("/")[0] for h in page_hits} == {"reputation-bot"}
    data_hits = local_server.hits_for("/js/acme/reviews.json")
    assert len(data_hits) == 1 and user_agent(data_hits[0]).startswith("reputation-bot/")
    assert local_server.hits_for("/js/acme/logo.png") == []


@pytest.mark.browser
@needs_playwright
@needs_chromium
def test_a_rendered_page_that_ends_off_its_source_is_refused(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    # The browser follows redirects itself; where it ended up is checked like any redirect.
    script_site(local_server, "/elsewhere/")
    local_server.route("/js/moved/", Reply(302, headers={"Location": "/elsewhere/"}))
    url = local_server.url("/js/moved/")
    register(tmp_path, db_path, {"acme": (url, "browser")})
    run = run_crawl(db_path, brands=["acme"], settings=RENDERED)
    assert source_row(db_path, url)["last_crawl_status"] == "empty: out_of_scope_redirect"
    assert run["detail"]["skipped"] == {"out_of_scope": 1}
    assert rows(db_path, "SELECT COUNT(*) AS n FROM reviews")[0]["n"] == 0


def plain_and_browser_sources(tmp_path: Path, db_path: Path, site: LocalServer) -> tuple[str, str]:
    """A plain JSON-LD listing and a script-filled one marked for the browser."""
    plain = site.url("/trust/acme/")
    site.route("/trust/acme/", trust_page(plain, [review("T1", "Agent fixed it fast.")]))
    rendered = script_site(site)
    register(tmp_path, db_path, {"acme": (plain, "http"), "scripted": (rendered, "browser")})
    return plain, rendered


def assert_browser_unavailable(
    tmp_path: Path, db_path: Path, site: LocalServer, settings: dict[str, Any], why: str
) -> None:
    """The browser source fails with one reason, said once; the plain one is crawled as ever."""
    plain, rendered = plain_and_browser_sources(tmp_path, db_path, site)
    run = run_crawl(db_path, vendors=["acme-contact"], settings=settings, log_path=tmp_path / "crawl.log")
    log = (tmp_path / "crawl.log").read_text(encoding="utf-8")
    assert source_row(db_path, rendered)["last_crawl_status"] == "failed: browser_unavailable", log[-3000:]
    assert source_row(db_path, plain)["last_crawl_status"] == "ok"
    assert run["items_new"] == 1
    assert run["errors_by_reason"] == {"browser_unavailable": 1}
    assert f"    failed {source_id(rendered)}: browser_unavailable" in summary(run).splitlines()
    assert log.count(why) == 1, log[-3000:]
    assert "Traceback" not in log
    assert site.hits_for("/js/acme/") == []  # a marked page is never fetched over plain HTTP instead


def test_a_browser_source_without_a_browser_fails_with_one_reason(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    missing = tmp_path / "no-such" / "chromium"
    why = f"no browser at {missing}" if HAS_PLAYWRIGHT else "scrapy-playwright is not installed"
    settings = {**FAST, "REPUTATION_BROWSER_PATH": str(missing)}
    assert_browser_unavailable(tmp_path, db_path, local_server, settings, why)


def test_a_browser_source_without_scrapy_playwright_fails_with_one_reason(
    tmp_path: Path, db_path: Path, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A package of that name that cannot be imported, first on the crawl's path: the crawl
    # sees exactly what it sees where scrapy-playwright was never installed.
    shadow = tmp_path / "shadow" / "scrapy_playwright"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named \'scrapy_playwright\'")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shadow.parent), os.environ.get("PYTHONPATH")])))
    assert_browser_unavailable(tmp_path, db_path, local_server, FAST, "scrapy-playwright is not installed")


@needs_playwright
def test_a_browser_that_will_not_start_fails_the_source_with_one_reason(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    broken = shutil.which("false") or "/bin/false"  # an executable that exits at once
    settings = {**RENDERED, "REPUTATION_BROWSER_PATH": broken}
    assert_browser_unavailable(tmp_path, db_path, local_server, settings, f"the browser at {broken} did not start")


def test_the_registry_accepts_http_or_browser_only() -> None:
    text = """
vendors: [{id: v, name: V}]
brands:
  - id: b
    name: B
    sources:
      - {url: "https://a.example/reviews/"}
      - {url: "https://b.example/reviews/", render: browser}
      - {url: "https://c.example/reviews/", render: chrome}
engagements: []
"""
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, "vendors.yaml")
    assert "render: unknown render 'chrome' (known: http, browser)" in str(caught.value)
    registry = parse_registry(text.replace("render: chrome", "render: http"), "vendors.yaml")
    assert [s.render for s in registry.sources] == ["http", "browser", "http"]
