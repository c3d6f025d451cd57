"""Pure extractors: a page's HTML in, review records out. No crawling, no storage.

``extract_reviews(html, url, layout="auto")`` tries, in order: schema.org structured data
(JSON-LD, microdata, RDFa), embedded JSON (json layouts whose ``match`` hits, then a generic
search of __NEXT_DATA__ / application/json blocks), then HTML layouts whose ``match`` hits.
The first that finds reviews wins. A named layout runs only that layout; the names "jsonld",
"microdata", "rdfa" and "embedded_json" pick one built-in extractor.

Bad pages never raise: they give no reviews and say why in ``errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crawler.extractors.embedded_json import GENERIC_NAME, extract_generic_json, extract_json_layout
from crawler.extractors.layout import extract_html_layout
from crawler.extractors.layout_config import Layout, LayoutError, LayoutSet, load_layouts
from crawler.extractors.page import Page
from crawler.extractors.structured import SYNTAXES, extract_structured
from crawler.items import ReviewItem

__all__ = ["AUTO", "BUILTIN_EXTRACTORS", "ExtractionResult", "LayoutError", "extract_reviews", "layout_names"]

AUTO = "auto"
BUILTIN_EXTRACTORS = (*SYNTAXES, GENERIC_NAME)


@dataclass
class ExtractionResult:
    """Reviews found on one page, where to go next, and what went wrong."""

    reviews: list[ReviewItem] = field(default_factory=list)
    next_pages: list[str] = field(default_factory=list)
    extractor: str | None = None
    aggregate: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)


def layout_names() -> list[str]:
    """Every value a source's ``layout`` may take (for validating the registry)."""
    return [AUTO, *BUILTIN_EXTRACTORS, *load_layouts().layouts]


class _Run:
    """One extraction: the parsed page plus the result being filled."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.result = ExtractionResult(errors=list(page.errors))

    def structured(self, syntax: str) -> bool:
        found = extract_structured(self.page, syntax)
        self.result.errors.extend(found.errors)
        if self.result.aggregate is None:
            self.result.aggregate = found.aggregate
        return self._take(found.reviews, [], syntax)

    def json_layout(self, layout: Layout) -> bool:
        found = extract_json_layout(self.page, layout)
        self.result.errors.extend(found.errors)
        return self._take(found.reviews, found.next_pages, f"embedded_json:{layout.name}")

    def generic_json(self) -> bool:
        found = extract_generic_json(self.page)
        self.result.errors.extend(found.errors)
        return self._take(found.reviews, found.next_pages, GENERIC_NAME)

    def html_layout(self, layout: Layout) -> bool:
        found = extract_html_layout(self.page, layout)
        self.result.errors.extend(found.errors)
        return self._take(found.reviews, found.next_pages, f"layout:{layout.name}")

    def _take(self, reviews: list[ReviewItem], next_pages: list[str], name: str) -> bool:
        if not reviews:
            return False
        self.result.reviews = reviews
        self.result.next_pages.extend(next_pages)
        self.result.extractor = name
        return True

    def matches(self, layout: Layout) -> bool:
        return layout.match is not None and layout.match.exists(self.page.root)


def _auto(run: _Run, layouts: LayoutSet) -> None:
    for syntax in SYNTAXES:
        if run.structured(syntax):
            return
    candidates = [layout for layout in layouts.layouts.values() if run.matches(layout)]
    for layout in candidates:
        if layout.kind == "json" and run.json_layout(layout):
            return
    if run.generic_json():
        return
    for layout in candidates:
        if layout.kind == "html" and run.html_layout(layout):
            return


def _named(run: _Run, layouts: LayoutSet, name: str) -> None:
    if name in SYNTAXES:
        run.structured(name)
        return
    if name == GENERIC_NAME:
        run.generic_json()
        return
    layout = layouts.get(name)
    handler: Callable[[Layout], bool] = run.json_layout if layout.kind == "json" else run.html_layout
    handler(layout)


def _pagination(run: _Run, layouts: LayoutSet) -> None:
    page, result = run.page, run.result
    for selector in layouts.pagination:
        try:
            hrefs = selector.texts(page.root)
        except Exception as exc:
            result.errors.append(f"pagination {selector.source}: {exc}")
            continue
        result.next_pages.extend(url for url in map(page.absolute, hrefs) if url)
    own = page.url.split("#", 1)[0]
    result.next_pages = [url for url in dict.fromkeys(result.next_pages) if url.split("#", 1)[0] != own]


def extract_reviews(
    html: str | bytes, url: str, layout: str = AUTO, *, encoding: str | None = None
) -> ExtractionResult:
    """Reviews, next listing pages and any AggregateRating on one page.

    ``encoding`` applies when ``html`` is bytes (e.g. the response's declared charset).
    Raises LayoutError only for configuration mistakes (an unknown layout name, a broken
    layout file), never because of the page.
    """
    layouts = load_layouts()
    if layout != AUTO and layout not in BUILTIN_EXTRACTORS:
        layouts.get(layout)  # fail on an unknown name before doing any work
    run = _Run(Page(html, url, encoding))
    try:
        if layout == AUTO:
            _auto(run, layouts)
        else:
            _named(run, layouts, layout)
    except Exception as exc:  # last guard: a crawl must survive any page
        run.result.errors.append(f"extract: unexpected {type(exc).__name__}: {exc}")
    _pagination(run, layouts)
    return run.result
