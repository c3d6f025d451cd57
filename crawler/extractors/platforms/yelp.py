"""Yelp business pages and user profile pages (server-rendered markup).

Review cards are ``div.review[data-review-id]``; the compose widget at the top of a business
page has no id and is skipped. Stars are read inside each card only: the page's other star
images (the business aggregate, related businesses) are decoys. An owner's comment goes to
``reply``; its full text sits in a hidden toggle next to the shortened one.
"""

from __future__ import annotations

from parsel import Selector

from crawler.extractors.page import Page
from crawler.extractors.platforms.common import (
    Platform,
    aggregate,
    first,
    read_cards,
    star_item_defaults,
    stars,
    text_of,
)
from crawler.extractors.result import ExtractionResult
from crawler.items import ReviewItem

NAME = "yelp"
_CARDS = "//div[contains(concat(' ', normalize-space(@class), ' '), ' review ')][@data-review-id]"


def recognise(page: Page) -> bool:
    return page.has(
        "//div[contains(concat(' ', normalize-space(@class), ' '), ' review ')][@data-review-id]"
        "[.//*[contains(@class, 'rating-qualifier')]]"
    )


def _reply(card: Selector) -> str | None:
    box = first(card.css(".biz-owner-reply"))
    if box is None:
        return None
    full = first(box.css(".js-content-toggleable.hidden")) or first(box.css(".js-content-toggleable"))
    if full is not None:
        return text_of(full)
    return text_of(box, drop=".//*[contains(@class, 'biz-owner-reply-header')]")


def _card(card: Selector, url: str) -> ReviewItem:
    content = first(card.css(".review-content")) or card
    rating = content.xpath(
        ".//*[contains(@class, 'i-stars') or contains(@class, 'star-img')]/@title"
        " | .//meta[@itemprop='ratingValue']/@content"
    ).get()
    date = content.xpath(".//meta[@itemprop='datePublished']/@content").get() or text_of(
        first(content.css(".rating-qualifier")), drop=".//*[contains(@class, 'updated-review')]"
    )
    body = first(content.xpath(".//p[@itemprop='description'] | .//p[@lang]"))
    author = card.xpath(".//meta[@itemprop='author']/@content").get() or text_of(
        first(card.css(".user-display-name, .user-name a"))
    )
    item = ReviewItem(
        site_review_id=card.attrib.get("data-review-id"),
        body=text_of(body),
        author=author,
        date_raw=date.split("Updated review")[0].strip() if date else None,
        rating_value=stars(rating),
        reply=_reply(card),
        url=url,
        extractor=NAME,
    )
    business = text_of(first(card.css("a.biz-name")))
    if business:
        item.extra["business"] = business
    star_item_defaults(item)
    return item


def extract(page: Page) -> ExtractionResult:
    result = ExtractionResult(extractor=NAME)
    read_cards(
        result, NAME, page.selector.xpath(_CARDS), id_attr="data-review-id", read=_card, url=page.url,
        skip_blank_ids=True,
    )
    agg = first(page.selector.xpath("//*[@itemprop='aggregateRating']"))
    if agg is not None:
        result.aggregate = aggregate(
            agg.xpath(".//*[@itemprop='ratingValue']/@content").get(),
            5,
            agg.xpath(".//*[@itemprop='reviewCount']/text() | .//*[@itemprop='reviewCount']/@content").get(),
            1,
        )
    return result


PLATFORM = Platform(NAME, ("yelp.com", "yelp.co.uk", "yelp.de", "yelp.fr", "yelp.ca", "yelp.com.au"), recognise, extract)
