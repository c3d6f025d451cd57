"""Reviews inside JSON that a page embeds for its scripts (__NEXT_DATA__, application/json blocks).

A json layout says exactly where the reviews are; without one, the JSON is searched for lists
of objects that look like reviews (text plus a rating or a date).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

from crawler.extractors.layout_config import Layout
from crawler.extractors.page import Page
from crawler.extractors.result import ExtractionError, ExtractionResult
from crawler.fields import parse_rating_text
from crawler.items import ReviewItem

GENERIC_NAME = "embedded_json"
_GENERIC_SCRIPTS = "//script[@id='__NEXT_DATA__' or contains(@type, 'application/json')]"
_MAX_DEPTH = 25

_BODY_KEYS = ("reviewBody", "body", "content", "text", "comment", "reviewText", "review_text", "message")
_TITLE_KEYS = ("headline", "title", "subject", "summary")
_RATING_KEYS = ("rating", "score", "stars", "ratingValue", "rating_value")
_DATE_KEYS = ("datePublished", "createdAt", "created_at", "publishedAt", "published_at", "date",
              "submittedAt", "postedAt", "time")
_ID_KEYS = ("reviewId", "review_id", "id", "uuid", "identifier")
_AUTHOR_KEYS = ("author", "user", "reviewer", "userName", "username", "authorName")
_NAME_KEYS = ("displayName", "name", "username", "userName", "nickname")
_NEXT_KEYS = ("nextUrl", "nextPageUrl", "next_page_url", "nextPage", "next")


def get_path(data: Any, path: str) -> Any:
    """Value at a dotted path ("props.pageProps.reviews", "items.0.text"), or None."""
    value = data
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def _as_text(value: Any) -> str | None:
    """A JSON value as text; HTML escaped twice (``&lt;br&gt;``) is unescaped once so that the
    normaliser cleans it like any other markup."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value)
    if "&lt;" in text or "&amp;" in text:
        text = html.unescape(text)
    text = text.strip()
    return text or None


def _load_json(text: str | None, where: str, errors: list[ExtractionError]) -> Any:
    if not text or not text.strip():
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the parser's limit
        errors.append(ExtractionError(where, "broken_json", str(exc) or type(exc).__name__))
        return None


def _item(url: str, extractor: str) -> ReviewItem:
    return ReviewItem(url=url, extractor=extractor)


def _set_rating(item: ReviewItem, raw: Any, raw_max: Any = None, raw_min: Any = None) -> None:
    value, stated_best = parse_rating_text(raw)
    item.rating_value = value
    best, _ = parse_rating_text(raw_max)
    worst, _ = parse_rating_text(raw_min)
    item.rating_max = best if best is not None else stated_best
    item.rating_min = worst


def extract_json_layout(page: Page, layout: Layout) -> ExtractionResult:
    """Reviews at the layout's reviews_path, fields by dotted paths, next page by next_page_path."""
    extractor = f"embedded_json:{layout.name}"
    result = ExtractionResult(extractor=extractor)
    if layout.script is None or layout.reviews_path is None:  # the loader requires both
        return result
    for text in layout.script.texts(page.root):
        data = _load_json(text, extractor, result.errors)
        if data is None:
            continue
        entries = get_path(data, layout.reviews_path)
        if isinstance(entries, dict):
            entries = [entries]
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            item = _item(page.url, extractor)
            fields = layout.fields
            value = {key: get_path(entry, path) for key, path in fields.items()}
            item.site_review_id = _as_text(value.get("review_id"))
            item.title = _as_text(value.get("title"))
            item.body = _as_text(value.get("body"))
            item.author = _as_text(value.get("author"))
            item.date_raw = _as_text(value.get("date"))
            _set_rating(item, value.get("rating"), value.get("rating_max"), value.get("rating_min"))
            if item.rating_value is not None:
                item.rating_max = item.rating_max if item.rating_max is not None else layout.rating_max
                item.rating_min = item.rating_min if item.rating_min is not None else layout.rating_min
            if item.body or item.title or item.rating_value is not None:
                result.reviews.append(item)
        if layout.next_page_path:
            url = page.absolute(get_path(data, layout.next_page_path))
            if url:
                result.next_pages.append(url)
    return result


# ----------------------------------------------------------------------------- generic search


