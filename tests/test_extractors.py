"""Extractors on saved pages: structured data, embedded JSON, HTML layouts, bad pages, auto order."""

from __future__ import annotations

from pathlib import Path

import pytest
from crawl_support import modules_loaded_after
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.extractors import Aggregate, ExtractionResult, LayoutError, extract_reviews, layout_names
from crawler.extractors.layout_config import load_layouts

PAGES = Path(__file__).parent / "pages"
HOST = "http://127.0.0.1:8000"


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def by_id(result: ExtractionResult) -> dict[str | None, object]:
    return {item.site_review_id: item for item in result.reviews}


# ----------------------------------------------------------------------------- JSON-LD


def test_jsonld_graph_resolves_id_references_without_double_counting() -> None:
    url = f"{HOST}/trust/northwind-air/"
    result = extract_reviews(page("trust_graph.html"), url)
    assert result.extractor == "jsonld"
    # T103 is both inlined in the Organization and a separate node: counted once
    assert [r.site_review_id for r in result.reviews] == ["T101", "T102", "T103"]
    first = result.reviews[0]
    assert first.title == "Helpful agent"
    assert first.body == "The chat agent rebooked my cancelled flight in five minutes."
    assert first.author == "Ana P."
    assert (first.rating_value, first.rating_min, first.rating_max) == (5.0, 1.0, 5.0)
    assert first.date_raw == "2024-05-03"
    assert first.url == url and first.extractor == "jsonld"
    assert result.reviews[2].rating_value == 4.0  # string "4" in the markup
    assert result.aggregate == Aggregate(rating_value=3.4, rating_max=5.0, review_count=57)
    assert result.next_pages == [f"{HOST}/trust/northwind-air/page/2/"]
    assert result.errors == []


def test_jsonld_reviews_nested_under_product_with_type_lists_and_http_context() -> None:
    result = extract_reviews(page("product_nested.html"), "https://shop.test/contoso")
    assert result.extractor == "jsonld"
    reviews = by_id(result)
    assert set(reviews) == {"P-1", "second"}  # identifier, then the @id fragment
    p1 = result.reviews[0]
    assert p1.author == "Chris"  # author given as a plain string
    assert p1.title == "Billing sorted quickly"
    assert (p1.rating_value, p1.rating_min, p1.rating_max) == (9.0, 0.0, 10.0)
    second = result.reviews[1]
    assert second.body == "Nobody answers the support email."  # description when no reviewBody
    assert second.author == "Fabrikam Ltd"  # Organization author
    assert (second.rating_value, second.rating_min, second.rating_max) == (2.0, None, None)
    assert result.aggregate == Aggregate(rating_value=7.5, rating_max=10.0, review_count=2)


def test_broken_jsonld_block_is_reported_and_good_block_still_read() -> None:
    result = extract_reviews(page("broken_jsonld.html"), "https://reviews.example/x")
    assert [r.site_review_id for r in result.reviews] == ["G1"]
    assert result.reviews[0].author == "Eve"
    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.extractor, error.reason) == ("jsonld", "broken_json") and error.detail.startswith("block 1")


# ----------------------------------------------------------------------------- microdata, RDFa


def test_microdata_product_with_nested_reviews_and_numbered_pages() -> None:
    url = f"{HOST}/shop/northwind-air/"
    result = extract_reviews(page("shop_microdata.html"), url)
    assert result.extractor == "microdata"
    assert len(result.reviews) == 2
    greta, hugo = result.reviews
    assert greta.site_review_id is None  # the shop has no ids; the dedupe step hashes
    assert greta.author == "Greta M."
    assert greta.date_raw == "2024-05-03"
    assert (greta.rating_value, greta.rating_min, greta.rating_max) == (2.0, 1.0, 5.0)
    assert greta.body is not None and "\n\nSehr enttäuschend." in greta.body
    assert hugo.body == "Quick refund after one phone call."
    assert result.aggregate == Aggregate(rating_value=3.5, rating_max=5.0, review_count=24)
    # numbered pages, the page itself left out
    assert result.next_pages == [f"{HOST}/shop/northwind-air/2/", f"{HOST}/shop/northwind-air/3/"]


