"""A page decoded and parsed once, shared by every extractor that looks at it."""

from __future__ import annotations

from functools import cached_property
from typing import Any
from urllib.parse import urljoin

from parsel import Selector
from w3lib.encoding import html_to_unicode


def _sniff(body: bytes) -> str:
    """Undeclared encoding: UTF-8 when the bytes are valid UTF-8, else Windows-1252 (never fails)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def decode_html(html: str | bytes, encoding: str | None = None) -> tuple[str, list[str]]:
    """(text, errors): BOM, given/declared encoding, then a UTF-8/cp1252 guess; bad bytes replaced."""
    if isinstance(html, str):
        return html, []
    header = f"text/html; charset={encoding}" if encoding else None
    try:
        used, text = html_to_unicode(header, html, auto_detect_fun=_sniff)
    except LookupError:  # unknown encoding name given or declared
        used, text = html_to_unicode(None, html, auto_detect_fun=_sniff, default_encoding="utf-8")
    errors = []
    if "\ufffd" in text and b"\xef\xbf\xbd" not in html:
        errors.append(f"decode: bytes not valid in {used} were replaced")
    return text, errors


class Page:
    """Decoded text, its parsel tree, and helpers to make links absolute."""

    def __init__(self, html: str | bytes, url: str, encoding: str | None = None) -> None:
        self.url = url
        self.text, self.errors = decode_html(html, encoding)
        try:
            self.selector = Selector(text=self.text, base_url=url)
        except Exception as exc:  # lxml gives up on some binary junk; treat as an empty page
            self.errors.append(f"parse: {exc}")
            self.selector = Selector(text="<html></html>", base_url=url)

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
        url = urljoin(self.base_url, href)
        return url if url.startswith(("http://", "https://")) else None

    def has(self, xpath: str) -> bool:
        """Cheap test used to skip extractors that cannot find anything here."""
        return bool(self.root.xpath(xpath))
