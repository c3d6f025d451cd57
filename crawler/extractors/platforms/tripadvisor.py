"""TripAdvisor hotel, restaurant and attraction review pages.

Listing pages show only the start of long reviews ("...More"); such items carry
``truncated=True`` so that a later full-text fetch, or the analyst, knows the text is partial.
"""

from __future__ import annotations

import re

from parsel import Selector

from crawler.extractors.page import Page
from crawler.extractors.platforms.common import (
    Platform,
    aggregate,
    first,
    read_cards,
    star_item_defaults,
    text_of,
)
from crawler.extractors.result import ExtractionResult
from crawler.items import ReviewItem

NAME = "tripadvisor"
_BUBBLE = re.compile(r"bubble_(\d)(\d)")
_CARDS = "//div[contains(@class, 'review-container')][@data-reviewid]"
_MORE = ".//span[contains(@class, 'taLnk')] | .//span[contains(@class, 'ulBlueLinks')]"


def recognise(page: Page) -> bool:
    return page.has("//div[contains(@class, 'review-container')][@data-reviewid]//*[contains(@class, 'ui_bubble_rating')]")


def _card(card: Selector, url: str) -> ReviewItem:
    bubble = _BUBBLE.search(card.css(".ui_bubble_rating::attr(class)").get() or "")
    entry = first(card.css("p.partial_entry")) or first(card.css(".entry p"))
    date = card.css(".ratingDate::attr(title)").get() or text_of(first(card.css(".ratingDate")))
    if date and date.lower().startswith("reviewed "):
        date = date[len("reviewed "):]
    item = ReviewItem(
        site_review_id=card.attrib.get("data-reviewid"),
        title=text_of(first(card.css(".noQuotes"))),
        body=text_of(entry, drop=_MORE),
        author=text_of(first(card.xpath(".//div[contains(@class, 'info_text')]/div[1]"))),
        date_raw=date,
        rating_value=float(f"{bubble.group(1)}.{bubble.group(2)}") if bubble else None,
        truncated=bool(entry is not None and entry.xpath(_MORE)),
        reply=text_of(first(card.css(".mgrRspnInline .partial_entry, .mgrRspnInline p"))),
        url=url,
        extractor=NAME,
    )
    stay = text_of(first(card.css(".prw_reviews_stay_date_hsx")), drop=".//*[contains(@class, 'stay_date_label')]")
    if stay:
        item.extra["experience_date"] = stay
    star_item_defaults(item)
    return item


def extract(page: Page) -> ExtractionResult:
    result = ExtractionResult(extractor=NAME)
    read_cards(result, NAME, page.selector.xpath(_CARDS), id_attr="data-reviewid", read=_card, url=page.url)
    for text in page.selector.xpath("//script[contains(@type, 'ld+json')]/text()").getall():
        match = re.search(r'"ratingValue"\s*:\s*"?([\d.]+)"?.*?"reviewCount"\s*:\s*"?([\d,]+)"?', text, re.S)
        if match:
            result.aggregate = aggregate(match.group(1), 5, match.group(2), 1)
            break
    url = page.absolute(page.selector.xpath("//a[contains(@class, 'nav') and contains(@class, 'next')]/@href").get())
    if url:
        result.next_pages.append(url)
    return result


PLATFORM = Platform(NAME, ("tripadvisor.com", "tripadvisor.co.uk", "tripadvisor.de", "tripadvisor.fr",
                           "tripadvisor.it", "tripadvisor.es", "tripadvisor.ca", "tripadvisor.com.au"),
                    recognise, extract)
