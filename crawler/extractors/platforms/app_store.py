"""Apple App Store customer reviews from the iTunes RSS feed in JSON.

``feed.entry`` holds the reviews (some feeds put the app itself first: it has no rating and
is skipped). The feed's ``next`` link points at the XML flavour of the feed, so the next JSON
page is this page's URL with the page number from ``next``; when ``next`` names the page
itself, this is the last page.
"""

from __future__ import annotations

import re
from typing import Any

from crawler.extractors.page import Page
from crawler.extractors.platforms.common import Platform, as_dict, json_text, star_item_defaults, stars
from crawler.extractors.result import ExtractionResult
from crawler.items import ReviewItem

NAME = "app_store"
_PAGE = re.compile(r"page=(\d+)")


def _label(value: Any) -> Any:
    return value.get("label") if isinstance(value, dict) else None


def _feed(page: Page) -> dict[str, Any] | None:
    data = page.json
    feed = data.get("feed") if isinstance(data, dict) else None
    return feed if isinstance(feed, dict) else None


def recognise(page: Page) -> bool:
    feed = _feed(page)
    return feed is not None and ("entry" in feed or "customerreviews" in str(_label(feed.get("id"))))


def _links(feed: dict[str, Any]) -> dict[str, str]:
    links = feed.get("link")
    found: dict[str, str] = {}
    for link in links if isinstance(links, list) else [links]:
        attributes = link.get("attributes") if isinstance(link, dict) else None
        if isinstance(attributes, dict) and isinstance(attributes.get("href"), str):
            found.setdefault(str(attributes.get("rel")), attributes["href"])
    return found


def next_json_page(page_url: str, feed: dict[str, Any]) -> str | None:
    """The JSON URL of the next page, or None on the last page."""
    links = _links(feed)
    self_url = _label(feed.get("id")) or links.get("self") or ""
    next_match = _PAGE.search(links.get("next", ""))
    here = _PAGE.search(page_url) or _PAGE.search(str(self_url))
    if next_match is None or here is None:
        return None
    if next_match.group(1) == here.group(1):
        return None
    base = page_url if _PAGE.search(page_url) else str(self_url)
    return _PAGE.sub(f"page={next_match.group(1)}", base, count=1)


def extract(page: Page) -> ExtractionResult:
    result = ExtractionResult(extractor=NAME)
    feed = _feed(page)
    if feed is None:
        return result
    entries = feed.get("entry")
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, dict) or "im:rating" not in entry:
            continue  # the app's own entry
        author = as_dict(entry.get("author"))
        item = ReviewItem(
            site_review_id=json_text(_label(entry.get("id"))),
            title=json_text(_label(entry.get("title"))),
            body=json_text(_label(entry.get("content"))),
            author=json_text(_label(author.get("name"))),
            date_raw=json_text(_label(entry.get("updated"))),
            rating_value=stars(_label(entry.get("im:rating"))),
            url=page.url,
            extractor=NAME,
        )
        version = _label(entry.get("im:version"))
        if version:
            item.extra["app_version"] = version
        star_item_defaults(item)
        result.reviews.append(item)
    url = next_json_page(page.url, feed)
    if url:
        result.next_pages.append(url)
    return result


PLATFORM = Platform(NAME, ("itunes.apple.com",), recognise, extract)