MICRODATA_WITH_JUNK = """<html><body><div itemscope itemtype="https://schema.org/Product">
<span itemprop="name">Acme <!-- internal note -->Air</span>
<div itemprop="review" itemscope itemtype="https://schema.org/Review">
  <p itemprop="reviewBody">Slow <script>track()</script>refund<style>p{}</style>, <meta content="x">but polite.
  <br>Second line.</p>
  <div itemprop="reviewBody">Plain <b>bold</b> text<p>in two paragraphs</p></div>
  <span itemprop="author" itemscope itemtype="https://schema.org/Person"><span itemprop="name">Bo</span></span>
  <link itemprop="url" href="/r/1"><meta itemprop="datePublished" content="2024-05-03">
</div></div></body></html>"""


@pytest.mark.parametrize("name", ["shop_microdata.html", "product_nested.html", None])
def test_microdata_reader_matches_extruct(name: str | None) -> None:
    import extruct

    from crawler.extractors.page import Page
    from crawler.extractors.structured import _microdata_roots

    html = page(name) if name else MICRODATA_WITH_JUNK
    parsed = Page(html, f"{HOST}/shop/acme/")
    expected = extruct.extract(parsed.selector.root, base_url=parsed.base_url, syntaxes=["microdata"], uniform=True)
    errors: list[str] = []
    assert _microdata_roots(parsed, errors) == expected["microdata"]
    assert errors == []
    if name is None:  # scripts, styles and comments are left out of the text, as extruct does
        review = expected["microdata"][0]["review"]
        assert review["reviewBody"][0].startswith("Slow refund, but polite.")
        assert "track" not in review["reviewBody"][0]
        assert review["reviewBody"][1] == "Plain bold text\n\nin two paragraphs"


def test_the_crawl_process_imports_extruct_only_when_a_page_needs_it() -> None:
    """Importing the reviews spider and its extraction pool leaves extruct (and the microformat
    and RDFa stacks it brings) out; ``prepare``, as a worker calls it, and a page both load it."""
    heavy = "extruct|mf2py|rdflib|bs4"
    everything = ["bs4", "extruct", "mf2py", "rdflib"]
    assert modules_loaded_after("import spiders.reviews, crawler.extraction_pool, crawler.pipelines.store", heavy) == []
    assert modules_loaded_after("from crawler.extractors import prepare; prepare()", heavy) == everything
    page_code = (
        "from crawler.extractors import extract_reviews\n"
        "extract_reviews('<script type=\"application/ld+json\">{}</script>', 'http://127.0.0.1:1/')"
    )
    assert modules_loaded_after(page_code, heavy) == everything


def test_rdfa_reviews() -> None:
    result = extract_reviews(page("rdfa.html"), "https://tailspin.test/reviews")
    assert result.extractor == "rdfa"
    assert [r.site_review_id for r in result.reviews] == ["RD1", "RD2"]
    first = result.reviews[0]
    assert first.title == "Replacement sent fast"
    assert first.author == "Ivy"
    assert first.body == "The support team sent a replacement the same day."
    assert (first.rating_value, first.rating_max, first.date_raw) == (5.0, 5.0, "2024-01-15")
    assert result.aggregate is not None and result.aggregate.review_count == 2


# ----------------------------------------------------------------------------- embedded JSON


def test_next_data_with_demo_app_layout() -> None:
    url = f"{HOST}/app/northwind-air/"
    result = extract_reviews(page("app_next_data.html"), url)
    assert result.extractor == "embedded_json:demo-app"
    assert [r.site_review_id for r in result.reviews] == ["A-9001", "A-9002", "A-9003"]
    first = result.reviews[0]
    assert first.title == "App chat is great"
    assert first.body == "The in-app chat answered in under a minute.\n\nVery happy."
    assert first.author == "kim_l"
    assert (first.rating_value, first.rating_min, first.rating_max) == (9.0, 0.0, 10.0)
    assert first.date_raw == "2024-05-02T14:03:00Z"
    assert result.reviews[2].rating_value == 0.0  # a zero score is a score, not a missing one
    assert result.next_pages == [f"{HOST}/app/northwind-air/2/"]


