"""Amazon product-review pages (any marketplace).

Dates come as prose with the marketplace in front ("Reviewed in the United States on
November 16, 2018", "Rezension aus Deutschland vom 3. März 2020"); only the date part is kept.
"""

from __future__ import annotations

import re

from parsel import Selector

from crawler.extractors.page import Page
from crawler.extractors.platforms.common import (
    Platform,
    aggregate,
    count,
    first,
    read_cards,
    star_item_defaults,
    stars,
    text_of,
)
from crawler.extractors.result import ExtractionResult
from crawler.items import ReviewItem

NAME = "amazon"
_CARDS = "//div[@data-hook='review'][@id]"
# the word before the date in each marketplace's "Reviewed in X on DATE"
_DATE_AFTER = re.compile(r"\s(?:on|vom|le|el|il|em|op|den|w dniu|dnia)\s+(\S.*)$", re.IGNORECASE)
_JA_DATE = re.compile(r"(\d{4}年\d{1,2}月\d{1,2}日)")


def review_date(text: str | None) -> str | None:
    """The date part of Amazon's review-date line."""
    if not text:
        return None
    text = " ".join(text.split())
    match = _JA_DATE.search(text) or _DATE_AFTER.search(text)
    return match.group(1).strip() if match else text


def recognise(page: Page) -> bool:
    return page.has("//div[@data-hook='review'][@id]//*[@data-hook='review-star-rating' or @data-hook='review-body']")


def _card(card: Selector, url: str) -> ReviewItem:
    rating = card.xpath(
        ".//*[@data-hook='review-star-rating' or @data-hook='cmps-review-star-rating']//span[@class='a-icon-alt']/text()"
    ).get()
    item = ReviewItem(
        site_review_id=card.attrib.get("id"),
        title=text_of(first(card.xpath(".//*[@data-hook='review-title']")),
                      drop=".//*[contains(@class, 'a-icon') or contains(@class, 'a-letter-space')]"),
        body=text_of(first(card.xpath(".//*[@data-hook='review-body']"))),
        author=text_of(first(card.css(".a-profile-name"))),
        date_raw=review_date(text_of(first(card.xpath(".//*[@data-hook='review-date']")))),
        rating_value=stars(rating),
        url=url,
        extractor=NAME,
    )
    if card.xpath(".//*[@data-hook='avp-badge']"):
        item.extra["verified_purchase"] = True
    variant = text_of(first(card.xpath(".//*[@data-hook='format-strip']")))
    if variant:
        item.extra["variant"] = variant
    star_item_defaults(item)
    return item


def extract(page: Page) -> ExtractionResult:
    result = ExtractionResult(extractor=NAME)
    read_cards(result, NAME, page.selector.xpath(_CARDS), id_attr="id", read=_card, url=page.url)
    value = page.selector.xpath("//*[@data-hook='rating-out-of-text']/text()").get() or page.selector.xpath(
        "//*[@data-hook='average-star-rating']//text()"
    ).get()
    total = text_of(first(page.selector.xpath("//*[@data-hook='total-review-count']")))
    if value or total:
        result.aggregate = aggregate(stars(value), 5, count(total), 1)
    url = page.absolute(page.selector.xpath("//li[contains(@class, 'a-last')]/a/@href").get())
    if url:
        result.next_pages.append(url)
    return result


PLATFORM = Platform(
    NAME,
    ("amazon.com", "amazon.co.uk", "amazon.de", "amazon.fr", "amazon.es", "amazon.it", "amazon.ca", "amazon.in",
     "amazon.co.jp", "amazon.com.au", "amazon.nl", "amazon.com.mx", "amazon.com.br"),
    recognise,
    extract,
)
