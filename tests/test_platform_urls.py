"""Listing URLs of the built-in platforms: suggestions from a domain or app id, newest-first order, first page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.extractors import extract_reviews, layout_names
from crawler.extractors.platforms import PLATFORMS
from crawler.extractors.platforms.urls import (
    RULES,
    first_page,
    newest_first,
    normalise_apple_id,
    normalise_country,
    normalise_domain,
    normalise_play_id,
    platform_of,
    suggest_sources,
)

REAL_PAGES = Path(__file__).resolve().parents[2] / "shared" / "real-pages"

# Listing URLs as the saved real pages name them (see real-pages/MANIFEST.md).
TRUSTPILOT_NEXT = "https://www.trustpilot.com/review/calo.app/en?languages=all&page=2&sort=recency"
TRUSTPILOT_IT = "https://it.trustpilot.com/review/studiosamo.it?page=2"
TRUSTPILOT_RELEVANCE = "https://www.trustpilot.com/review/eventnet.de?sort=relevance"
YELP_NEXT = "http://www.yelp.com/biz/rosinas-italian-restaurant-oceanside-oceanside-4?start=20"
YELP_RATING = "http://www.yelp.com/biz/rosinas-italian-restaurant-oceanside-oceanside-4?sort_by=rating_desc&start=0"
AMAZON_FILTERED = (
    "https://www.amazon.com/Love-Languages-Secret-that-Lasts/product-reviews/080241270X/ref=cm_cr_arp_d_paging_btm_2"
    "?ie=UTF8&filterByStar=one_star&pageNumber=2&sortBy=helpful"
)
AMAZON_PAGE4 = (
    "https://www.amazon.com/DEC012BK-Electric-Scrambled-Vegetables-Dumplings/product-reviews/B00ZGCKLE2"
    "/ref=cm_cr_getr_d_paging_btm_4?ie=UTF8&pageNumber=4&pageSize=10&sortBy=helpful"
)
APPLE_FR = "https://itunes.apple.com/rss/customerreviews/page=1/id=497799835/sortby=mostrecent/json?l=en&cc=fr"
APPLE_CN_10 = "https://itunes.apple.com/rss/customerreviews/page=10/id=497799835/sortby=mostrecent/json?l=en&cc=cn"
PLAY = "https://play.google.com/store/apps/details?id=com.mojang.minecraftpe&hl=en"
TRIPADVISOR_NEXT = (
    "http://www.tripadvisor.com/Attraction_Review-g644300-d7289577-Reviews-or10-"
    "Tourist_Information_Centre_Kranj_House-Kranj_Upper_Carniola_Region.html"
)
CONSUMERAFFAIRS_NEXT = "https://www.consumeraffairs.com/travel/sell-my-timeshare-now.html?page=2"

REAL_URLS = [TRUSTPILOT_NEXT, TRUSTPILOT_IT, TRUSTPILOT_RELEVANCE, YELP_NEXT, YELP_RATING, AMAZON_FILTERED,
             AMAZON_PAGE4, APPLE_FR, APPLE_CN_10, PLAY, TRIPADVISOR_NEXT, CONSUMERAFFAIRS_NEXT]


def params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# --------------------------------------------------------------------------- concrete URLs


@pytest.mark.parametrize(
    ("url", "newest", "first"),
    [
        (TRUSTPILOT_NEXT, TRUSTPILOT_NEXT, "https://www.trustpilot.com/review/calo.app/en?languages=all&sort=recency"),
        (TRUSTPILOT_IT, "https://it.trustpilot.com/review/studiosamo.it?page=2&sort=recency",
         "https://it.trustpilot.com/review/studiosamo.it"),
        (TRUSTPILOT_RELEVANCE, "https://www.trustpilot.com/review/eventnet.de?sort=recency", TRUSTPILOT_RELEVANCE),
        (YELP_NEXT, YELP_NEXT + "&sort_by=date_desc",
         "http://www.yelp.com/biz/rosinas-italian-restaurant-oceanside-oceanside-4"),
        (YELP_RATING, YELP_RATING.replace("rating_desc", "date_desc"),
         "http://www.yelp.com/biz/rosinas-italian-restaurant-oceanside-oceanside-4?sort_by=rating_desc"),
        (AMAZON_FILTERED, AMAZON_FILTERED.replace("sortBy=helpful", "sortBy=recent"),
         AMAZON_FILTERED.replace("&pageNumber=2", "")),
        (AMAZON_PAGE4, AMAZON_PAGE4.replace("sortBy=helpful", "sortBy=recent"), AMAZON_PAGE4.replace("pageNumber=4&", "")),
        (APPLE_FR, APPLE_FR, APPLE_FR),
        (APPLE_CN_10, APPLE_CN_10, APPLE_CN_10.replace("page=10", "page=1")),
        (PLAY, PLAY, PLAY),
        (TRIPADVISOR_NEXT, TRIPADVISOR_NEXT, TRIPADVISOR_NEXT.replace("-or10-", "-")),
        (CONSUMERAFFAIRS_NEXT, CONSUMERAFFAIRS_NEXT, "https://www.consumeraffairs.com/travel/sell-my-timeshare-now.html"),
    ],
)
def test_real_listing_urls(url: str, newest: str, first: str) -> None:
    assert newest_first(url) == newest
    assert first_page(url) == first
    assert newest_first(newest) == newest and first_page(first) == first


def test_every_platform_has_rules_and_real_urls_map_to_them() -> None:
    assert set(RULES) == set(PLATFORMS)
    assert {platform_of(url) for url in REAL_URLS} == set(PLATFORMS)
    assert platform_of("https://example.com/review/x?page=2") is None
    assert newest_first("https://example.com/x?page=2&b=1") == "https://example.com/x?page=2&b=1"
    assert first_page("https://example.com/x?page=2") == "https://example.com/x?page=2"


def test_app_store_sort_segment_is_replaced_or_added() -> None:
    helpful = "https://itunes.apple.com/us/rss/customerreviews/id=284882215/sortBy=mostHelpful/json"
    assert newest_first(helpful) == "https://itunes.apple.com/us/rss/customerreviews/id=284882215/sortby=mostrecent/json"
    bare = "https://itunes.apple.com/gb/rss/customerreviews/page=3/id=284882215/json"
    assert newest_first(bare) == "https://itunes.apple.com/gb/rss/customerreviews/page=3/id=284882215/sortby=mostrecent/json"
    assert first_page(bare) == "https://itunes.apple.com/gb/rss/customerreviews/page=1/id=284882215/json"
    # another Apple feed is no review listing: left alone
    other = "https://itunes.apple.com/us/rss/topfreeapplications/limit=10/json"
    assert newest_first(other) == other and first_page(other) == other


def test_platform_named_explicitly_for_a_mirror_host() -> None:
    mirror = "http://127.0.0.1:8080/review/acme.com?page=3&languages=all"
    assert newest_first(mirror) == mirror  # unknown host: untouched
    assert newest_first(mirror, "trustpilot") == mirror + "&sort=recency"
    assert first_page(mirror, "trustpilot") == "http://127.0.0.1:8080/review/acme.com?languages=all"
    with pytest.raises(KeyError, match="no built-in platform named 'bbb'"):
        newest_first(mirror, "bbb")


@pytest.mark.skipif(not REAL_PAGES.exists(), reason=f"real saved pages not found in {REAL_PAGES} (folder absent)")
@pytest.mark.parametrize(
    ("file", "url", "first"),
    [
        ("trustpilot_studiosamo_it_2025.html", "https://it.trustpilot.com/review/studiosamo.it",
         "https://it.trustpilot.com/review/studiosamo.it"),
        ("trustpilot_calo_2026.html", "https://www.trustpilot.com/review/calo.app/en",
         "https://www.trustpilot.com/review/calo.app/en?languages=all&sort=recency"),
        ("yelp_rosinas_oceanside_2016.html", "http://www.yelp.com/biz/rosinas-italian-restaurant-oceanside-oceanside-4",
         None),
        ("amazon_dasheggcooker_2020.html",
         "https://www.amazon.com/DEC012BK-Electric-Scrambled-Vegetables-Dumplings/product-reviews/B00ZGCKLE2",
         "https://www.amazon.com/DEC012BK-Electric-Scrambled-Vegetables-Dumplings/product-reviews/B00ZGCKLE2"
         "/ref=cm_cr_getr_d_paging_btm_4?ie=UTF8&pageSize=10&sortBy=helpful"),
        ("tripadvisor_kranjhouse_attraction_2019.html",
         "http://www.tripadvisor.com/Attraction_Review-g644300-d7289577-Reviews-"
         "Tourist_Information_Centre_Kranj_House-Kranj_Upper_Carniola_Region.html",
         "http://www.tripadvisor.com/Attraction_Review-g644300-d7289577-Reviews-"
         "Tourist_Information_Centre_Kranj_House-Kranj_Upper_Carniola_Region.html"),
    ],
)
def test_first_page_of_a_real_next_link(file: str, url: str, first: str | None) -> None:
    """The next-page link an extractor finds on a real page leads back to page one, filters and all."""
    result = extract_reviews((REAL_PAGES / file).read_bytes(), url)
    assert result.reviews and result.next_pages, file
    back = first_page(result.next_pages[0])
    assert back == (first or url)
    assert first_page(newest_first(result.next_pages[0])) == newest_first(back)


# --------------------------------------------------------------------------- properties

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8)
_pairs = st.lists(st.tuples(_text.filter(bool), _text), max_size=5)
_hosts = st.sampled_from(["www.trustpilot.com", "de.trustpilot.com", "www.yelp.com", "www.amazon.co.uk",
                          "play.google.com", "itunes.apple.com", "www.tripadvisor.com", "www.consumeraffairs.com",
                          "example.org"])
_paths = st.sampled_from([
    "/review/acme.com", "/biz/acme-store-london", "/product-reviews/B00ZGCKLE2/ref=cm_cr_arp_d_paging_btm_2",
    "/store/apps/details", "/us/rss/customerreviews/page=4/id=123/sortBy=mostHelpful/json",
    "/rss/customerreviews/id=123/json", "/Hotel_Review-g1-d2-Reviews-or20-Grand_Hotel-Paris.html",
    "/travel/acme.html", "/",
])
_page_keys = st.sampled_from(["page", "start", "pageNumber", "sort", "sort_by", "sortBy", "x", "languages"])


@st.composite
def listing_urls(draw: st.DrawFn) -> str:
    pairs = draw(_pairs) + [(draw(_page_keys), draw(st.sampled_from(["2", "", "recency", "helpful"])))
                            for _ in range(draw(st.integers(0, 3)))]
    pairs = draw(st.permutations(pairs))
    query = urlencode(pairs)
    fragment = draw(st.sampled_from(["", "#reviews"]))
    return f"https://{draw(_hosts)}{draw(_paths)}{'?' + query if query else ''}{fragment}"


@settings(max_examples=300, deadline=None)
@given(listing_urls())
def test_rewrites_are_idempotent_and_commute(url: str) -> None:
    newest, first = newest_first(url), first_page(url)
    assert newest_first(newest) == newest
    assert first_page(first) == first
    assert first_page(newest) == newest_first(first)


SORTS = {"trustpilot": ("sort", "recency"), "yelp": ("sort_by", "date_desc"), "amazon": ("sortBy", "recent")}
PAGES = {"trustpilot": "page", "yelp": "start", "amazon": "pageNumber", "consumeraffairs": "page"}


@settings(max_examples=300, deadline=None)
@given(listing_urls())
def test_other_parameters_survive(url: str) -> None:
    """Only the platform's sort and page parameters change; every other one is kept, in order."""
    name = platform_of(url) or ""
    sort_key, sort_value = SORTS.get(name, (None, None))
    page_key = PAGES.get(name)
    before, newest = params(url), params(newest_first(url))
    assert [p for p in newest if p[0] != sort_key] == [p for p in before if p[0] != sort_key]
    assert params(first_page(url)) == [p for p in before if p[0] != page_key]
    if sort_key:
        assert [v for k, v in newest if k == sort_key] == [sort_value]
    assert urlsplit(newest_first(url)).fragment == urlsplit(url).fragment
    assert urlsplit(first_page(url)).fragment == urlsplit(url).fragment


