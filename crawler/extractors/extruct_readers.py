"""The parts of extruct the structured-data extractor uses, in one module imported on first use.

``import extruct`` brings every syntax extruct knows: microformats (mf2py, Beautiful Soup,
html5lib) and RDFa (rdflib) among them, about 0.18 s of a crawl process's start. A crawl whose
pages are read by its extraction worker never calls extruct in the crawl process itself, so
crawler.extractors.structured imports this module only when a page needs it, and the worker
imports it as soon as it is forked (crawler.extraction_pool), beside the crawl.
"""

from __future__ import annotations

from typing import Any

import extruct
import html_text
from extruct.jsonld import JsonLdExtractor
from extruct.uniform import _umicrodata_microformat  # extract(uniform=True)'s own microdata step
from extruct.w3cmicrodata import MicrodataExtractor
from lxml import etree

__all__ = ["JsonLdExtractor", "microdata_items", "rdfa_nodes"]


class _Microdata(MicrodataExtractor):
    """extruct's microdata reader, minus a cleaned deep copy of every text-valued property.

    extruct copies each such element and strips scripts, styles, comments, links and meta tags
    before reading its text; when the element holds none of those the copy reads the same, and
    skipping it is most of the reader's time on a listing page.
    """

    _NEEDS_CLEANING = etree.XPath(
        "boolean(descendant-or-self::*[self::script or self::style or self::link or self::meta"
        " or self::noscript] | descendant::comment() | descendant::processing-instruction())"
    )

    def _extract_textContent(self, node: Any) -> str:  # noqa: N802 - extruct's name
        if self._NEEDS_CLEANING(node):
            return str(super()._extract_textContent(node))
        return str(html_text.etree_to_text(node))


def microdata_items(root: Any, base_url: str) -> list[Any]:
    """The page's microdata items in extruct's uniform (schema.org JSON-LD-like) shape."""
    items = _Microdata().extract_items(root, base_url)
    return list(_umicrodata_microformat(items, schema_context="http://schema.org"))


def rdfa_nodes(text: str, base_url: str) -> list[Any]:
    """The page's RDFa nodes (extruct re-parses the text with its DOM-flavoured parser)."""
    data = extruct.extract(text.encode("utf-8"), base_url=base_url, syntaxes=["rdfa"])
    return list(data.get("rdfa", []))
