"""Selector strings from layout files ("css:..." / "xpath:...") compiled once, run on lxml trees.

Layouts are data, so every selector is a string. Compiling turns CSS into XPath (parsel's
translator, so ::text and ::attr() work) and the XPath into an lxml XPath object once per
selector, not once per page; running it straight on lxml elements avoids wrapping every node
in a parsel Selector, which is most of the cost on listing pages.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import html_text
from lxml import etree
from parsel import css2xpath

# the EXSLT namespaces parsel offers, so layout XPath written for parsel runs here too
_NAMESPACES = {"re": "http://exslt.org/regular-expressions", "set": "http://exslt.org/sets"}
_NEEDS_CLEANING = etree.XPath("boolean(.//comment() | .//processing-instruction() | .//script | .//style)")


class SelectorSyntaxError(ValueError):
    """A selector string in a layout cannot be compiled; the message quotes it."""


def element_text(element: Any) -> str:
    """Readable text of an element; several <p> become blank-line separated paragraphs."""
    if _NEEDS_CLEANING(element):
        element = _cleaned_copy(element)
    return str(html_text.etree_to_text(element))


def _cleaned_copy(element: Any) -> Any:
    """A copy without comments, scripts and styles, which html_text expects to be gone."""
    clean = copy.deepcopy(element)
    etree.strip_elements(clean, etree.Comment, etree.ProcessingInstruction, "script", "style", with_tail=False)
    return clean


@dataclass(frozen=True)
class CompiledSelector:
    """One layout selector, kept as a compiled XPath."""

    source: str
    xpath: str
    compiled: etree.XPath = field(compare=False, repr=False)

    def select(self, node: Any) -> list[Any]:
        """Matches under an lxml element: elements, or strings for text()/@attr results."""
        try:
            result = self.compiled(node)
        except etree.XPathError:
            return []
        return result if isinstance(result, list) else [result]

    def texts(self, node: Any) -> list[str]:
        """Each non-empty match as a string: values as they are, elements as readable text."""
        return list(self._iter_texts(node))

    def first(self, node: Any) -> str | None:
        """The first non-empty match, or None."""
        return next(self._iter_texts(node), None)

    def exists(self, node: Any) -> bool:
        """Whether anything matches; cheap, used to recognise a page's layout."""
        return bool(self.select(node))

    def _iter_texts(self, node: Any) -> Iterator[str]:
        for match in self.select(node):
            if isinstance(match, str | bytes | int | float):
                value = str(match).strip()
            elif isinstance(match, etree._Element) and isinstance(match.tag, str):
                value = element_text(match).strip()
            else:
                continue  # comments, processing instructions, booleans
            if value:
                yield value


@lru_cache(maxsize=1024)
def compile_selector(spec: str) -> CompiledSelector:
    """Compile "css:QUERY", "xpath:QUERY" or a bare CSS query; raise SelectorSyntaxError if invalid."""
    text = spec.strip()
    if text.startswith("xpath:"):
        xpath = text[len("xpath:"):].strip()
    else:
        query = (text[len("css:"):] if text.startswith("css:") else text).strip()
        if not query:
            raise SelectorSyntaxError(f"empty selector {spec!r}")
        try:
            xpath = css2xpath(query)
        except Exception as exc:  # cssselect raises several unrelated types for bad input
            raise SelectorSyntaxError(f"invalid CSS selector {query!r}: {exc}") from exc
    try:
        compiled = etree.XPath(xpath, namespaces=_NAMESPACES, smart_strings=False)
    except etree.XPathSyntaxError as exc:
        raise SelectorSyntaxError(f"invalid XPath {xpath!r}: {exc}") from exc
    return CompiledSelector(spec, xpath, compiled)
