"""The one result type every extractor returns, and the typed record of what went wrong."""

from __future__ import annotations

from dataclasses import dataclass, field

from crawler.items import ReviewItem


@dataclass(frozen=True)
class ExtractionError:
    """One problem met while reading a page; the page's other reviews are still used.

    ``extractor`` names the part that met it (jsonld, trustpilot, pagination, decode...) and
    is what crawl stats count by; ``reason`` is a short stable word; ``detail`` is for people.
    """

    extractor: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.extractor}: {self.reason}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Aggregate:
    """A page's own summary rating (schema.org AggregateRating or the platform's header)."""

    rating_value: float | None
    rating_max: float | None = None
    review_count: int | None = None
    rating_min: float | None = None


@dataclass
class ExtractionResult:
    """Reviews found on one page, where to go next, the page's aggregate, and what went wrong."""

    reviews: list[ReviewItem] = field(default_factory=list)
    next_pages: list[str] = field(default_factory=list)
    extractor: str | None = None
    aggregate: Aggregate | None = None
    errors: list[ExtractionError] = field(default_factory=list)

    def error(self, extractor: str, reason: str, detail: object = "") -> None:
        """Record one problem."""
        self.errors.append(ExtractionError(extractor, reason, str(detail)))
