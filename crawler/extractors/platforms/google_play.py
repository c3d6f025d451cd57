"""Google Play app pages.

Older pages render reviews as HTML (``div.single-review``); the six "featured" previews above
the list repeat list reviews and are skipped. Newer pages carry reviews only in the data that
``AF_initDataCallback({... data: ...})`` hands to scripts; that is JavaScript, so the JSON value
is cut out with ``json.JSONDecoder.raw_decode`` and read by position.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from parsel import Selector

from crawler.extractors.page import Page
from crawler.extractors.platforms.common import (
    Platform,
    aggregate,
    first,
    json_text,
    number,
    star_item_defaults,
    stars,
    text_of,
)
from crawler.extractors.result import ExtractionResult
from crawler.items import ReviewItem

NAME = "google_play"
_CALLBACK = re.compile(r"AF_initDataCallback\s*\(\s*\{")
_DATA = re.compile(r"data\s*:\s*(?:function\s*\(\s*\)\s*\{\s*return\s+)?")
_WIDTH = re.compile(r"width:\s*(\d+(?:\.\d+)?)%")
_DECODER = json.JSONDecoder()


def recognise(page: Page) -> bool:
    return page.has("//div[contains(@class, 'single-review')]//*[@data-reviewid]") or (
        "AF_initDataCallback" in page.text and "play.google" in page.text
    )


# --------------------------------------------------------------------------- HTML (2015-2018)


def _html_card(card: Selector, url: str) -> ReviewItem:
    header = first(card.css(".review-header"))
    width = card.css(".current-rating::attr(style)").re_first(_WIDTH)
    rating = float(width) / 20 if width else stars(card.css(".tiny-star::attr(aria-label)").get())
    body = first(card.css(".review-body"))
    item = ReviewItem(
        site_review_id=header.attrib.get("data-reviewid") if header is not None else None,
        title=text_of(first(card.css(".review-title"))),
        body=text_of(body, drop=".//*[contains(@class, 'review-title') or contains(@class, 'review-link')]"),
        author=text_of(first(card.css(".author-name"))),
        date_raw=text_of(first(card.css(".review-date"))),
        rating_value=round(rating) if rating is not None else None,
        reply=text_of(first(card.css(".developer-reply")), drop=".//*[contains(@class, 'review-info')]"),
        url=url,
        extractor=NAME,
    )
    star_item_defaults(item)
    return item


def _from_html(page: Page, result: ExtractionResult) -> None:
    cards = page.selector.xpath(
        "//div[contains(@class, 'single-review')][not(ancestor::*[contains(@class, 'preview-reviews')])]"
    )
    seen: set[str] = set()
    for card in cards:
        try:
            item = _html_card(card, page.url)
        except Exception as exc:
            result.error(NAME, "bad_card", exc)
            continue
        key = item.site_review_id or f"{item.author}|{item.date_raw}|{item.body}"
        if key in seen:
            continue
        seen.add(key)
        if item.body or item.title or item.rating_value is not None:
            result.reviews.append(item)


# --------------------------------------------------------------------------- AF_initDataCallback


def callback_data(text: str) -> list[Any]:
    """The ``data`` value of every AF_initDataCallback call on the page that parses."""
    values = []
    for match in _CALLBACK.finditer(text):
        data = _DATA.search(text, match.end(), match.end() + 400)
        if data is None:
            continue
        try:
            value, _ = _DECODER.raw_decode(text, data.end())
        except ValueError:
            continue
        values.append(value)
    return values


def _at(value: Any, *path: int) -> Any:
    for index in path:
        if not isinstance(value, list) or not -len(value) <= index < len(value):
            return None
        value = value[index]
    return value


def _is_review_row(row: Any) -> bool:
    return (
        isinstance(row, list)
        and len(row) > 5
        and isinstance(row[0], str)
        and row[0].startswith("gp:")
        and isinstance(row[2], int)
        and 1 <= row[2] <= 5
    )


def _epoch(value: Any) -> str | None:
    seconds = _at(value, 0) if isinstance(value, list) else value
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _from_callbacks(page: Page, result: ExtractionResult) -> None:
    seen: set[str] = set()
    for data in callback_data(page.text):
        rows = _at(data, 0)
        if not isinstance(rows, list) or not rows or not all(map(_is_review_row, rows)):
            continue
        for row in rows:
            if row[0] in seen:
                continue
            seen.add(row[0])
            reply = _at(row, 7)
            item = ReviewItem(
                site_review_id=row[0],
                author=json_text(_at(row, 1, 0)),
                rating_value=float(row[2]),
                body=json_text(_at(row, 4)),
                date_raw=_epoch(_at(row, 5)),
                reply=json_text(_at(reply, 1)) if isinstance(reply, list) else None,
                url=page.url,
                extractor=NAME,
            )
            version = _at(row, 10)
            if isinstance(version, str):
                item.extra["app_version"] = version
            star_item_defaults(item)
            result.reviews.append(item)


def extract(page: Page) -> ExtractionResult:
    result = ExtractionResult(extractor=NAME)
    _from_html(page, result)
    if not result.reviews:
        _from_callbacks(page, result)
    agg = first(page.selector.xpath("//*[@itemprop='aggregateRating']"))
    if agg is not None:
        result.aggregate = aggregate(
            number(agg.xpath(".//*[@itemprop='ratingValue']/@content").get()),
            5,
            agg.xpath(".//*[@itemprop='ratingCount' or @itemprop='reviewCount']/@content").get(),
            1,
        )
    return result


PLATFORM = Platform(NAME, ("play.google.com",), recognise, extract)
