"""schema.org structured data (JSON-LD, microdata, RDFa) via extruct.

Each syntax runs only when the page has markup for it, and JSON-LD blocks are read one at a
time so that one broken block does not hide the good ones next to it. extruct itself is
imported on the first page that needs it (crawler.extractors.extruct_readers says why).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from crawler.extractors.page import Page
from crawler.extractors.result import ExtractionError, ExtractionResult
from crawler.extractors.schema_org import compact, extract_from_nodes

SYNTAXES = ("jsonld", "microdata", "rdfa")

_JSONLD_XPATH = "//script[contains(translate(@type, 'LDJSON', 'ldjson'), 'ld+json')]"
_MICRODATA_XPATH = "//*[@itemscope]"
_RDFA_XPATH = "//*[@typeof]"


def readers() -> ModuleType:
    """crawler.extractors.extruct_readers, imported the first time a page (or a worker) asks."""
    from crawler.extractors import extruct_readers

    return extruct_readers


def _jsonld_roots(page: Page, errors: list[ExtractionError]) -> list[Any]:
    extractor = readers().JsonLdExtractor()
    roots: list[Any] = []
    for index, script in enumerate(page.selector.xpath(_JSONLD_XPATH), start=1):
        try:
            roots.extend(extractor.extract_items(script.root))
        except Exception as exc:  # json / jstyleson raise various types on broken blocks
            errors.append(ExtractionError("jsonld", "broken_json", f"block {index}: {exc}"))
    return roots


def _microdata_roots(page: Page, errors: list[ExtractionError]) -> list[Any]:
    try:
        return list(readers().microdata_items(page.selector.root, page.base_url))
    except Exception as exc:
        errors.append(ExtractionError("microdata", "unreadable", str(exc)))
        return []


def _rdfa_roots(page: Page, errors: list[ExtractionError]) -> list[Any]:
    # RDFa needs extruct's DOM-flavoured parse, so it re-parses; it only runs when typeof= exists.
    try:
        nodes = readers().rdfa_nodes(page.text, page.base_url)
    except Exception as exc:
        errors.append(ExtractionError("rdfa", "unreadable", str(exc)))
        return []
    return [compact(node) for node in nodes]


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
