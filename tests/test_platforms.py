"""Built-in platform extractors on small pages written for these tests, one trap each; fuzzed."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.extractors import PLATFORMS, ExtractionError, extract_reviews, layout_names
from crawler.extractors.platforms.amazon import review_date
from crawler.fields import detect_language, parse_date
from storage.database import MIGRATIONS, migrate

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def _html(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}</head><body>{body}</body></html>"


def test_platform_names_are_layouts() -> None:
    names = set(layout_names())
    assert {"trustpilot", "yelp", "amazon", "google_play", "app_store", "tripadvisor", "consumeraffairs"} <= names


# ----------------------------------------------------------------------------- Trustpilot

def _tp_card(rid: str, rating: int | None, text: str, reply: str = "") -> str:
    stars = f"<div data-service-review-rating='{rating}'></div>" if rating else ""
    answer = f"<p data-service-review-business-reply-text-typography>{reply}</p>" if reply else ""
    return (f"<article data-service-review-card-paper='true'><span data-consumer-name-typography>Ana</span>"
            f"<time datetime='2024-05-0{len(rid) % 9 + 1}T10:00:00.000Z'>2 days ago</time>{stars}"
            f"<a href='/reviews/{rid}'><h2 data-service-review-title-typography>T {rid}</h2></a>"
            f"<p data-service-review-text-typography>{text}</p>{answer}</article>")  # fmt: skip


def test_trustpilot_three_copies_are_one_review_and_carousel_is_not_extra() -> None:
    next_data = {"props": {"pageProps": {"businessUnit": {"trustScore": 4.1, "numberOfReviews": 99}, "reviews": [
        {"id": "aaa", "rating": 5, "text": "Quick refund &amp; kind agent.<br>Thanks", "title": "Great",
         "dates": {"publishedDate": "2024-05-02T10:00:00.000Z"}, "consumer": {"displayName": "Ana"},
         "reply": {"message": "Thank you Ana!"}},
        {"id": "bbb", "rating": 2, "text": "Slow answer.", "title": "Meh", "dates": {}, "consumer": {}, "reply": None},
    ]}}}  # fmt: skip
    graph = {"@context": "https://schema.org", "@graph": [
        {"@type": "Review", "@id": "https://x/schema/Review/acme/bbb", "datePublished": "2024-04-01",
         "author": {"name": "Bo"}, "reviewBody": "Slow answer.", "reviewRating": {"ratingValue": "2"}}]}  # fmt: skip
    body = _tp_card("bbb", None, "Slow answer.") + _tp_card("aaa", 5, "Quick refund") + _tp_card("bbb", 2, "Slow")
    page = _html(
        body + f"<script id='__NEXT_DATA__' type='application/json'>{json.dumps(next_data)}</script>",
        f"<script type='application/ld+json' data-business-unit-json-ld>{json.dumps(graph)}</script>",
    )
    result = extract_reviews(page, "http://127.0.0.1:9/review/acme")
    assert result.extractor == "trustpilot"
    assert [(r.site_review_id, r.rating_value) for r in result.reviews] == [("aaa", 5.0), ("bbb", 2.0)]
    aaa, bbb = result.reviews
    assert aaa.reply == "Thank you Ana!" and "Thank you" not in (aaa.body or "")
    assert bbb.author == "Ana" and bbb.date_raw  # filled from the card (then the JSON-LD) copy
    assert result.aggregate is not None and result.aggregate.review_count == 99
    assert [r.site_review_id for r in extract_reviews(page, "http://x/", "trustpilot").reviews] == ["aaa", "bbb"]


def test_trustpilot_cards_alone_skip_carousel_copies() -> None:
    page = _html(_tp_card("ccc", None, "carousel copy") + _tp_card("ccc", 4, "Fine", reply="We are sorry"))
    result = extract_reviews(page, "http://127.0.0.1:9/review/acme")
    assert [(r.site_review_id, r.rating_value, r.reply) for r in result.reviews] == [("ccc", 4.0, "We are sorry")]


# ----------------------------------------------------------------------------- Yelp

YELP = _html(
    "<div class='biz-rating'><i class='star-img stars_4' title='4.5 star rating'></i></div>"
    "<div class='review review--with-sidebar'><div class='review-content'>compose</div></div>"
    "<div class='review review--with-sidebar' data-review-id='Y1'><a class='user-display-name'>Kim</a>"
    "<div class='review-content'><i class='star-img' title='2.0 star rating'></i>"
    "<span class='rating-qualifier'>3/24/2016</span><p lang='en'>Cold food, rude host.</p></div>"
    "<div class='biz-owner-reply'><div class='biz-owner-reply-header'>Comment from Owner</div>"
    "<span class='js-content-toggleable'>So sorry…</span>"
    "<span class='js-content-toggleable hidden'>So sorry to hear that. ~Owner</span></div></div>"
    "<div class='related'><i class='star-img' title='5.0 star rating'></i></div>"
)


def test_yelp_decoy_stars_compose_widget_and_owner_reply() -> None:
    result = extract_reviews(YELP, "http://127.0.0.1:9/biz/x")
    assert result.extractor == "yelp"
    [item] = result.reviews
    assert (item.site_review_id, item.rating_value, item.date_raw, item.author) == ("Y1", 2.0, "3/24/2016", "Kim")
    assert item.body == "Cold food, rude host."
    assert item.reply == "So sorry to hear that. ~Owner"


# ----------------------------------------------------------------------------- Amazon


def test_amazon_marketplace_dates() -> None:
    assert review_date("Reviewed in the United States on November 16, 2018") == "November 16, 2018"
    assert review_date("Rezension aus Deutschland vom 3. März 2020") == "3. März 2020"
    assert review_date("Commenté en France le 5 mars 2020") == "5 mars 2020"
    assert review_date("2020年3月3日に日本でレビュー済み") == "2020年3月3日"
    page = _html(
        "<div id='cm_cr-review_list'><div data-hook='review' id='R1'><span class='a-profile-name'>Jo</span>"
        "<i data-hook='review-star-rating'><span class='a-icon-alt'>4,0 von 5 Sternen</span></i>"
        "<a data-hook='review-title'><span>Gut</span></a>"
        "<span data-hook='review-date'>Rezension aus Deutschland vom 3. März 2020</span>"
        "<span data-hook='review-body'><span>Funktioniert.</span></span></div></div>"
    )
    [item] = extract_reviews(page, "http://127.0.0.1:9/product-reviews/B0").reviews
    assert (item.site_review_id, item.rating_value, item.title, item.date_raw) == ("R1", 4.0, "Gut", "3. März 2020")
    assert parse_date(item.date_raw, NOW) == ("2020-03-03", "exact")


# ----------------------------------------------------------------------------- Google Play


def _gp_card(rid: str, width: int, text: str) -> str:
    return (f"<div class='single-review'><div class='review-header' data-reviewid='{rid}'>"
            f"<span class='author-name'>A</span><span class='review-date'>October 25, 2015</span>"
            f"<div class='tiny-star' aria-label='Rated 1 stars'><div class='current-rating' style='width: {width}%;'>"
            f"</div></div></div><div class='review-body'><span class='review-title'>Title {rid}</span> {text}"
            f"<div class='review-link' style='display:none'><a>Full Review</a></div></div></div>")  # fmt: skip


def test_google_play_html_skips_preview_duplicates_and_empty_title() -> None:
    page = _html(
        f"<div class='preview-reviews'><div class='featured-review'>{_gp_card('gp:1', 80, 'Nice')}</div></div>"
        f"<div class='all-reviews'>{_gp_card('gp:1', 80, 'Nice')}{_gp_card('gp:2', 20, 'Crashes')}</div>"
    )
    result = extract_reviews(page, "http://127.0.0.1:9/store/apps/details")
    assert [(r.site_review_id, r.rating_value, r.body) for r in result.reviews] == [
        ("gp:1", 4.0, "Nice"), ("gp:2", 1.0, "Crashes")]  # fmt: skip


def test_google_play_callback_data_is_read_with_raw_decode() -> None:
    rows = [["gp:A", ["Lee", None], 5, None, "Love it}) ;", [1560000000, 0], 3, [None, "Thanks!", [1560000100]]],
            ["gp:B", ["Max", None], 1, None, "Crashes", [1559000000], 0, None]]  # fmt: skip
    script = (
        "AF_initDataCallback({key: 'ds:15', isError:  false , hash: '15', data:function(){return "
        + json.dumps([rows, "token"]) + " }});"
    )
    page = _html(f"<script>var x = 'play.google';</script><script>{script}</script>")
    result = extract_reviews(page, "http://127.0.0.1:9/store/apps/details")
    assert result.extractor == "google_play"
    a, b = result.reviews
    assert (a.site_review_id, a.rating_value, a.body, a.reply, a.date_raw) == (
        "gp:A", 5.0, "Love it}) ;", "Thanks!", "2019-06-08")  # fmt: skip
    assert (b.rating_value, b.reply) == (1.0, None)


# ----------------------------------------------------------------------------- App Store


def _feed(page: int, next_page: int) -> str:
    base = "https://itunes.apple.com/rss/customerreviews/page={}/id=1/sortby=mostrecent/json?cc=fr"
    xml = "https://itunes.apple.com/fr/rss/customerreviews/page={}/id=1/sortby=mostrecent/xml?urlDesc=/x/json"
    entry = {"id": {"label": "900"}, "im:rating": {"label": "2"}, "title": {"label": "Bof"},
             "content": {"label": "Lent"}, "author": {"name": {"label": "Zoé"}}}  # fmt: skip
    app = {"im:name": {"label": "The app"}, "id": {"label": "1"}}
    links = [{"attributes": {"rel": "self", "href": base.format(page)}},
             {"attributes": {"rel": "next", "href": xml.format(next_page)}}]  # fmt: skip
    return json.dumps({"feed": {"id": {"label": base.format(page)}, "link": links, "entry": [app, entry]}})


def test_app_store_follows_json_next_not_xml_and_stops_on_self() -> None:
    url = "https://itunes.apple.com/rss/customerreviews/page=1/id=1/sortby=mostrecent/json?cc=fr"
    result = extract_reviews(_feed(1, 2), url)
    assert result.extractor == "app_store"
    assert [(r.site_review_id, r.rating_value, r.author) for r in result.reviews] == [("900", 2.0, "Zoé")]
    assert result.next_pages == [url.replace("page=1", "page=2")]
    assert extract_reviews(_feed(3, 3), url.replace("page=1", "page=3")).next_pages == []


# ----------------------------------------------------------------------------- TripAdvisor, ConsumerAffairs


def test_tripadvisor_truncated_text_is_flagged_without_more_link() -> None:
    page = _html(
        "<div class='review-container' data-reviewid='77'><div class='info_text'><div>Tom</div></div>"
        "<span class='ui_bubble_rating bubble_30'></span><span class='ratingDate' title='July 24, 2018'>Reviewed"
        "</span><span class='noQuotes'>Okay</span><p class='partial_entry'>Long text...<span class='taLnk "
        "ulBlueLinks'>More</span></p></div>"
    )
    [item] = extract_reviews(page, "http://127.0.0.1:9/Attraction_Review").reviews
    assert (item.rating_value, item.truncated, item.body, item.date_raw) == (3.0, True, "Long text...", "July 24, 2018")


def test_consumeraffairs_hidden_collapsed_text_is_joined() -> None:
    page = _html(
        "<div class='rvw js-rvw' itemprop='reviews' itemscope itemtype='http://schema.org/Review' data-id='5'>"
        "<div itemprop='reviewRating' itemscope><meta itemprop='ratingValue' content='1'></div>"
        "<strong class='rvw-aut__inf-nm'>Al of Reno, NV</strong><div class='rvw-bd'>"
        "<span class='ca-txt-cpt'>Original review: Sept. 28, 2018</span><p>First part.</p>"
        "<div class='js-collapsed'><p>Hidden rest.</p></div><a>View more</a></div></div>"
    )
    [item] = extract_reviews(page, "http://127.0.0.1:9/travel/x.html").reviews
    assert item.extractor == "consumeraffairs" and item.body == "First part.\n\nHidden rest."
    assert parse_date(item.date_raw, NOW) == ("2018-09-28", "exact")


# ----------------------------------------------------------------------------- generic robustness


def test_rated_title_only_review_is_kept_with_title_as_body() -> None:
    page = _html("", "<script type='application/ld+json'>" + json.dumps(
        {"@context": "https://schema.org", "@type": "Review", "name": "Excellent support",
         "reviewRating": {"ratingValue": 5}}) + "</script>")  # fmt: skip
    [item] = extract_reviews(page, "http://127.0.0.1:9/x").reviews
    assert item.body == "Excellent support"


def test_short_texts_and_partial_dates() -> None:
    assert detect_language("Top app") == "und"
    assert detect_language("越来越烂") == "zh"
    assert parse_date("June 2018", NOW) == ("2018-06-01", "month")
    assert parse_date("2018", NOW) == ("2018-01-01", "year")
    assert parse_date("March 3, 2018", NOW) == ("2018-03-03", "exact")


def test_errors_are_typed_records() -> None:
    page = _html("", "<script type='application/ld+json'>{broken</script>")
    [error] = extract_reviews(page, "http://127.0.0.1:9/x").errors
    assert isinstance(error, ExtractionError) and (error.extractor, error.reason) == ("jsonld", "broken_json")


def test_month_precision_migration_keeps_rows_sentiment_and_fts(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    db = sqlite_utils.Database(conn)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT, applied_at TEXT)")
    for version, _, script in MIGRATIONS:
        if version <= 6:
            conn.executescript(script)
            conn.execute("INSERT INTO schema_migrations VALUES (?, '', '')", (version,))
    conn.execute("INSERT INTO brands VALUES ('b', 'B', NULL)")
    conn.execute("INSERT INTO sources (id, brand_id, url) VALUES ('s', 'b', 'http://x/')")
    conn.execute("INSERT INTO reviews (id, source_id, brand_id, body, body_hash, first_seen, last_seen) "
                 "VALUES ('r1', 's', 'b', 'slow refund', 'h', 't', 't')")  # fmt: skip
    conn.execute("INSERT INTO review_sentiment (review_id, model_id, model_revision, body_hash, scored_at) "
                 "VALUES ('r1', 'm', '1', 'h', 't')")  # fmt: skip
    db.table("reviews").enable_fts(["title", "body"], create_triggers=True)
    assert migrate(db) == [v for v, _, _ in MIGRATIONS if v > 6]
    conn.execute("INSERT INTO reviews (id, source_id, brand_id, body, body_hash, date_precision, first_seen, "
                 "last_seen) VALUES ('r2', 's', 'b', 'rude agent', 'h2', 'month', 't', 't')")  # fmt: skip
    assert conn.execute("SELECT count(*) FROM review_sentiment").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM reviews_fts WHERE reviews_fts MATCH 'rude'").fetchone()[0] == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ----------------------------------------------------------------------------- fuzz

_MARKUP = st.sampled_from([
    "<div class='review' data-review-id='x'>", "<div data-hook='review' id='R'>", "<div class='single-review'>",
    "<div class='review-container' data-reviewid='1'>", "<div itemprop='reviews' data-id='2'>", "</div>",
    "<article data-service-review-card-paper>", "<span class='ui_bubble_rating bubble_5'>",
    "<script id='__NEXT_DATA__'>{\"props\":{\"pageProps\":{\"reviews\":[{\"id\":1,\"rating\":\"x\"}]}}}</script>",
    "<script>AF_initDataCallback({key: 'ds:1', data:function(){return [[[\"gp:1\",null,9]]]}});</script>",
    "<p lang='en'>", "<span data-hook='review-date'>on</span>", "{\"feed\":{\"entry\":{\"im:rating\":{}}}}",
])  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.one_of(_MARKUP, st.text(max_size=30)), max_size=12), name=st.sampled_from(sorted(PLATFORMS)))
def test_platform_extractors_never_raise(parts: list[str], name: str) -> None:
    page = "".join(parts)
    for layout in ("auto", name):
        result = extract_reviews(page, "http://127.0.0.1:9/x", layout)
        assert all(error.extractor != "extract" for error in result.errors), result.errors


@settings(max_examples=100, deadline=None)
@given(data=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                         lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
                         max_leaves=20))  # fmt: skip
def test_app_store_feed_fuzz(data: object) -> None:
    result = extract_reviews(json.dumps({"feed": data}), "http://127.0.0.1:9/page=1/json", "app_store")
    assert all(error.extractor != "extract" for error in result.errors), result.errors


def test_json_in_js_assignments_and_comments_with_escaped_markup() -> None:
    reviews = [{"id": "j1", "text": "Great &lt;br&gt;service &amp;amp; fast", "rating": 5, "date": "2024-01-02"}]
    assigned = _html(f"<script>window.__STATE__ = {json.dumps({'reviews': reviews})};</script>")
    commented = _html(f"<code><!--{json.dumps({'data': {'reviews': reviews}})}--></code>")
    for page in (assigned, commented):
        result = extract_reviews(page, "http://127.0.0.1:9/x")
        assert result.extractor == "embedded_json"
        [item] = result.reviews
        assert item.site_review_id == "j1" and item.rating_value == 5.0
        from crawler.fields import clean_text

        assert clean_text(item.body) == "Great\nservice & fast"