# --------------------------------------------------------------------------- suggestions


def test_suggestions_from_domain_and_app_ids() -> None:
    found, needs = suggest_sources("https://www.Acme.co.uk/contact", ["com.acme.app", "com.acme.app"], ["id284882215"],
                                   country="GB", language="de")
    assert [(s.platform, s.url) for s in found] == [
        ("trustpilot", "https://www.trustpilot.com/review/acme.co.uk"),
        ("google_play", "https://play.google.com/store/apps/details?id=com.acme.app&hl=de&showAllReviews=true"),
        ("app_store", "https://itunes.apple.com/gb/rss/customerreviews/page=1/id=284882215/sortby=mostrecent/json"),
    ]
    assert {s.layout for s in found} <= set(layout_names())
    assert [n.platform for n in needs] == ["yelp", "amazon", "tripadvisor", "consumeraffairs"]
    # the suggested URLs are already first pages in newest-first order
    assert all(newest_first(first_page(s.url)) == s.url for s in found if s.platform != "trustpilot")
    assert all(platform_of(s.url) == s.platform for s in found)


def test_suggestions_without_ids_say_what_is_missing() -> None:
    found, needs = suggest_sources("acme.com")
    assert [s.platform for s in found] == ["trustpilot"]
    missing = {n.platform: n.why for n in needs}
    assert "--app-id" in missing["google_play"] and "--apple-id" in missing["app_store"]
    found, needs = suggest_sources(None, ["com.acme.app"])
    assert [s.platform for s in found] == ["google_play"] and "--domain" in needs[0].why


