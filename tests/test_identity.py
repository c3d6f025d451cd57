"""One review, one id, tied to its listing, whatever extractor found it.

Ids are checked on real saved pages (each review of a Trustpilot page sits in three places:
``__NEXT_DATA__``, JSON-LD and HTML cards) crawled by the real Scrapy crawl over 127.0.0.1,
and migration 8 is run on a database built with the old ``site:<host>:<id>`` keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crawl_support import rows
from hypothesis import given
from hypothesis import strategies as st
from real_site import REAL_PAGES, crawl, needs_real_pages, register, serve, set_layout
from servers import LocalServer

import storage.database as database
from crawler.extractors import extract_reviews
from crawler.identity import (
    body_hash,
    identify,
    item_content_key,
    item_review_id,
    normalise_site_id,
    review_id,
    stored_content_key,
)
from crawler.items import ReviewItem
from reputation.registry.loader import source_id
from reputation.rollups.views import ensure_search
from storage.database import connect

TRUSTPILOT = ("trustpilot_eventnet_2024.html", "trustpilot_studiosamo_it_2025.html")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("698c6d8cc5a00780babd0c29", "698c6d8cc5a00780babd0c29"),
        (
            "/schema/Review/calo.app/en/698c6d8cc5a00780babd0c29",
            "698c6d8cc5a00780babd0c29",
        ),  # JSON-LD @id fragment
        ("https://www.trustpilot.com/reviews/698c6d8cc5a00780babd0c29?utm=x", "698c6d8cc5a00780babd0c29"),
        ("https://example.com/review/17/", "17"),
        (
            "https://example.com/review?id=5",
            "https://example.com/review?id=5",
        ),  # no id-like segment: kept whole
        ("https://www.trustpilot.com/#/schema/Review/x", "https://www.trustpilot.com/#/schema/Review/x"),
        ("gp:AOqpTOEzRWxvo5ry", "gp:AOqpTOEzRWxvo5ry"),  # every Google Play extractor gives the prefix
        ("  R3HPZCT5IDXOV0 \n", "R3HPZCT5IDXOV0"),
        ("   ", None),
        (None, None),
    ],
)
def test_normalise_site_id(raw: str | None, expected: str | None) -> None:
    assert normalise_site_id(raw) == expected


@given(
    site_id=st.one_of(st.none(), st.just(""), st.text(max_size=30), st.sampled_from(["/reviews/abc", "#r1"])),
    author=st.one_of(st.none(), st.text(max_size=20)),
    body=st.text(min_size=1, max_size=80),
    date=st.one_of(st.none(), st.just("2026-10-01")),
    precision=st.sampled_from(["exact", "month", "relative", "missing"]),
)
def test_identify_names_an_item_as_the_separate_functions_do(
    site_id: str | None, author: str | None, body: str, date: str | None, precision: str
) -> None:
    """One hashing of the content key, shared by the id and the store, changes no name."""
    item = ReviewItem(source_id="acme-trustpilot", site_review_id=site_id, author=author, body=body,
                      published_at=date, date_precision=precision)  # fmt: skip
    twin = ReviewItem(**{**item.__dict__})
    identify(item)
    twin.site_review_id = normalise_site_id(twin.site_review_id)
    assert item.identified and item.site_review_id == twin.site_review_id
    assert item.id == item_review_id(twin)
    assert item.content_key == item_content_key(twin) == stored_content_key(item) == stored_content_key(twin)
    assert item.body_hash == body_hash(body)


@needs_real_pages
@pytest.mark.parametrize("name", [*TRUSTPILOT, "trustpilot_calo_2026.html"])
def test_every_trustpilot_extractor_names_a_review_alike(name: str) -> None:
    page = (REAL_PAGES / name).read_bytes()
    found = {
        layout: [normalise_site_id(i.site_review_id) for i in extract_reviews(page, "http://127.0.0.1/p/", layout).reviews]
        for layout in ("trustpilot", "jsonld", "embedded_json")
    }  # fmt: skip
    assert len(found["trustpilot"]) == 20 and all(found["trustpilot"])
    assert found["jsonld"] == found["trustpilot"]  # raw: "/schema/Review/<domain>/<id>" against "<id>"
    assert set(found["trustpilot"]) <= set(found["embedded_json"])  # plus the carousel's repeats


def test_ids_are_tied_to_the_listing_not_the_host() -> None:
    common = {"author": "Ana", "published_at": "2024-05-03", "date_precision": "exact", "body": "Fine."}
    a = review_id(source_id="srcA", site_review_id="1", **common)
    b = review_id(source_id="srcB", site_review_id="1", **common)
    assert a == "site:srcA:1" and b == "site:srcB:1"
    jsonld = review_id(source_id="srcA", site_review_id="/schema/Review/acme.com/1x", **common)
    assert jsonld == review_id(source_id="srcA", site_review_id="1x", **common)
    assert review_id(source_id="srcA", site_review_id=None, **common) != review_id(
        source_id="srcB", site_review_id=None, **common
    )


def _graph_page(page_url: str, ids: list[str], text: str) -> str:
    graph = [
        {"@type": "Review", "@id": f"{page_url}#r-{rid}", "reviewBody": f"{text} {rid}", "datePublished": "2024-05-03",
         "author": {"@type": "Person", "name": "Ana"}, "reviewRating": {"ratingValue": 4, "bestRating": 5}}
        for rid in ids
    ]  # fmt: skip
    data = json.dumps({"@context": "https://schema.org", "@graph": graph})
    return f'<html><head><script type="application/ld+json">{data}</script></head><body></body></html>'


def test_two_brands_on_one_host_with_equal_site_ids_are_both_kept(
    db_path: Path, local_server: LocalServer
) -> None:
    for brand in ("alpha", "beta"):
        path = f"/reviews/{brand}/"
        local_server.route(path, _graph_page(local_server.url(path), ["1", "2"], f"{brand} helped me"))
    ids = register(db_path, [(b, local_server.url(f"/reviews/{b}/"), "auto") for b in ("alpha", "beta")])
    crawl(db_path)
    stored = rows(db_path, "SELECT id, brand_id, body FROM reviews ORDER BY id")
    assert len(stored) == 4
    assert {r["id"] for r in stored} == {f"site:{ids[b]}:{n}" for b in ("alpha", "beta") for n in ("1", "2")}
    assert all(
        r["body"].startswith(r["brand_id"]) for r in stored
    )  # neither brand's reviews overwrote the other's


@needs_real_pages
def test_switching_the_extractor_on_real_pages_adds_no_rows(db_path: Path, local_server: LocalServer) -> None:
    """auto, then each other place the review sits in, then the platform named: the same rows."""
    pages = {
        "tp-eventnet": TRUSTPILOT[0],
        "tp-studiosamo": TRUSTPILOT[1],
        "yelp": "yelp_rosinas_oceanside_2016.html",
    }
    register(db_path, [(brand, serve(local_server, name), "auto") for brand, name in pages.items()])
    crawl(db_path)
    first = rows(db_path, "SELECT id, brand_id FROM reviews ORDER BY id")
    assert len(first) == 60 and all(r["id"].startswith("site:") for r in first)
    for layouts in (
        {
            "tp-eventnet": "jsonld",
            "tp-studiosamo": "jsonld",
            "yelp": "microdata",
        },  # microdata has no site ids
        {"tp-eventnet": "embedded_json", "tp-studiosamo": "embedded_json"},
        {"tp-eventnet": "trustpilot", "tp-studiosamo": "trustpilot", "yelp": "yelp"},
    ):
        set_layout(db_path, layouts)
        run = crawl(db_path)
        assert run["items_new"] == 0, layouts
        assert rows(db_path, "SELECT id, brand_id FROM reviews ORDER BY id") == first, layouts
    replies = rows(db_path, "SELECT COUNT(*) AS n FROM reviews WHERE reply IS NOT NULL")
    assert replies == [
        {"n": 4 + 1}
    ]  # eventnet's 4 and Yelp's 1 owner replies survived the reply-blind extractors


@needs_real_pages
def test_a_review_first_found_without_its_site_id_is_rekeyed_with_its_scores(
    db_path: Path, local_server: LocalServer
) -> None:
    ids = register(db_path, [("yelp", serve(local_server, "yelp_rosinas_oceanside_2016.html"), "microdata")])
    crawl(db_path)
    hashed = rows(db_path, "SELECT id, rowid FROM reviews ORDER BY rowid")
    assert len(hashed) == 20 and all(r["id"].startswith("h:") for r in hashed)
    db = connect(db_path)
    try:
        for r in hashed:
            db.table("review_sentiment").insert({"review_id": r["id"], "model_id": "m", "model_revision": "1",
                                                 "body_hash": "x", "score": 0.5, "scored_at": "2025-01-01"})  # fmt: skip
    finally:
        db.close()
    set_layout(db_path, {"yelp": "yelp"})
    run = crawl(db_path)
    assert run["items_new"] == 0
    after = rows(db_path, "SELECT id, rowid, site_review_id FROM reviews ORDER BY rowid")
    assert [r["rowid"] for r in after] == [r["rowid"] for r in hashed]
    assert all(r["id"] == f"site:{ids['yelp']}:{r['site_review_id']}" for r in after)
    scores = rows(db_path, "SELECT s.review_id FROM review_sentiment s JOIN reviews r ON r.id = s.review_id")
    assert sorted(s["review_id"] for s in scores) == sorted(r["id"] for r in after)  # every score followed
    set_layout(db_path, {"yelp": "microdata"})
    assert crawl(db_path)["items_new"] == 0  # and the hashed view of the page finds the re-keyed rows


# --------------------------------------------------------------------------- migration 8


def _old_review(db: object, rid: str, source: str, site_id: str | None, body: str, seen: str) -> None:
    db.table("reviews").insert({  # type: ignore[attr-defined]
        "id": rid, "source_id": source, "brand_id": "acme", "site_review_id": site_id, "body": body,
        "body_hash": f"bh-{rid}", "author_hash": "author-1", "published_at": "2024-05-03", "date_precision": "exact",
        "first_seen": seen, "last_seen": seen,
    })  # fmt: skip


def _score(db: object, rid: str, revision: str, score: float) -> None:
    db.table("review_sentiment").insert({  # type: ignore[attr-defined]
        "review_id": rid, "model_id": "m", "model_revision": revision, "body_hash": f"bh-{rid}", "score": score,
        "scored_at": "2025-01-01T00:00:00+00:00",
    })  # fmt: skip


def test_migration_8_rekeys_old_ids_merges_copies_and_keeps_scores(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:8000/trust/acme/"
    src = source_id(url)
    with monkeypatch.context() as patch:
        patch.setattr(database, "MIGRATIONS", [m for m in database.MIGRATIONS if m[0] <= 7])
        db = connect(db_path)
        db.table("brands").insert({"id": "acme", "name": "Acme"})
        db.table("sources").insert({"id": src, "brand_id": "acme", "url": url})
        # The same Trustpilot review stored twice under the old keys: by JSON-LD, then by the platform layout.
        _old_review(db, "site:127.0.0.1:/schema/Review/acme.com/abc123", src, "/schema/Review/acme.com/abc123",
                    "Quick refund.", "2024-06-01T00:00:00+00:00")  # fmt: skip
        _old_review(db, "site:127.0.0.1:abc123", src, "abc123", "Quick refund.", "2024-07-01T00:00:00+00:00")
        _old_review(db, "site:127.0.0.1:R9", src, "R9", "Slow answer.", "2024-06-02T00:00:00+00:00")
        _old_review(db, "h:" + "0" * 32, src, None, "No id here.", "2024-06-03T00:00:00+00:00")
        _score(db, "site:127.0.0.1:/schema/Review/acme.com/abc123", "1", 0.8)
        _score(
            db, "site:127.0.0.1:abc123", "1", 0.7
        )  # the copy's score for the same model: the earliest row's wins
        _score(db, "site:127.0.0.1:abc123", "2", 0.6)  # a model only the copy was scored with: moves over
        _score(db, "site:127.0.0.1:R9", "1", -0.5)
        _score(db, "h:" + "0" * 32, "1", 0.0)
        ensure_search(db)  # full-text index with its triggers, as `reputation rollup` leaves it
        db.close()

    db = connect(db_path)  # migrations 8 and 9 run here
    try:
        reviews = {
            r[0]: r[1:] for r in db.execute("SELECT id, site_review_id, first_seen, last_seen FROM reviews")
        }
        assert reviews == {
            f"site:{src}:abc123": ("abc123", "2024-06-01T00:00:00+00:00", "2024-07-01T00:00:00+00:00"),
            f"site:{src}:R9": ("R9", "2024-06-02T00:00:00+00:00", "2024-06-02T00:00:00+00:00"),
            "h:" + "0" * 32: (None, "2024-06-03T00:00:00+00:00", "2024-06-03T00:00:00+00:00"),
        }
        scores = sorted(
            db.execute("SELECT review_id, model_revision, score FROM review_sentiment").fetchall()
        )
        assert scores == sorted([
            (f"site:{src}:abc123", "1", 0.8), (f"site:{src}:abc123", "2", 0.6),
            (f"site:{src}:R9", "1", -0.5), ("h:" + "0" * 32, "1", 0.0),
        ])  # fmt: skip
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("SELECT content_key FROM reviews WHERE id LIKE 'h:%'").fetchone() == ("0" * 32,)
        found = db.execute(
            "SELECT r.id FROM reviews r JOIN reviews_fts f ON f.rowid = r.rowid WHERE reviews_fts MATCH 'slow'"
        ).fetchall()
        assert found == [(f"site:{src}:R9",)]  # the search index still points at the right rows
    finally:
        db.close()


def test_migration_8_normalises_like_the_crawler(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQL in migration 8 and normalise_site_id agree on every kind of stored site id."""
    raw_ids = [
        "698c6d8cc5a00780babd0c29", "/schema/Review/calo.app/en/698c6d8cc5a00780babd0c30", "gp:AOqp/x1",
        "https://example.com/review/17/", "https://example.com/review?id=5", "https://x.com#/a/b", "a/b//c9//",
        "https://h.example/p/q3?x=/7#f/8", "lg:AOqpTOEfyak2", "R3HPZCT5IDXOV0", "no/digits/here", "https://x1.com",
    ]  # fmt: skip
    src = "0123456789abcdef"
    with monkeypatch.context() as patch:
        patch.setattr(database, "MIGRATIONS", [m for m in database.MIGRATIONS if m[0] <= 7])
        db = connect(db_path)
        db.table("brands").insert({"id": "acme", "name": "Acme"})
        db.table("sources").insert({"id": src, "brand_id": "acme", "url": "http://127.0.0.1/"})
        for n, raw in enumerate(raw_ids):
            _old_review(
                db, f"site:127.0.0.1:{raw}", src, raw, f"text {n}", f"2024-06-{n + 1:02d}T00:00:00+00:00"
            )
        db.close()
    db = connect(db_path)
    try:
        stored = sorted(row[0] for row in db.execute("SELECT id FROM reviews"))
    finally:
        db.close()
    expected = [
        review_id(
            source_id=src,
            site_review_id=raw,
            author=None,
            published_at=None,
            date_precision="missing",
            body=None,
        )
        for raw in raw_ids
    ]
    assert stored == sorted(expected)