def test_generic_application_json_block_found_without_layout() -> None:
    url = "https://widget.test/brand/reviews"
    result = extract_reviews(page("app_json_block.html"), url)
    assert result.extractor == "embedded_json"
    assert [r.site_review_id for r in result.reviews] == ["W-1", "W-2"]
    w1, w2 = result.reviews
    assert (w1.title, w1.body, w1.author, w1.rating_value, w1.date_raw) == (
        "Friendly", "Friendly staff on the phone.", "Oli", 4.0, "2024-03-01"
    )
    assert (w2.author, w2.rating_value, w2.rating_max) == ("Pat", 1.0, 5.0)
    assert result.next_pages == ["https://widget.test/brand/reviews?page=2"]


# ----------------------------------------------------------------------------- HTML layouts


def test_css_layout_demo_forum() -> None:
    url = f"{HOST}/forum/northwind-air/"
    result = extract_reviews(page("forum.html"), url)
    assert result.extractor == "layout:demo-forum"
    assert [r.site_review_id for r in result.reviews] == ["F123", "F124", "F125"]
    first = result.reviews[0]
    assert first.title == "Refund took forever"
    assert first.body == (
        "I asked for a refund in March.\n\n"
        'The agents kept saying "next week".\n\n'
        "Finally got it after six calls."
    )
    assert (first.author, first.date_raw) == ("traveller42", "3 weeks ago")
    assert (first.rating_value, first.rating_min, first.rating_max) == (2.0, 1.0, 5.0)
    # only the pager link; the drafts link is not a next page
    assert result.next_pages == [f"{HOST}/forum/northwind-air/p/2/"]


def test_xpath_layout_from_extra_layout_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPUTATION_LAYOUTS", str(PAGES / "extra_layouts.yaml"))
    assert "helpdesk-table" in layout_names()
    url = "https://help.test/desk/feedback"
    result = extract_reviews(page("helpdesk.html"), url)
    assert result.extractor == "layout:helpdesk-table"
    quinn, rae = result.reviews
    assert (quinn.author, quinn.date_raw, quinn.body) == ("Quinn", "3 May 2024", "Clear answers from the helpdesk.")
    assert (quinn.rating_value, quinn.rating_max) == (4.5, 5.0)  # "4.5 out of 5"
    assert (rae.rating_value, rae.rating_max) == (2.0, 5.0)  # "2/5"
    assert result.next_pages == ["https://help.test/desk/feedback?page=2"]


def test_layout_file_errors_name_the_problem(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("layouts:\n  broken:\n    kind: html\n    container: 'css:div[[['\n    fields: {body: 'css:p'}\n")
    monkeypatch.setenv("REPUTATION_LAYOUTS", str(bad))
    with pytest.raises(LayoutError, match=r"bad\.yaml.*layouts\.broken\.container"):
        load_layouts()
    monkeypatch.setenv("REPUTATION_LAYOUTS", str(tmp_path / "missing.yaml"))
    with pytest.raises(LayoutError, match="does not exist"):
        load_layouts()


def test_unknown_layout_name_is_a_configuration_error() -> None:
    with pytest.raises(LayoutError, match="unknown layout 'nope'"):
        extract_reviews(page("forum.html"), f"{HOST}/forum/x/", layout="nope")


# ----------------------------------------------------------------------------- bad pages


def test_page_without_reviews_gives_nothing_and_no_error() -> None:
    result = extract_reviews(page("no_reviews.html"), "https://example.test/about")
    assert result.reviews == [] and result.extractor is None
    assert result.aggregate is None and result.next_pages == [] and result.errors == []


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\x01\x02\xff\xfe binary", b"<html><body><div><p>unclosed <article class='review'", "   "],
)
def test_malformed_pages_never_raise(body: bytes | str) -> None:
    result = extract_reviews(body, "https://example.test/x")
    assert result.reviews == [] and result.extractor is None


