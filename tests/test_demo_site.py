"""The embedded demo site: deterministic generation, counts that match the pages, the server."""

from __future__ import annotations

import hashlib
import http.client
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import dateparser
import pytest
import yaml
from parsel import Selector

from demo_world import (
    demo_registry,
    generate_site,
    load_manifest,
    serve_directory,
    write_demo_registry,
)
from demo_world.generator import DemoManifest
from demo_world.markup import relative_date
from storage.errors import ReputationError

TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoManifest]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate_site(out, seed=7, today=TODAY)


def _page(out: Path, path: str) -> str:
    return (out / path.lstrip("/") / "index.html").read_text(encoding="utf-8")


def _truth(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()]


def _reviews_on(site_name: str, html: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Parse one listing page the way each site's markup intends: (reviews, next-page paths)."""
    sel = Selector(text=html)
    if site_name == "trust":
        graph = json.loads(sel.css('script[type="application/ld+json"]::text').get(""))["@graph"]
        org = next(n for n in graph if n["@type"] == "Organization")
        reviews = [n for n in graph if n["@type"] == "Review"]
        assert [r["@id"] for r in reviews] == [ref["@id"] for ref in org["review"]]
        assert all(r["itemReviewed"]["@id"] == org["@id"] for r in reviews)
        rows = [{"id": r["@id"].split("#r-")[1], "author": r["author"]["name"], "date": r["datePublished"],
                 "stars": r["reviewRating"]["ratingValue"]} for r in reviews]
        return rows, sel.css('head link[rel="next"]::attr(href)').getall()
    if site_name == "shop":
        rows = [{"id": None, "author": r.css('[itemprop="author"] [itemprop="name"]::text').get(),
                 "body": r.css('[itemprop="reviewBody"]::text').get(),
                 "date": r.css('meta[itemprop="datePublished"]::attr(content)').get(),
                 "stars": int(r.css('[itemprop="ratingValue"]::text').get(""))}
                for r in sel.css('[itemscope][itemtype="https://schema.org/Product"] [itemprop="review"]')]
        current = int(sel.css("nav.pages span.current::text").get(""))
        following = [a.attrib["href"] for a in sel.css("nav.pages a") if int(a.css("::text").get("")) == current + 1]
        return rows, following
    if site_name == "forum":
        rows = [{"id": a.attrib["data-review-id"], "author": a.css(".author::text").get(),
                 "posted": a.css(".posted::text").get(), "stars": int(a.css(".stars::attr(data-score)").get("")),
                 "paragraphs": len(a.css(".review-text p"))}
                for a in sel.css("article.review[data-review-id]")]
        return rows, sel.css("a.pager-next::attr(href)").getall()
    data = json.loads(sel.css("script#__NEXT_DATA__::text").get(""))["props"]["pageProps"]
    assert not sel.css("[itemprop], article.review")  # the app's HTML itself carries no reviews
    rows = [{"id": r["id"], "author": r["author"]["displayName"], "date": r["createdAt"][:10],
             "stars": r["score"]["value"]} for r in data["reviews"]]
    nxt = data["pagination"]["nextUrl"]
    return rows, [nxt] if nxt else []


def _crawl_listing(out: Path, site_name: str, start: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Follow a listing's pagination from its first page, as a crawler would."""
    rows: list[dict[str, Any]] = []
    visited: list[str] = []
    path: str | None = start
    while path is not None:
        assert path not in visited, f"pagination loops at {path}"
        visited.append(path)
        found, nxt = _reviews_on(site_name, _page(out, path))
        assert found, f"empty listing page {path}"
        rows += found
        assert len(nxt) <= 1
        path = nxt[0] if nxt else None
    return rows, visited


def test_counts_in_manifest_match_the_pages(site: tuple[Path, DemoManifest]) -> None:
    out, manifest = site
    per_site: Counter[str] = Counter()
    per_brand: Counter[str] = Counter()
    visited_all: set[str] = set()
    for source in manifest.sources:
        rows, visited = _crawl_listing(out, source["site"], source["path"])
        assert len(rows) == manifest.per_brand_site[source["brand"]][source["site"]]
        ids = [r["id"] for r in rows]
        if source["site"] == "shop":  # no ids: the stable hash must still be unique
            ids = [hashlib.sha1(repr(sorted(r.items())).encode()).hexdigest() for r in rows]
        assert len(set(ids)) == len(ids)
        per_site[source["site"]] += len(rows)
        per_brand[source["brand"]] += len(rows)
        visited_all.update(visited)
    assert dict(per_site) == {s: n for s, n in manifest.per_site.items() if n}
    assert dict(per_brand) == manifest.per_brand
    assert sum(per_site.values()) == manifest.total_reviews
    assert len(visited_all) == manifest.pages == sum(manifest.pages_per_site.values())
    on_disk = {"/" + str(p.parent.relative_to(out)) + "/" for p in out.rglob("index.html")}
    listing_pages = {p for p in on_disk if not p.startswith("/forum/drafts/") and p != "/./"}
    assert listing_pages == visited_all  # no orphan pages a crawler could never reach
    assert 2700 <= manifest.total_reviews <= 3400
    assert all(150 <= n <= 260 for n in manifest.per_brand.values())


def test_ground_truth_matches_manifest(site: tuple[Path, DemoManifest]) -> None:
    out, manifest = site
    truth = _truth(out)
    assert len(truth) == manifest.total_reviews
    assert sum(r["language"] != "en" for r in truth) == manifest.non_english >= 15
    assert {r["language"] for r in truth} == {"en", "de", "fr", "es"}
    copies = [r for r in truth if r["syndicated_of"] is not None]
    assert len(copies) == manifest.syndicated_copies >= 15
    for copy in copies:
        original = truth[copy["syndicated_of"]]
        assert (copy["author"], copy["brand"]) == (original["author"], original["brand"])
        assert copy["site"] != original["site"]
        gap = date.fromisoformat(copy["date"]) - date.fromisoformat(original["date"])
        assert timedelta(0) <= gap <= timedelta(days=4)
    assert sum(r["body"] == truth[r["syndicated_of"]]["body"] for r in copies) >= 5  # some are exact copies
    bodies = Counter((r["site"], r["brand"], r["body"]) for r in truth)
    assert max(bodies.values()) == 1
    assert {r["service"] for r in truth} == {1, -1, 0, None} and {r["product"] for r in truth} == {1, -1, None}


def test_service_sentiment_follows_vendor_quality(site: tuple[Path, DemoManifest]) -> None:
    out, manifest = site
    scores: dict[str, list[int]] = defaultdict(list)
    stars: dict[int, list[int]] = defaultdict(list)
    for review in _truth(out):
        if review["service"] is not None:
            scores[review["vendor"]].append(review["service"])
        if review["product"] is None and review["service"] in (1, -1):
            stars[review["service"]].append(review["stars"])
    means = {vendor: sum(s) / len(s) for vendor, s in scores.items()}
    assert sorted(means, key=lambda v: -means[v]) == manifest.vendor_quality_order
    assert sum(stars[1]) / len(stars[1]) > 4 > 2 > sum(stars[-1]) / len(stars[-1])


def test_switch_is_recorded_and_windows_are_consistent(site: tuple[Path, DemoManifest]) -> None:
    out, manifest = site
    assert manifest.switches, "the demo needs a brand that changed vendor"
    quality = manifest.vendor_quality
    switch = manifest.switches[0]
    switch_day = date.fromisoformat(switch["date"])
    assert quality[switch["to_vendor"]] > quality[switch["from_vendor"]]
    engagements = [e for e in manifest.engagements if e["brand"] == switch["brand"]]
    ended = next(e for e in engagements if e["vendor"] == switch["from_vendor"])
    started = next(e for e in engagements if e["vendor"] == switch["to_vendor"])
    assert date.fromisoformat(ended["end"]) == switch_day - timedelta(days=1)
    assert started["start"] == switch["date"]
    period = [date.fromisoformat(manifest.period[k]) for k in ("start", "end")]
    assert period[0] < switch_day < period[1]
    # a brand served by two vendors at once, split by scope
    by_brand = defaultdict(list)
    for e in manifest.engagements:
        by_brand[e["brand"]].append(e)
    split = [b for b, es in by_brand.items() if len({e["scope"] for e in es}) > 1]
    assert split and all(e["share"] < 1 for e in by_brand[split[0]])
    # every original review's vendor served its brand on the review's date
    truth = _truth(out)
    for review in truth:
        if review["vendor"] is None or review["syndicated_of"] is not None:
            continue
        day = review["date"]
        assert any(e["vendor"] == review["vendor"] and e["start"] <= day and (e["end"] is None or day <= e["end"])
                   for e in by_brand[review["brand"]]), review
    vendors = {r["vendor"] for r in truth if r["brand"] == switch["brand"] and r["vendor"]
               and r["syndicated_of"] is None and r["date"] < switch["date"]}
    assert vendors == {switch["from_vendor"]}


def test_generation_is_deterministic(site: tuple[Path, DemoManifest], tmp_path: Path) -> None:
    out, manifest = site
    again = generate_site(tmp_path / "again", seed=7, today=TODAY)
    assert again == manifest

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert files(out) == files(tmp_path / "again")
    other = generate_site(tmp_path / "other", seed=8, today=TODAY)
    assert other.total_reviews != manifest.total_reviews or files(tmp_path / "other") != files(out)
    assert load_manifest(tmp_path / "again") == manifest


def test_regenerating_replaces_the_old_site(tmp_path: Path) -> None:
    generate_site(tmp_path, seed=3, today=TODAY)
    (tmp_path / "trust" / "stale-brand").mkdir()
    (tmp_path / "reputation.db").write_text("not ours")
    generate_site(tmp_path, seed=4, today=TODAY)
    assert not (tmp_path / "trust" / "stale-brand").exists()
    assert (tmp_path / "reputation.db").read_text() == "not ours"
    foreign = tmp_path / "foreign"
    (foreign / "shop").mkdir(parents=True)
    with pytest.raises(ReputationError, match="refusing to overwrite"):
        generate_site(foreign, today=TODAY)


def test_forum_relative_dates_recover_the_real_dates(site: tuple[Path, DemoManifest]) -> None:
    out, manifest = site
    truth = {(r["brand"], r["site_review_id"]): r["date"] for r in _truth(out) if r["site"] == "forum"}
    crawled_at = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 0)
    checked = 0
    for source in (s for s in manifest.sources if s["site"] == "forum"):
        rows, _ = _crawl_listing(out, "forum", source["path"])
        for row in rows[::7]:
            parsed = dateparser.parse(row["posted"], settings={"RELATIVE_BASE": crawled_at})
            real = date.fromisoformat(truth[(source["brand"], row["id"])])
            assert parsed is not None and abs((parsed.date() - real).days) <= 16, (row, real)
            checked += 1
        assert any(row["paragraphs"] > 1 for row in rows)
    assert checked > 50
    assert relative_date(TODAY, TODAY) == "today"
    assert relative_date(TODAY - timedelta(days=1), TODAY) == "yesterday"


def test_drafts_are_linked_robots_excluded_and_not_counted(site: tuple[Path, DemoManifest]) -> None:
    out, manifest = site
    assert (out / "robots.txt").read_text() == "User-agent: *\nDisallow: /forum/drafts/\n"
    forum = [s for s in manifest.sources if s["site"] == "forum"]
    assert len(forum) == manifest.draft_pages
    for source in forum:
        link = Selector(text=_page(out, source["path"])).css("a.drafts-link::attr(href)").get()
        assert link is not None and link.startswith("/forum/drafts/")
        drafts = Selector(text=_page(out, link)).css("article.review[data-review-id]")
        assert len(drafts) == manifest.draft_reviews // manifest.draft_pages
    draft_ids = {a.attrib["data-review-id"] for p in (out / "forum" / "drafts").rglob("index.html")
                 for a in Selector(text=p.read_text()).css("article.review")}
    assert not draft_ids & {r["site_review_id"] for r in _truth(out)}
    index = Selector(text=(out / "index.html").read_text()).css("a::attr(href)").getall()
    assert {s["path"] for s in manifest.sources} <= set(index)


def test_registry_is_structurally_valid(site: tuple[Path, DemoManifest], tmp_path: Path) -> None:
    _, manifest = site
    base = "http://127.0.0.1:8123"
    path = write_demo_registry(manifest, base + "/", tmp_path / "demo.yaml")
    data = yaml.safe_load(path.read_text())
    assert data == demo_registry(manifest, base)
    vendor_ids = {v["id"] for v in data["vendors"]}
    brand_ids = {b["id"] for b in data["brands"]}
    assert len(vendor_ids) >= 5 and len(brand_ids) >= 15
    assert {b["sector"] for b in manifest.brands} >= {"airline", "telecom", "retail", "bank", "utility", "delivery"}
    for brand in data["brands"]:
        assert 1 <= len(brand["sources"]) <= 2
        for source in brand["sources"]:
            assert source["url"].startswith(base + "/") and "//" not in source["url"][len("http://"):]
            assert source["layout"] == "auto"
    for e in data["engagements"]:
        assert e["vendor"] in vendor_ids and e["brand"] in brand_ids
        assert isinstance(e["start"], date) and ("end" not in e or e["start"] < e["end"])
        assert 0 < e["share"] <= 1
    assert sum(len(b["sources"]) for b in data["brands"]) == len(manifest.sources)


def test_future_reviews_are_not_published(tmp_path: Path) -> None:
    manifest = generate_site(tmp_path, seed=7, today=date(2025, 6, 30))
    truth = _truth(tmp_path)
    assert len(truth) == manifest.total_reviews < 2500
    assert max(r["date"] for r in truth) <= "2025-06-30"


def test_server_serves_pages_heads_and_404s(site: tuple[Path, DemoManifest]) -> None:
    out, manifest = site
    page = manifest.sources[0]["path"]
    with serve_directory(out) as base:
        assert base.startswith("http://127.0.0.1:")
        with urlopen(base + page, timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
            assert resp.read() == (out / page.lstrip("/") / "index.html").read_bytes()
        with urlopen(base + "/robots.txt", timeout=5) as resp:
            assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert b"Disallow: /forum/drafts/" in resp.read()
        with urlopen(Request(base + page, method="HEAD"), timeout=5) as resp:
            assert resp.status == 200 and int(resp.headers["Content-Length"]) > 1000 and resp.read() == b""
        for missing in ("/no/such/page/", "/trust/"):  # a folder without index.html is not listed
            with pytest.raises(HTTPError) as info:
                urlopen(base + missing, timeout=5)
            assert info.value.code == 404
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)  # keep-alive: two requests, one socket
        for _ in range(2):
            conn.request("GET", page)
            assert conn.getresponse().read().startswith(b"<!doctype html>")
        conn.close()
    with pytest.raises(URLError):
        urlopen(base + page, timeout=2)


def test_server_rejects_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ReputationError, match="not a directory"), serve_directory(tmp_path / "nope"):
        pass


def test_registry_loads_into_the_database(site: tuple[Path, DemoManifest], tmp_path: Path) -> None:
    from reputation.registry.loader import load_registry
    from storage.database import connect

    _, manifest = site
    path = write_demo_registry(manifest, "http://127.0.0.1:8123", tmp_path / "demo.yaml")
    summary = load_registry(connect(tmp_path / "r.db"), path)
    assert (summary.vendors, summary.brands, summary.sources) == (
        len(manifest.vendors), len(manifest.brands), len(manifest.sources))
