"""Pure extractors: a page's HTML in, review records out. No crawling, no storage.

``extract_reviews(html, url, layout="auto")`` tries, in order: the built-in platform extractors
that fit the page (by host, then by markup: Trustpilot, Yelp, Amazon, Google Play, App Store,
TripAdvisor, ConsumerAffairs), schema.org structured data (JSON-LD, microdata, RDFa), embedded
JSON (json layouts whose ``match`` hits, then a generic search of __NEXT_DATA__ /
application/json blocks, JS assignments and comments), then HTML layouts whose ``match`` hits.
The first that finds reviews wins. A named layout runs only that layout; the names "jsonld",
"microdata", "rdfa", "embedded_json" and the platform names pick one built-in extractor.

Bad pages never raise: they give no reviews and say why in ``errors`` (ExtractionError records).
"""

from __future__ import annotations

from collections.abc import Callable

from crawler.extractors.embedded_json import GENERIC_NAME, extract_generic_json, extract_json_layout
from crawler.extractors.layout import extract_html_layout
from crawler.extractors.layout_config import Layout, LayoutError, LayoutSet, load_layouts
from crawler.extractors.page import Page
from crawler.extractors.platforms import PLATFORMS
from crawler.extractors.platforms import recognise as recognise_platforms
from crawler.extractors.result import Aggregate, ExtractionError, ExtractionResult
from crawler.extractors.structured import SYNTAXES, extract_structured, readers
from crawler.items import ReviewItem

__all__ = [
    "AUTO",
    "BUILTIN_EXTRACTORS",
    "PLATFORMS",
    "Aggregate",
    "ExtractionError",
    "ExtractionResult",
    "LayoutError",
    "extract_reviews",
    "layout_names",
    "prepare",
]

AUTO = "auto"
BUILTIN_EXTRACTORS = (*SYNTAXES, GENERIC_NAME, *PLATFORMS)


def prepare() -> None:
    """Load what extraction needs before the first page: the layouts, and extruct (imported on
    first use otherwise, see crawler.extractors.extruct_readers). For an extraction worker."""
    load_layouts()
    readers()


def layout_names() -> list[str]:
    """Every value a source's ``layout`` may take (for validating the registry)."""
    return [AUTO, *BUILTIN_EXTRACTORS, *load_layouts().layouts]


class _Run:
    """One extraction: the parsed page plus the result being filled."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.result = ExtractionResult(errors=list(page.errors))

    def platform(self, name: str) -> bool:
        found = PLATFORMS[name].extract(self.page)
        self.result.errors.extend(found.errors)
        if found.aggregate is not None:
            self.result.aggregate = found.aggregate
        return self._take(found.reviews, found.next_pages, name)

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
    for platform in recognise_platforms(run.page):
        if run.platform(platform.name):
            return
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
    if name in PLATFORMS:
        run.platform(name)
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
            result.error("pagination", "bad_selector", f"{selector.source}: {exc}")
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
        run.result.error("extract", "unexpected", f"{type(exc).__name__}: {exc}")
    _title_only_bodies(run.result)
    _pagination(run, layouts)
    return run.result


def _title_only_bodies(result: ExtractionResult) -> None:
    """A rated review with a title and no text says what it says in the title: keep it."""
    for item in result.reviews:
        if not (item.body or "").strip() and (item.title or "").strip() and item.rating_value is not None:
            item.body = item.title
            item.extra["body_from_title"] = True
