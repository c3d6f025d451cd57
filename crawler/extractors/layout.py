"""Reviews from plain HTML using a layout: one container per review, a selector per field."""

from __future__ import annotations

from crawler.extractors.layout_config import Layout
from crawler.extractors.page import Page
from crawler.extractors.result import ExtractionResult
from crawler.fields import parse_rating_text
from crawler.items import ReviewItem


def _number(text: str | None) -> float | None:
    value, _ = parse_rating_text(text)
    return value


def extract_html_layout(page: Page, layout: Layout) -> ExtractionResult:
    """One ReviewItem per container that has a body, a title or a rating."""
    extractor = f"layout:{layout.name}"
    result = ExtractionResult(extractor=extractor)
    if layout.container is None:
        return result
    fields = layout.fields
    for container in layout.container.select(page.root):
        try:
            item = ReviewItem(url=page.url, extractor=extractor)
            for name in ("review_id", "title", "author", "date"):
                if name in fields:
                    value = fields[name].first(container)
                    if name == "review_id":
                        item.site_review_id = value
                    elif name == "date":
                        item.date_raw = value
                    else:
                        setattr(item, name, value)
            if "body" in fields:
                # several matches (e.g. "css:.review-text p") are paragraphs of one body
                item.body = "\n\n".join(fields["body"].texts(container)) or None
            if "rating" in fields:
                item.rating_value, stated_best = parse_rating_text(fields["rating"].first(container))
                best = _number(fields["rating_max"].first(container)) if "rating_max" in fields else None
                worst = _number(fields["rating_min"].first(container)) if "rating_min" in fields else None
                if item.rating_value is not None:
                    item.rating_max = next(
                        (v for v in (best, stated_best, layout.rating_max) if v is not None), None
                    )
                    item.rating_min = worst if worst is not None else layout.rating_min
        except Exception as exc:  # one odd container must not lose the rest of the page
            result.error(extractor, "bad_container", exc)
            continue
        if item.body or item.title or item.rating_value is not None:
            result.reviews.append(item)
    if layout.next_page is not None:
        for href in layout.next_page.texts(page.root):
            url = page.absolute(href)
            if url:
                result.next_pages.append(url)
    return result
