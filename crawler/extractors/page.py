"""A page decoded and parsed once, shared by every extractor that looks at it."""

from __future__ import annotations

import json
import re
from functools import cache, cached_property
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from parsel import Selector
from w3lib.encoding import html_to_unicode

from crawler.decoding import detect_encoding
from crawler.extractors.result import ExtractionError


def decode_html(html: str | bytes, encoding: str | None = None) -> tuple[str, list[ExtractionError]]:
    """(text, errors): BOM, given/declared encoding, then crawler.decoding's guess; bad bytes replaced."""
    if isinstance(html, str):
        return html, []
    header = f"text/html; charset={encoding}" if encoding else None
    try:
        used, text = html_to_unicode(header, html, auto_detect_fun=detect_encoding)
    except LookupError:  # unknown encoding name given or declared
        used, text = html_to_unicode(None, html, auto_detect_fun=detect_encoding, default_encoding="utf-8")
    errors: list[ExtractionError] = []
    if "\ufffd" in text and b"\xef\xbf\xbd" not in html:
        errors.append(ExtractionError("decode", "invalid_bytes", f"bytes not valid in {used} were replaced"))
    return text, errors


# A root-relative link that urljoin would rewrite (dot segments to resolve; tabs and line breaks,
# which URL parsing drops; an empty query, fragment or ;params, which it leaves out; backslashes)
# goes through urljoin, as does every other kind of link.
_JOIN_BY_HAND = re.compile(r"/\.|[\t\r\n;\\]|\?#|[?#]$")


@cache
def _presence(xpath: str) -> etree.XPath:
    """``boolean(xpath)`` compiled once per expression (the extractors use a handful of fixed ones)."""
    return etree.XPath(f"boolean({xpath})")


class Page:
    """Decoded text, its parsel tree, and helpers to make links absolute."""

    def __init__(self, html: str | bytes, url: str, encoding: str | None = None) -> None:
        self.url = url
        self.text, self.errors = decode_html(html, encoding)
        try:
            # type="html" always: parsel would otherwise read a JSON body as JSON, not as a tree
            self.selector = Selector(text=self.text, type="html", base_url=url)
        except Exception as exc:  # lxml gives up on some binary junk; treat as an empty page
            self.errors.append(ExtractionError("parse", "unparseable", str(exc)))
            self.selector = Selector(text="<html></html>", type="html", base_url=url)

    @property
    def root(self) -> Any:
        """The lxml root element, for compiled layout selectors."""
        return self.selector.root

    @cached_property
    def base_url(self) -> str:
        """The page URL, or <base href> when the page sets one."""
        base = self.selector.xpath("//head/base/@href").get()
        return urljoin(self.url, base.strip()) if base else self.url

    def absolute(self, href: Any) -> str | None:
        """An absolute http(s) URL for a link, or None for empty / javascript: / fragment-only links."""
        if not isinstance(href, str):
            return None
        href = href.strip()
        if not href or href.startswith(("#", "javascript:", "mailto:")):
            return None
        if self.origin and href[:1] == "/" and href[1:2] != "/" and not _JOIN_BY_HAND.search(href):
            return self.origin + href  # what urljoin gives for a plain root-relative link, at a tenth of its cost
        url = urljoin(self.base_url, href)
        return url if url.startswith(("http://", "https://")) else None

    @cached_property
    def origin(self) -> str | None:
        """``http(s)://host`` of the base URL, for root-relative links (None for other schemes)."""
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return None
        return f"{parts.scheme}://{parts.netloc}"

    def has(self, xpath: str) -> bool:
        """Cheap test used to skip extractors that cannot find anything here.

        Asked as ``boolean(...)`` of a compiled expression: no Python element is built for
        the matches (a listing page can hold hundreds), and the expression is parsed once.
        """
        return bool(_presence(xpath)(self.root))

    @cached_property
    def json(self) -> Any:
        """The body as JSON when the whole response is JSON (feeds, APIs), else None."""
        text = self.text.lstrip("\ufeff \t\r\n")
        if not text.startswith(("{", "[")):
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    @cached_property
    def host(self) -> str:
        """Lower-case host name of the page URL ("" when it has none)."""
        return (urlsplit(self.url).hostname or "").lower()
