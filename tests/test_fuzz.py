"""Property tests: generated input never raises anything but the documented validation errors.

The parsers here read text written by strangers (review sites, registry files, layout files),
so for any input they either give a value or fail with the one error type their callers map to
a clear message (RegistryError, LayoutError). Examples are few per test (see SETTINGS) so the
whole file runs in well under a minute; hypothesis replays any failure it found first.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.extractors import ExtractionError, extract_reviews
from crawler.extractors.embedded_json import extract_generic_json, extract_json_layout
from crawler.extractors.layout_config import ENV_VAR, LayoutError, load_layouts
from crawler.extractors.page import Page
from crawler.extractors.structured import extract_structured
from crawler.fields import DATE_PRECISIONS, normalize_rating, parse_date, parse_rating_text
from reputation.registry.loader import parse_registry
from storage.errors import RegistryError

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CRAWLED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
URL = "http://127.0.0.1:8000/reviews?page=2"

# ------------------------------------------------------------------------------ dates and ratings

_DATE_WORDS = st.sampled_from(
    ["ago", "yesterday", "today", "Jan", "June", "März", "il y a", "hace", "week", "months", "am", "pm",
     "T", "Z", "+05:30", "/", "-", ".", ",", " ", "2018", "1999", "0000", "9999", "31", "29", "02", "3"]
)
date_like = st.lists(st.one_of(_DATE_WORDS, st.integers(-99999, 99999).map(str)), max_size=8).map("".join)


@SETTINGS
@given(raw=st.one_of(st.none(), st.text(max_size=80), date_like))
def test_parse_date_gives_a_date_or_missing(raw: str | None) -> None:
    day, precision = parse_date(raw, CRAWLED_AT)
    assert precision in DATE_PRECISIONS
    if day is None:
        assert precision == "missing"
    else:
        assert "1990-01-01" <= day <= "2025-06-02"  # never before 1990, never after the crawl (+1 day)


numbers = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),  # larger than any float
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.from_regex(r"\s*[-+]?\d{1,400}([.,]\d{1,5})?\s*(/|out of|of|von|sur)?\s*\d{0,400}", fullmatch=True),
)


@SETTINGS
@given(value=numbers, worst=numbers, best=numbers)
def test_rating_normalisation_gives_a_fraction_or_none(value: object, worst: object, best: object) -> None:
    number, scale = parse_rating_text(value)
    for part in (number, scale):
        assert part is None or math.isfinite(part)
    result = normalize_rating(value, worst, best)
    assert result is None or 0.0 <= result <= 1.0


# ------------------------------------------------------------------------------ registry YAML

_scalar_text = st.one_of(
    st.sampled_from(
        ["~", "null", "yes", "no", "on", "off", "true", "0x1F", "0o17", "1_000", ".inf", "-.nan", "1e400",
         "2024-02-30", "2024-13-01", "2023-01-01", "2023-01-01T10:00:00Z", "12:30:45", "!!binary aGk=",
         "!!python/object:os.system", "!!set {a, b}", "!!omap [a: 1]", "!!timestamp 2001-12-14", "<<",
         "'quoted'", '"\\u0000"', "|\n  block", "https://example.com/r", "acme", "Acme Corp", ""]
    ),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12).map(json.dumps),
    st.integers(-(10**30), 10**30).map(str),
)
_FIELDS = ["vendors", "brands", "engagements", "sources", "id", "name", "vendor", "brand", "start", "end",
           "url", "layout", "website", "aliases", "evidence", "channel", "scope", "share", "<<", "? x"]


def _flow(depth: int) -> st.SearchStrategy[str]:
    """Flow-style YAML text of up to ``depth`` levels of lists and mappings."""
    if depth == 0:
        return _scalar_text
    inner = _flow(depth - 1)
    return st.one_of(
        _scalar_text,
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(st.sampled_from(_FIELDS), inner), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
    )


def _registry_document(sections: list[tuple[str, list[list[tuple[str, str]]]]]) -> str:
    lines = ["version: 1"]
    for name, entries in sections:
        lines.append(f"{name}:")
        for entry in entries:
            for index, (key, value) in enumerate(entry):
                lines.append(f"  {'-' if index == 0 else ' '} {key}: {value}")
    return "\n".join(lines) + "\n"


registry_documents = st.one_of(
    st.text(max_size=200),
    _flow(4),
    st.builds(
        _registry_document,
        st.lists(
            st.tuples(
                st.sampled_from(["vendors", "brands", "engagements", "sources", "extra"]),
                st.lists(st.lists(st.tuples(st.sampled_from(_FIELDS), _flow(2)), min_size=1, max_size=5),
                         max_size=3),
            ),
            max_size=4,
        ),
    ),
    st.integers(1, 400).map(lambda depth: "vendors: " + "[" * depth + "]" * depth),
    st.integers(1, 400).map(lambda depth: "vendors:\n" + "".join("  " * i + "- \n" for i in range(depth))),
    st.sampled_from(
        [
            "a: &x [1, 2]\nb: *x\n",
            "vendors: &v\n  - id: a\nbrands: *v\n",
            "a: &a [*a]\n",
            "? [a, b]\n: c\n",
            "vendors:\n  - &e {id: x}\n  - <<: *e\n",
            "--- 1\n--- 2\n",
            "%YAML 1.1\n---\nvendors: []\n",
            "vendors: !!python/name:os.system\n",
            "\ufeffvendors: []\n",
            "vendors: [\x00]\n",
        ]
    ),
)


@SETTINGS
@given(text=registry_documents)
def test_registry_parser_raises_only_registry_errors(text: str) -> None:
    try:
        parse_registry(text, "fuzz.yaml", layouts=["auto", "jsonld"])
    except RegistryError as exc:
        message = str(exc)
        assert message.startswith(("fuzz.yaml:", "1 mistake in fuzz.yaml:")) or " mistakes in fuzz.yaml:" in message


# ------------------------------------------------------------------------------ layout files

_SELECTORS = st.one_of(
    st.sampled_from(
        ["css:article.review", "css:.x::attr(href)", "xpath://div[@id]", "xpath://a/@href", "css:::text",
         "css:", "xpath:", "xpath://[", "css:a[", "css:a::nope", "foo:bar", ".review", "xpath:count(//a)"]
    ),
    st.text(max_size=20),
)
_LAYOUT_VALUES = st.one_of(
    _SELECTORS, st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(),
    st.lists(_SELECTORS, max_size=2),
    st.dictionaries(st.sampled_from(["min", "max", "title", "body", "rating"]),
                    st.one_of(_SELECTORS, st.integers(), st.floats(allow_nan=True), st.none()), max_size=3),
)
_LAYOUT_KEYS = ["kind", "match", "container", "fields", "rating_scale", "next_page", "script", "reviews_path",
                "next_page_path", "other"]
_layout = st.one_of(
    _LAYOUT_VALUES,
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["html", "json", "xml", 3])},
        optional={key: _LAYOUT_VALUES for key in _LAYOUT_KEYS if key != "kind"},
    ),
)
layout_documents = st.one_of(
    st.builds(
        lambda layouts, pagination: yaml.safe_dump({"layouts": layouts, "pagination": pagination}),
        st.one_of(st.dictionaries(st.text(max_size=8), _layout, max_size=3), _LAYOUT_VALUES),
        st.one_of(st.lists(_SELECTORS, max_size=3), _LAYOUT_VALUES),
    ),
    st.text(max_size=100),
    _flow(3),
    st.integers(1, 2000).map(lambda depth: "layouts: " + "[" * depth + "]" * depth),
    st.sampled_from(["0000-00-00", "layouts: 2024-02-30", "a: &a [*a]\n", "layouts: !!binary '%%'\n", "\x1f"]),
)
_files = count()


@contextmanager
def _layout_file(tmp: Path, text: str) -> Iterator[None]:
    """``text`` as an extra layout file named by REPUTATION_LAYOUTS, for one call."""
    path = tmp / f"layouts-{next(_files)}.yaml"  # a new name each time: the loader caches by file
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = before


@SETTINGS
@given(text=layout_documents)
def test_layout_loader_raises_only_layout_errors(text: str, tmp_path: Path) -> None:
    with _layout_file(tmp_path, text):
        try:
            layouts = load_layouts()
        except LayoutError:
            return
    assert "demo-forum" in layouts.layouts  # the built-in layouts stay


# ------------------------------------------------------------------------------ structured data

_JSON_KEYS = ["@context", "@type", "@id", "@graph", "review", "reviews", "reviewRating", "ratingValue",
              "bestRating", "worstRating", "author", "name", "reviewBody", "datePublished", "itemReviewed",
              "aggregateRating", "text", "rating", "body", "date", "id", "title", "nextPage", "next", "url"]
_JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(10**300, 10**400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["Review", "Product", "Rating", "Person", "https://schema.org", "http://schema.org/Review",
                     "5", "4,5", "4/5", "1e400", "", "2024-01-01", "3 days ago", "/page/3", "javascript:x",
                     "http://[::1", "//evil.example/x"]),
    st.text(max_size=15),
)
json_values = st.recursive(
    _JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(_JSON_KEYS), st.text(max_size=5)), children, max_size=5),
    ),
    max_leaves=30,
)


def _json_text(value: object) -> str:
    return json.dumps(value).replace("</", "<\\/")


def _microdata(value: object, depth: int = 0) -> str:
    """Microdata markup following the shape of a JSON value."""
    if isinstance(value, dict):
        parts = []
        for key, inner in value.items():
            if isinstance(inner, dict | list) and depth < 6:
                parts.append(f'<div itemprop="{key}" itemscope itemtype="https://schema.org/Thing">'
                             f"{_microdata(inner, depth + 1)}</div>")
            else:
                parts.append(f'<meta itemprop="{key}" content="{_attr(inner)}"><span itemprop="{key}">'
                             f"{_attr(inner)}</span>")
        kind = _attr(value.get("@type", "Review"))
        return f'<div itemscope itemtype="https://schema.org/{kind}">' + "".join(parts) + "</div>"
    if isinstance(value, list):
        return "".join(_microdata(inner, depth + 1) for inner in value[:4])
    return f"<p>{_attr(value)}</p>"


def _attr(value: object) -> str:
    return str(value).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _page(value: object, raw: str, shape: int) -> str:
    blocks = [
        f'<script type="application/ld+json">{_json_text(value)}</script>',
        f'<script type="application/ld+json">{raw}</script>',
        f'<script id="__NEXT_DATA__" type="application/json">{_json_text(value)}</script>',
        f"<script>window.__STATE__ = {_json_text(value)};</script>",
        f"<script>window.__RAW__ = {raw};</script><!-- {raw.replace('--', '- -')} -->",
        f"<!-- {_json_text(value).replace('--', '- -')} -->",
        _microdata(value),
        f'<div vocab="https://schema.org/" typeof="Review"><span property="reviewBody">{_attr(raw)}</span></div>',
    ]
    chosen = [block for index, block in enumerate(blocks) if shape & (1 << index)] or blocks
    return "<!doctype html><html><head><title>t</title></head><body>" + "".join(chosen) + "</body></html>"


def _deep(depth: int, as_list: bool) -> str:
    return "[" * depth + "]" * depth if as_list else '{"review":' * depth + "1" + "}" * depth


# Nesting past the JSON parser's recursion limit must be a broken block, not a crash.
deep_json = st.builds(_deep, st.integers(1, 50_000), st.booleans())
pages = st.builds(_page, json_values, st.one_of(st.text(max_size=40), deep_json), st.integers(0, 255))


def _unexpected(errors: list[ExtractionError]) -> list[ExtractionError]:
    """Exceptions extract_reviews caught as a last guard: each one is a bug in an extractor."""
    return [e for e in errors if e.reason == "unexpected"]


@SETTINGS
@given(html=pages)
def test_structured_and_embedded_json_extractors_never_raise(html: str) -> None:
    page = Page(html, URL)
    for syntax in ("jsonld", "microdata", "rdfa"):
        extract_structured(page, syntax)
    extract_generic_json(page)
    # extract_reviews guards against any exception, recording it as "unexpected": there should be none
    result = extract_reviews(html, URL)
    assert not _unexpected(result.errors), result.errors


_review_lists = st.lists(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "id": json_values, "headline": json_values, "content": json_values, "createdAt": json_values,
                "score": st.one_of(json_values, st.fixed_dictionaries({"value": json_values, "max": json_values})),
                "author": st.one_of(json_values, st.fixed_dictionaries({"displayName": json_values})),
            },
        ),
    ),
    max_size=4,
)


@SETTINGS
@given(reviews=st.one_of(json_values, _review_lists), next_url=json_values, wrap=st.booleans())
def test_json_layouts_never_raise_on_any_json(reviews: object, next_url: object, wrap: bool) -> None:
    """The built-in demo-app layout (kind json, script#__NEXT_DATA__) on any JSON at its paths."""
    layout = load_layouts().get("demo-app")
    data = {"props": {"pageProps": {"reviews": reviews, "pagination": {"nextUrl": next_url}}}} if wrap else reviews
    html = f'<html><body><script id="__NEXT_DATA__" type="application/json">{_json_text(data)}</script></body></html>'
    extract_json_layout(Page(html, URL), layout)
    result = extract_reviews(html, URL, "demo-app")
    assert not _unexpected(result.errors), result.errors
