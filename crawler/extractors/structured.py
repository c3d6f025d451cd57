"""schema.org structured data (JSON-LD, microdata, RDFa) via extruct.

Each syntax runs only when the page has markup for it, and JSON-LD blocks are read one at a
time so that one broken block does not hide the good ones next to it.
"""

from __future__ import annotations

from typing import Any

import extruct
import html_text
from extruct.jsonld import JsonLdExtractor
from extruct.uniform import _umicrodata_microformat  # extract(uniform=True)'s own microdata step
from extruct.w3cmicrodata import MicrodataExtractor
from lxml import etree

from crawler.extractors.page import Page
from crawler.extractors.result import ExtractionError, ExtractionResult
from crawler.extractors.schema_org import compact, extract_from_nodes

SYNTAXES = ("jsonld", "microdata", "rdfa")

_JSONLD_XPATH = "//script[contains(translate(@type, 'LDJSON', 'ldjson'), 'ld+json')]"
_MICRODATA_XPATH = "//*[@itemscope]"
_RDFA_XPATH = "//*[@typeof]"


def _jsonld_roots(page: Page, errors: list[ExtractionError]) -> list[Any]:
    extractor = JsonLdExtractor()
    roots: list[Any] = []
    for index, script in enumerate(page.selector.xpath(_JSONLD_XPATH), start=1):
        try:
            roots.extend(extractor.extract_items(script.root))
        except Exception as exc:  # json / jstyleson raise various types on broken blocks
            errors.append(ExtractionError("jsonld", "broken_json", f"block {index}: {exc}"))
    return roots


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


def _microdata_roots(page: Page, errors: list[ExtractionError]) -> list[Any]:
    try:
        items = _Microdata().extract_items(page.selector.root, page.base_url)
        return list(_umicrodata_microformat(items, schema_context="http://schema.org"))
    except Exception as exc:
        errors.append(ExtractionError("microdata", "unreadable", str(exc)))
        return []


def _rdfa_roots(page: Page, errors: list[ExtractionError]) -> list[Any]:
    # RDFa needs extruct's DOM-flavoured parse, so it re-parses; it only runs when typeof= exists.
    try:
        data = extruct.extract(page.text.encode("utf-8"), base_url=page.base_url, syntaxes=["rdfa"])
    except Exception as exc:
        errors.append(ExtractionError("rdfa", "unreadable", str(exc)))
        return []
    return [compact(node) for node in data.get("rdfa", [])]


_ROOTS = {
    "jsonld": (_JSONLD_XPATH, _jsonld_roots),
    "microdata": (_MICRODATA_XPATH, _microdata_roots),
    "rdfa": (_RDFA_XPATH, _rdfa_roots),
}


def extract_structured(page: Page, syntax: str) -> ExtractionResult:
    """Reviews and AggregateRating in one syntax ("jsonld", "microdata" or "rdfa")."""
    presence, read_roots = _ROOTS[syntax]
    result = ExtractionResult(extractor=syntax)
    if not page.has(presence):
        return result
    roots = read_roots(page, result.errors)
    if not roots:
        return result
    try:
        result.reviews, result.aggregate = extract_from_nodes(roots, page.url, syntax)
        if syntax == "rdfa":
            # rdflib returns nodes in no fixed order; make repeated crawls of a page agree
            result.reviews.sort(key=lambda r: (r.site_review_id or "", r.date_raw or "", r.body or ""))
    except Exception as exc:  # unexpected shapes must not stop the crawl
        result.error(syntax, "unexpected_shape", exc)
    return result
