"""ConsumerAffairs brand pages.

Reviews are microdata with the plural ``itemprop="reviews"``. Long texts are split between a
visible paragraph and a hidden ``div.js-collapsed`` ("View more"); both are one body. A
customer's later "Resolution response" is kept apart (``extra["update"]``), and the date is
the "Original review" one.
"""

from __future__ import annotations

import re

from parsel import Selector

from crawler.extractors.page import Page
from crawler.extractors.platforms.common import (
    Platform,
    aggregate,
    first,
    number,
    read_cards,
    star_item_defaults,
    text_of,
)
from crawler.extractors.result import ExtractionResult
from crawler.items import ReviewItem

NAME = "consumeraffairs"
_CARDS = "//div[@itemprop='reviews' or @itemprop='review'][@data-id]"
_DATE = re.compile(r"^[^:]*review[^:]*:\s*", re.IGNORECASE)


def recognise(page: Page) -> bool:
    return page.has("//div[contains(@class, 'rvw')][@data-id][.//*[contains(@class, 'rvw-bd')]]")


def _card(card: Selector, url: str) -> ReviewItem:
    body_box = first(card.css(".rvw-bd"))
    paragraphs: list[str] = []
    if body_box is not None:
        for para in body_box.xpath("./p | ./div[contains(@class, 'js-collapsed')]"):
            text = text_of(para)
            if text:
                paragraphs.append(text)
    date = body_box.xpath("./span[contains(@class, 'ca-txt-cpt')]").xpath("normalize-space()").get() if body_box else None
    rating = card.xpath(".//*[@itemprop='reviewRating']//meta[@itemprop='ratingValue']/@content").get() or card.css(
        ".stars-rtg::attr(data-rating)"
    ).get()
    item = ReviewItem(
        site_review_id=card.attrib.get("data-id"),
        body="\n\n".join(paragraphs) or None,
        author=text_of(first(card.css(".rvw-aut__inf-nm"))),
        date_raw=_DATE.sub("", date) if date else None,
        rating_value=number(rating),
        reply=text_of(first(card.css(".rvw-comp-resp, .rvw__comp-resp")), drop=".//*[contains(@class, 'ca-txt-cpt')]"),
        url=url,
        extractor=NAME,
    )
    update = first(card.css(".rvw-bd__csmr-resp"))
    if update is not None:
        item.extra["update"] = text_of(update, drop=".//*[contains(@class, 'ca-txt-cpt')]")
    if card.css(".rvw__ft-ttl"):
        item.extra["featured"] = True
    star_item_defaults(item)
    return item


def extract(page: Page) -> ExtractionResult:
    result = ExtractionResult(extractor=NAME)
    read_cards(result, NAME, page.selector.xpath(_CARDS), id_attr="data-id", read=_card, url=page.url)
    agg = first(page.selector.xpath("//*[@itemprop='aggregateRating']"))
    if agg is not None:
        result.aggregate = aggregate(
            agg.xpath("normalize-space(.//*[@itemprop='ratingValue'])").get()
            or agg.xpath(".//*[@itemprop='ratingValue']/@content").get(),
            agg.xpath(".//meta[@itemprop='bestRating']/@content").get() or 5,
            agg.xpath(".//*[@itemprop='reviewCount']/@content | .//*[@itemprop='reviewCount']/text()").get(),
            agg.xpath(".//meta[@itemprop='worstRating']/@content").get() or 1,
        )
    return result


PLATFORM = Platform(NAME, ("consumeraffairs.com",), recognise, extract)
