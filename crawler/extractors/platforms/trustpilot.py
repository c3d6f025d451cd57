"""Trustpilot company pages.

One page carries each review up to three times: ``__NEXT_DATA__`` (pageProps.reviews), the
JSON-LD ``@graph`` and the HTML cards. They are merged by Trustpilot's review id into one item,
each field taken from whichever copy has it. Carousel cards ("relevant reviews") repeat list
reviews without a rating attribute and are never items of their own.
"""

from __future__ import annotations

import json
from typing import Any

from crawler.extractors.page import Page
from crawler.extractors.platforms.common import (
    Platform,
    aggregate,
    as_dict,
    first,
    json_text,
    number,
    star_item_defaults,
    text_of,
)
from crawler.extractors.result import ExtractionResult
from crawler.items import ReviewItem

NAME = "trustpilot"
_CARDS = "//article[@data-service-review-card-paper][.//*[@data-service-review-rating]]"


def recognise(page: Page) -> bool:
    return page.has(
        "//article[@data-service-review-card-paper] | //script[@data-business-unit-json-ld]"
        " | //meta[@property='og:site_name'][contains(@content, 'Trustpilot')]"
    )


def _from_next_data(data: Any) -> list[ReviewItem]:
    reviews = data.get("props", {}).get("pageProps", {}).get("reviews") if isinstance(data, dict) else None
    items = []
    for entry in reviews if isinstance(reviews, list) else []:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        dates, consumer, reply = as_dict(entry.get("dates")), as_dict(entry.get("consumer")), as_dict(entry.get("reply"))
        item = ReviewItem(
            site_review_id=str(entry["id"]),
            body=json_text(entry.get("text")),
            title=json_text(entry.get("title")),
            author=json_text(consumer.get("displayName")),
            date_raw=json_text(dates.get("publishedDate") or entry.get("createdAt")),
            rating_value=float(entry["rating"]) if isinstance(entry.get("rating"), int | float) else None,
            reply=json_text(reply.get("message")),
        )
        if entry.get("language"):
            item.extra["site_language"] = entry["language"]
        items.append(item)
    return items


def _from_jsonld(page: Page) -> dict[str, ReviewItem]:
    found: dict[str, ReviewItem] = {}
    for text in page.selector.xpath("//script[contains(@type, 'ld+json')]/text()").getall():
        try:
            data = json.loads(text)
        except ValueError:
            continue
        graph = data.get("@graph") if isinstance(data, dict) else None
        for node in graph if isinstance(graph, list) else []:
            if not isinstance(node, dict) or node.get("@type") != "Review":
                continue
            review_id = str(node.get("@id", "")).rstrip("/").rsplit("/", 1)[-1]
            if not review_id:
                continue
            rating, author = as_dict(node.get("reviewRating")), as_dict(node.get("author"))
            found[review_id] = ReviewItem(
                site_review_id=review_id,
                body=json_text(node.get("reviewBody")),
                title=json_text(node.get("headline")),
                author=json_text(author.get("name")),
                date_raw=json_text(node.get("datePublished")),
                rating_value=number(rating.get("ratingValue")),
            )
    return found


def _from_cards(page: Page) -> dict[str, ReviewItem]:
    found: dict[str, ReviewItem] = {}
    for card in page.selector.xpath(_CARDS):
        href = card.xpath(".//a[contains(@href, '/reviews/')]/@href").get() or ""
        review_id = href.split("/reviews/", 1)[-1].split("?", 1)[0].strip("/")
        if not review_id or review_id in found:
            continue
        rating = card.xpath(".//*[@data-service-review-rating]/@data-service-review-rating").get()
        found[review_id] = ReviewItem(
            site_review_id=review_id,
            body=text_of(first(card.xpath(".//*[@data-service-review-text-typography]"))),
            title=text_of(first(card.xpath(".//*[@data-service-review-title-typography]"))),
            author=text_of(first(card.xpath(".//*[@data-consumer-name-typography]"))),
            date_raw=card.xpath(".//time[@data-service-review-date-time-ago]/@datetime | .//time/@datetime").get(),
            rating_value=float(rating) if rating and rating.isdigit() else None,
            reply=text_of(first(card.xpath(".//*[@data-service-review-business-reply-text-typography]"))),
        )
    return found


_FIELDS = ("body", "title", "author", "date_raw", "rating_value", "reply")


def extract(page: Page) -> ExtractionResult:
    result = ExtractionResult(extractor=NAME)
    data: Any = None
    script = page.selector.xpath("//script[@id='__NEXT_DATA__']/text()").get()
    if script:
        try:
            data = json.loads(script)
        except ValueError as exc:
            result.error(NAME, "broken_json", f"__NEXT_DATA__: {exc}")
    listed = _from_next_data(data)
    ld, cards = _from_jsonld(page), _from_cards(page)
    order = [item.site_review_id for item in listed] or list(cards) or list(ld)
    by_id = {item.site_review_id: item for item in listed}
    for review_id in dict.fromkeys(order):
        item = by_id.get(review_id) or ReviewItem(site_review_id=review_id)
        for other in (cards.get(review_id or ""), ld.get(review_id or "")):
            if other is None:
                continue
            for name in _FIELDS:
                if getattr(item, name) in (None, ""):
                    setattr(item, name, getattr(other, name))
        item.url, item.extractor = page.url, NAME
        star_item_defaults(item)
        result.reviews.append(item)
    unit = data.get("props", {}).get("pageProps", {}).get("businessUnit") if isinstance(data, dict) else None
    if isinstance(unit, dict):
        result.aggregate = aggregate(unit.get("trustScore"), 5, unit.get("numberOfReviews"), 1)
    next_href = page.selector.xpath("//a[@name='pagination-button-next']/@href").get()
    url = page.absolute(next_href)
    if url:
        result.next_pages.append(url)
    return result


PLATFORM = Platform(NAME, ("trustpilot.com",), recognise, extract)