def _first_key(entry: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if entry.get(key) not in (None, ""):
            return entry[key]
    return None


def _looks_like_review(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    body = _first_key(entry, _BODY_KEYS)
    if not isinstance(body, str) or len(body.strip()) < 2:
        return False
    return _first_key(entry, _RATING_KEYS) is not None or _first_key(entry, _DATE_KEYS) is not None


def _review_lists(value: Any, depth: int = 0) -> Iterator[list[Any]]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, list):
        candidates = [v for v in value if isinstance(v, dict)]
        if candidates and sum(map(_looks_like_review, candidates)) * 2 > len(candidates):
            yield value
            return
        for item in value:
            yield from _review_lists(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _review_lists(item, depth + 1)


def _author_name(value: Any) -> str | None:
    if isinstance(value, dict):
        return _as_text(_first_key(value, _NAME_KEYS))
    return _as_text(value)


def _generic_item(entry: dict[str, Any], url: str) -> ReviewItem:
    item = _item(url, GENERIC_NAME)
    item.body = _as_text(_first_key(entry, _BODY_KEYS))
    item.title = _as_text(_first_key(entry, _TITLE_KEYS))
    item.site_review_id = _as_text(_first_key(entry, _ID_KEYS))
    item.author = _author_name(_first_key(entry, _AUTHOR_KEYS))
    item.date_raw = _as_text(_first_key(entry, _DATE_KEYS))
    rating = _first_key(entry, _RATING_KEYS)
    if isinstance(rating, dict):
        _set_rating(
            item,
            _first_key(rating, ("value", "ratingValue", "score", "stars")),
            _first_key(rating, ("max", "best", "bestRating", "outOf", "scale")),
            _first_key(rating, ("min", "worst", "worstRating")),
        )
    else:
        _set_rating(item, rating, _first_key(entry, ("maxRating", "bestRating", "ratingMax", "outOf")))
    return item


def _next_links(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _NEXT_KEYS and isinstance(item, str):
                yield item
            elif isinstance(item, dict | list):
                yield from _next_links(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _next_links(item, depth + 1)


_ASSIGNMENT = re.compile(r"(?:^|[;\s])[\w$.\[\]'\"]+\s*=\s*(?=[{\[])")
_DECODER = json.JSONDecoder()
_MAX_ASSIGNMENTS = 50


def _strip_comment(text: str) -> str:
    """JSON that a page wraps in an HTML comment (``<!-- {...} -->``) to hide it from the browser."""
    text = text.strip()
    if text.startswith("<!--") and text.endswith("-->"):
        text = text[4:-3].strip()
    return text


def _blocks(page: Page, errors: list[ExtractionError]) -> Iterator[Any]:
    """Every JSON value the page embeds: JSON scripts, JS assignments, JSON-only HTML comments."""
    for script in page.selector.xpath(_GENERIC_SCRIPTS):
        data = _load_json(_strip_comment(script.xpath("string()").get() or ""), GENERIC_NAME, errors)
        if data is not None:
            yield data
    other = "//script[not(@id='__NEXT_DATA__') and not(contains(@type, 'json'))]/text()"
    for text in page.selector.xpath(other).getall():
        for found, match in enumerate(_ASSIGNMENT.finditer(text)):
            if found >= _MAX_ASSIGNMENTS:
                break
            try:
                value, _ = _DECODER.raw_decode(text, match.end())
            except (ValueError, RecursionError):
                continue
            yield value
    for comment in page.selector.xpath("//comment()"):
        text = _strip_comment(comment.get() or "")
        if text.startswith(("{", "[")):
            try:
                yield json.loads(text)
            except (ValueError, RecursionError):
                continue


def extract_generic_json(page: Page) -> ExtractionResult:
    """Search embedded JSON (script blocks, JS assignments, comments) for review-like objects."""
    result = ExtractionResult(extractor=GENERIC_NAME)
    seen: set[int] = set()
    for data in _blocks(page, result.errors):
        before = len(seen)
        for entries in _review_lists(data):
            for entry in entries:
                if _looks_like_review(entry) and id(entry) not in seen:
                    seen.add(id(entry))
                    result.reviews.append(_generic_item(entry, page.url))
        if len(seen) > before:
            for href in _next_links(data):
                url = page.absolute(href)
                if url:
                    result.next_pages.append(url)
    return result
