"""Names of the crawl statistics the spider writes and the store pipeline reads back."""

from __future__ import annotations

PAGES = "reputation/pages"  # responses handed to the spider (any status)
EMPTY_PAGES = "reputation/empty_pages"  # pages where the extractor found no review
ERRORS = "reputation/errors/"  # + reason: http_500, timeout, dns, connection...
DROPPED = "reputation/dropped/"  # + reason: missing_body, duplicate_in_run...
SKIPPED = "reputation/skipped/"  # + reason: robots_txt, ignored (not errors)
EXTRACT_ERRORS = "reputation/extract_errors/"  # + extractor: jsonld, microdata... (page still used)
SOURCES = "reputation/sources"  # list of the source ids this crawl covers
SOURCE_PAGES = "reputation/source_pages/"  # + source id
SOURCE_ERRORS = "reputation/source_errors/"  # + source id
SOURCE_FAILED = "reputation/source_failed/"  # + source id -> reason its first page failed


def by_prefix(stats: dict[str, object], prefix: str) -> dict[str, int]:
    """``{suffix: count}`` for every counter under *prefix*."""
    return {
        key[len(prefix) :]: int(value)
        for key, value in sorted(stats.items())
        if key.startswith(prefix) and isinstance(value, int | float)
    }
