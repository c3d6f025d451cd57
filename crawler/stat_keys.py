"""Names of the crawl statistics the spider writes and the store pipeline reads back."""

from __future__ import annotations

PAGES = "reputation/pages"  # responses handed to the spider (any status)
EMPTY_PAGES = "reputation/empty_pages"  # pages where the extractor found no review
ERRORS = "reputation/errors/"  # + reason: http_500, timeout, dns, connection...
DROPPED = "reputation/dropped/"  # + reason: missing_body, duplicate_in_run...
SKIPPED = "reputation/skipped/"  # + reason: robots_txt, ignored, out_of_scope (not errors)
STOPPED = "reputation/stopped/"  # + why a source's pagination ended early: page_budget, stopped_repeating...
COUNTED = "reputation/counted/"  # + what: charset_guessed, invalid_chars_replaced (facts, not faults)
EXTRACT_ERRORS = "reputation/extract_errors/"  # + extractor: jsonld, microdata... (page still used)
SOURCES = "reputation/sources"  # list of the source ids this crawl covers
SOURCE_PAGES = "reputation/source_pages/"  # + source id
SOURCE_ERRORS = "reputation/source_errors/"  # + source id
SOURCE_FAILED = "reputation/source_failed/"  # + source id -> reason its first page failed
SOURCE_REVIEWS = "reputation/source_reviews/"  # + source id: reviews its pages gave
SOURCE_EMPTY = "reputation/source_empty/"  # + source id -> what its first review-less page looked like
SOURCE_KIND = "reputation/source_kind/"  # + source id -> full or incremental (crawler.sources.crawl_kind)
SOURCE_STOPPED = "reputation/source_stopped/"  # + source id -> first reason its walk ended before the end
LAYOUT_ERRORS = "reputation/layout_errors/"  # + layout name -> why it could not be used (first message)

# Reasons under STOPPED, SKIPPED, ERRORS and COUNTED that more than one module names.
OUT_OF_SCOPE = "out_of_scope"
PAGE_BUDGET = "page_budget"
STOPPED_REPEATING = "stopped_repeating"
STOPPED_EMPTY = "stopped_empty"
STOPPED_NO_NEW = "stopped_no_new"  # incremental: a page whose reviews are all stored unchanged
TOO_LARGE = "too_large"
REDIRECT_LOOP = "redirect_loop"
TOO_MANY_REDIRECTS = "too_many_redirects"
LAYOUT_ERROR = "layout_error"  # under ERRORS: a source's layout is misconfigured (reason under LAYOUT_ERRORS)
CHARSET_GUESSED = "charset_guessed"
INVALID_CHARS_REPLACED = "invalid_chars_replaced"
DUPLICATE_IN_RUN = "duplicate_in_run"  # under DROPPED: a repeat of a review this crawl already has


def later_stop_replaces(noted: object) -> bool:
    """Whether a later reason replaces the stop reason ``noted`` so far for a source (SOURCE_STOPPED).

    The first reason its walk ended before its listing's end is kept, but a repeating page is how
    some sites end their listing, so any later reason replaces it: another branch of the same
    listing cut short means the walk did not reach the end. The spider (spiders.reviews) and the
    distributed writer's page tallies (reputation.distributed.rounds) both keep the rule here.
    """
    return noted in (None, "", STOPPED_REPEATING)


def texts_by_prefix(stats: dict[str, object], prefix: str) -> dict[str, str]:
    """``{suffix: text}`` for every value under *prefix* (reasons, not counts)."""
    return {key[len(prefix) :]: str(value) for key, value in sorted(stats.items()) if key.startswith(prefix)}


def by_prefix(stats: dict[str, object], prefix: str) -> dict[str, int]:
    """``{suffix: count}`` for every counter under *prefix*."""
    return {
        key[len(prefix) :]: int(value)
        for key, value in sorted(stats.items())
        if key.startswith(prefix) and isinstance(value, int | float)
    }


def lost_reviews(dropped: dict[str, int]) -> int:
    """Drops (``by_prefix(stats, DROPPED)``) that lose a review: a repeat within the run loses nothing."""
    return sum(n for why, n in dropped.items() if why != DUPLICATE_IN_RUN)
