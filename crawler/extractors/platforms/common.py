"""Helpers shared by the platform extractors: element text, stars, numbers, the registry type."""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from parsel import Selector

from crawler.extractors.page import Page
from crawler.extractors.result import Aggregate, ExtractionResult
from crawler.extractors.selectors import element_text
from crawler.fields import parse_rating_text
from crawler.items import ReviewItem

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_DIGITS = re.compile(r"[\d.,\s\u00a0\u202f]+")
_ESCAPED_TAG = re.compile(r"&lt;\s*/?\s*[a-zA-Z][^&]{0,40}?&gt;")


@dataclass(frozen=True)
class Platform:
    """A built-in extractor for one review site.

    ``hosts`` recognise the site by URL (any host ending in one of them); ``recognise`` by
    markup, for saved copies and mirrors served from elsewhere.
    """

    name: str
    hosts: tuple[str, ...]
    recognise: Callable[[Page], bool]
    extract: Callable[[Page], ExtractionResult]

    def owns_host(self, host: str) -> bool:
        return any(host == h or host.endswith("." + h) for h in self.hosts)


def text_of(node: Selector | None, *, drop: str | None = None) -> str | None:
    """Readable text of an element (paragraphs kept), without the parts matching ``drop`` (XPath)."""
    if node is None:
        return None
    element = node.root
    if not isinstance(element, etree._Element):
        value = str(element).strip()
        return value or None
    if drop:
        element = copy.deepcopy(element)
        for unwanted in element.xpath(drop):
            parent = unwanted.getparent()
            if parent is not None:
                unwanted.drop_tree()  # keeps the tail text
    value = element_text(element).strip()
    return value or None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (pages change shape without notice)."""
    return value if isinstance(value, dict) else {}


def first(nodes: Iterable[Selector]) -> Selector | None:
    return next(iter(nodes), None)


def number(text: Any) -> float | None:
    """The first number in a text ("4,5" is 4.5); None when there is none."""
    if text is None:
        return None
    match = _NUMBER.search(str(text))
    return float(match.group(0).replace(",", ".")) if match else None


def count(text: Any) -> int | None:
    """A count written with thousands separators ("20,943", "16.057", "2 735 844")."""
    if text is None:
        return None
    match = _DIGITS.search(str(text))
    digits = re.sub(r"\D", "", match.group(0)) if match else ""
    return int(digits) if digits else None


def stars(text: Any) -> float | None:
    """A star value from "4.0 out of 5 stars", "Rated 4 stars out of five", "3.0 star rating"."""
    value, _ = parse_rating_text(text)
    return value if value is not None and 0 <= value <= 5 else None


def json_text(value: Any) -> str | None:
    """A JSON string value as text; HTML escaped twice (``&lt;br&gt;``) is unescaped once."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value)
    if _ESCAPED_TAG.search(text):
        text = html.unescape(text)
    text = text.strip()
    return text or None


def aggregate(value: Any, best: Any = 5, reviews: Any = None, worst: Any = None) -> Aggregate | None:
    rating = number(value)
    total = count(reviews) if not isinstance(reviews, int) else reviews
    if rating is None and total is None:
        return None
    return Aggregate(rating_value=rating, rating_max=number(best), review_count=total, rating_min=number(worst))


def star_item_defaults(item: Any) -> None:
    """Every built-in platform rates 1 to 5 stars."""
    if item.rating_value is not None:
        item.rating_min = 1.0
        item.rating_max = 5.0


def read_cards(
    result: ExtractionResult,
    name: str,
    cards: Iterable[Selector],
    *,
    id_attr: str,
    read: Callable[[Selector, str], ReviewItem],
    url: str,
    skip_blank_ids: bool = False,
) -> None:
    """Read each review card once (by its ``id_attr``) into ``result``, errors under ``name``.

    A card that raises is counted as a ``bad_card`` error, so one odd card does not lose the
    rest; a card with neither text, title nor rating is skipped (widgets, placeholders).
    ``skip_blank_ids`` also skips cards whose id is empty once stripped.
    """
    seen: set[str] = set()
    for card in cards:
        review_id = card.attrib.get(id_attr, "")
        if skip_blank_ids:
            review_id = review_id.strip()
            if not review_id:
                continue
        if review_id in seen:
            continue
        seen.add(review_id)
        try:
            item = read(card, url)
        except Exception as exc:
            result.error(name, "bad_card", exc)
            continue
        if item.body or item.title or item.rating_value is not None:
            result.reviews.append(item)