@pytest.mark.parametrize(
    ("text", "domain"),
    [("acme.com", "acme.com"), ("https://www.ACME.com/about?x=1", "acme.com"), ("shop.acme.co.uk:8443", "shop.acme.co.uk"),
     ("www.com", "www.com"), ("bücher.de", "xn--bcher-kva.de"), ("acme.com.", "acme.com")],
)
def test_domain_normalised(text: str, domain: str) -> None:
    assert normalise_domain(text) == domain


@pytest.mark.parametrize("text", ["acme", "", "192.168.1.1", "acme..com", "ex ample.com", "-acme.com", "acme.c0m",
                                  "http://", "Acme Corp"])
def test_not_a_domain(text: str) -> None:
    with pytest.raises(ValueError, match="is not a domain name"):
        normalise_domain(text)


def test_app_ids_checked() -> None:
    assert normalise_play_id(" com.mojang.minecraftpe ") == "com.mojang.minecraftpe"
    assert normalise_apple_id("id497799835") == normalise_apple_id("497799835") == "497799835"
    assert normalise_country("FR") == "fr"
    for bad, check in [("minecraft", normalise_play_id), ("com..x", normalise_play_id), ("12ab", normalise_apple_id),
                       ("usa", normalise_country)]:
        with pytest.raises(ValueError, match="is not"):
            check(bad)
    with pytest.raises(ValueError, match="is not a language code"):
        suggest_sources("acme.com", language="english please")