def test_undeclared_cp1252_bytes_are_decoded() -> None:
    html = (
        "<html><body><article class='review' data-review-id='E1'><h2 class='review-title'>Café</h2>"
        "<div class='stars' data-score='4'></div><div class='review-text'><p>Très bien, merci à l’équipe.</p>"
        "</div></article></body></html>"
    )
    result = extract_reviews(html.encode("cp1252"), "https://example.test/forum/")
    assert result.extractor == "layout:demo-forum"
    assert result.reviews[0].title == "Café"
    assert result.reviews[0].body == "Très bien, merci à l’équipe."
    assert result.errors == []


def test_bytes_that_contradict_the_declared_charset_are_replaced_and_reported() -> None:
    html = (
        "<html><head><meta charset='utf-8'></head><body><article class='review' data-review-id='E2'>"
        "<div class='review-text'><p>Déçu</p></div></article></body></html>"
    ).encode("latin-1")
    result = extract_reviews(html, "https://example.test/forum/")
    assert [r.site_review_id for r in result.reviews] == ["E2"]
    body = result.reviews[0].body or ""
    assert body.startswith("D") and body.endswith("u") and "\ufffd" in body
    assert any(error.extractor == "decode" for error in result.errors)


def test_explicit_encoding_argument_wins() -> None:
    html = "<html><body><article class='review' data-review-id='E3'><div class='review-text'>Grüße</div></article></body></html>"
    result = extract_reviews(html.encode("iso-8859-1"), "https://example.test/f/", encoding="iso-8859-1")
    assert result.reviews[0].body == "Grüße"


# ----------------------------------------------------------------------------- auto order, named layouts


def test_auto_prefers_structured_data_over_html_layout() -> None:
    result = extract_reviews(page("jsonld_and_forum.html"), "https://site.test/r")
    assert result.extractor == "jsonld"
    assert [r.site_review_id for r in result.reviews] == ["J1"]


def test_auto_falls_through_to_layout_but_keeps_structured_aggregate() -> None:
    result = extract_reviews(page("aggregate_and_forum.html"), f"{HOST}/forum/x/")
    assert result.extractor == "layout:demo-forum"
    assert [r.site_review_id for r in result.reviews] == ["F900"]
    assert result.aggregate == Aggregate(rating_value=2.5, rating_max=5.0, review_count=2)


def test_named_layout_uses_only_that_layout() -> None:
    forum = extract_reviews(page("jsonld_and_forum.html"), "https://site.test/r", layout="demo-forum")
    assert forum.extractor == "layout:demo-forum"
    assert [r.site_review_id for r in forum.reviews] == ["F901"]
    nothing = extract_reviews(page("shop_microdata.html"), f"{HOST}/shop/x/", layout="jsonld")
    assert nothing.reviews == [] and nothing.extractor is None
    micro = extract_reviews(page("shop_microdata.html"), f"{HOST}/shop/x/", layout="microdata")
    assert micro.extractor == "microdata" and len(micro.reviews) == 2


_HREF = st.lists(st.sampled_from([*"ab/.?#;=&%:@!~ \t\n\r\\", "/..", "/.", "//", "é", "%2e"]), max_size=16).map("".join)


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from([
        f"{HOST}/shop/acme/2/", "https://Example.COM/a/b?c=1#f", "HTTP://host:80/p;q?x", "http://h",
        "https://user:pw@h.example/x/../y", "ftp://h/x", "https://h.example/a%20b/",
    ]),
    href=st.builds("/{}".format, _HREF) | _HREF,
)
def test_links_are_made_absolute_as_urljoin_makes_them(base: str, href: str) -> None:
    """Page.absolute's shortcut for plain root-relative links gives what urljoin gives."""
    from urllib.parse import urljoin

    from crawler.extractors.page import Page

    page_ = Page(f"<html><head><base href='{base}'></head></html>", base)
    stripped = href.strip()
    if not stripped or stripped.startswith(("#", "javascript:", "mailto:")):
        assert page_.absolute(href) is None
        return
    expected = urljoin(page_.base_url, stripped)
    assert page_.absolute(href) == (expected if expected.startswith(("http://", "https://")) else None)
