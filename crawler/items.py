"""The record that travels from extractors through the pipelines into SQLite."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar


@dataclass
class ReviewItem:
    """One review as found on a page.

    Extractors fill the raw fields; the normalise pipeline fills the derived ones
    (rating, published_at, date_precision, language, cleaned body) and the dedupe
    pipeline assigns ``id``.
    """

    # raw, as extracted
    body: str | None = None
    title: str | None = None
    author: str | None = None
    site_review_id: str | None = None
    rating_value: float | None = None
    rating_min: float | None = None   # worstRating; defaults to 1 for star scales
    rating_max: float | None = None   # bestRating; defaults to 5 when unknown
    date_raw: str | None = None
    reply: str | None = None          # the business's answer, never part of body
    truncated: bool = False           # the page shows only the start of the text ("More")
    url: str | None = None            # page the review was found on
    extractor: str | None = None      # jsonld, microdata, rdfa, embedded_json, layout:NAME, a platform name
    # context, set by the spider
    source_id: str | None = None
    brand_id: str | None = None
    crawled_at: str | None = None     # ISO timestamp of the response, anchors relative dates
    # derived by pipelines
    id: str | None = None
    body_hash: str | None = None
    author_hash: str | None = None
    rating: float | None = None
    published_at: str | None = None
    date_precision: str = "missing"
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # set where the derived fields were filled beside the crawl (crawler.extraction_pool), so the
    # normalise pipeline only counts; never stored or streamed (TRANSIENT_FIELDS)
    normalised: bool = False
    invalid_chars_replaced: int = 0
    # set by crawler.identity.identify (beside the crawl, or by the dedupe pipeline): the id and
    # hashes are filled and ``content_key`` is the one the store matches by
    identified: bool = False
    content_key: str | None = None


# ReviewItem fields that live only inside one crawl process (see ``normalised`` above).
TRANSIENT_FIELDS = frozenset({"normalised", "invalid_chars_replaced", "identified", "content_key"})


@dataclass
class ReviewPage:
    """The reviews of one listing page, carried through the pipelines as one item.

    Scrapy's machinery per item (a task, the spider-middleware chain, a signal and a stats
    update for every pipeline pass) costs about as much as normalising a review, so the spider
    yields one of these per page. Each pipeline still handles every review on its own: a review
    that fails a step is dropped from ``reviews`` with its reason counted
    (crawler.pipelines.validate.drop), the others go on.
    """

    reviews: list[ReviewItem] = field(default_factory=list)
    url: str | None = None  # the listing page, for log lines


# A pipeline step hands back what it was given: a review, or a page of them.
ReviewOrPage = TypeVar("ReviewOrPage", ReviewItem, ReviewPage)


def reviews_of(item: ReviewItem | ReviewPage) -> list[ReviewItem]:
    """The reviews an item carries: a page's list, or the review itself."""
    return item.reviews if isinstance(item, ReviewPage) else [item]
