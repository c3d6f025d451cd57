"""The truth about one source at the end of a crawl, as stored in ``sources.last_crawl_status``.

    ok                    reviews found, no page failed
    partial               reviews found, some pages failed
    empty: REASON         no review found; REASON says what the pages looked like:
                          blocked (403/429, a captcha or "access denied" page), sign_in_page,
                          javascript_only (a script bundle and next to no text),
                          out_of_scope_redirect (the listing redirects off the source's site
                          or path), no_known_markup (a page we do not know how to read)
    failed: REASON        the listing page itself could not be had (http_500, timeout, dns,
                          redirect_loop, too_large...)
    interrupted           the crawl was stopped before the source's pages were all seen

A source that is not ``ok`` is retried sooner by ``--due-only`` (crawler.sources.is_due).
Pure functions: the spider classifies pages, the store pipeline records the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from parsel import Selector

from crawler import stat_keys as keys

OK = "ok"
PARTIAL = "partial"
INTERRUPTED = "interrupted"
EMPTY = "empty"
FAILED = "failed"

BLOCKED = "blocked"
SIGN_IN_PAGE = "sign_in_page"
JAVASCRIPT_ONLY = "javascript_only"
OUT_OF_SCOPE_REDIRECT = "out_of_scope_redirect"
NO_KNOWN_MARKUP = "no_known_markup"
EMPTY_REASONS = (BLOCKED, SIGN_IN_PAGE, JAVASCRIPT_ONLY, OUT_OF_SCOPE_REDIRECT, NO_KNOWN_MARKUP)

# A listing refused with these is a site keeping us out, not a broken site.
BLOCKED_FAILURES = frozenset({"http_403", "http_429"})

_BLOCKED_TEXT = re.compile(
    r"captcha|are you (?:a )?(?:robot|human)|verify (?:that )?you are (?:a )?human|access denied"
    r"|unusual traffic|attention required|request (?:was )?blocked|pardon our interruption"
    r"|checking your browser|bot (?:detection|protection)",
    re.IGNORECASE,
)
_BLOCKED_MARKUP = (
    "//*[contains(@class, 'g-recaptcha') or contains(@class, 'h-captcha') or @id='challenge-form']"
)
_SIGN_IN_TEXT = re.compile(r"\b(?:sign|log)[ -]?in\b|\blogin\b", re.IGNORECASE)
# "No text" and "a big script bundle": a shell that renders everything in the browser.
JS_ONLY_MAX_TEXT = 200  # visible characters
JS_ONLY_MIN_SCRIPT = 2000  # inline script characters, or any external script bundle
_CODE_SCRIPTS = "//script[not(@type) or contains(@type, 'javascript') or @type = 'module']"


@dataclass(frozen=True)
class SourceOutcome:
    """What a crawl saw of one source (from the crawl's stats, see ``outcome_from_stats``)."""

    reviews: int = 0  # reviews the extractors found on its pages
    errors: int = 0  # pages that could not be had
    failed: str | None = None  # why its listing page could not be had
    empty: str | None = None  # what its first page without reviews looked like


def source_status(outcome: SourceOutcome, finish_reason: str = "finished") -> str:
    """ok / partial / empty: REASON / failed: REASON / interrupted (see the module doc)."""
    if finish_reason == "shutdown":
        return INTERRUPTED  # its pagination was cut short: whatever it found, it is not done
    if outcome.reviews:
        return PARTIAL if outcome.errors or outcome.failed else OK
    if outcome.failed in BLOCKED_FAILURES:
        return f"{EMPTY}: {BLOCKED}"
    if outcome.failed:
        return f"{FAILED}: {outcome.failed}"
    return f"{EMPTY}: {outcome.empty or NO_KNOWN_MARKUP}"


def is_ok(status: str | None) -> bool:
    """Whether a stored status means the source needs no early retry."""
    return status == OK


def outcome_from_stats(stats: Mapping[str, object], source: str) -> SourceOutcome:
    """The spider's per-source counters, read back from the crawl's stats."""

    def text(prefix: str) -> str | None:
        value = stats.get(prefix + source)
        return str(value) if value else None

    reviews = stats.get(keys.SOURCE_REVIEWS + source, 0)
    errors = stats.get(keys.SOURCE_ERRORS + source, 0)
    return SourceOutcome(
        reviews=int(reviews) if isinstance(reviews, int | float) else 0,
        errors=int(errors) if isinstance(errors, int | float) else 0,
        failed=text(keys.SOURCE_FAILED),
        empty=text(keys.SOURCE_EMPTY),
    )


def classify_empty_page(html: str) -> str:
    """Why a page that gave no review gave none: blocked, sign_in_page, javascript_only or no_known_markup."""
    try:
        page = Selector(text=html or "<html></html>", type="html")
    except Exception:  # lxml refuses some binary junk
        return NO_KNOWN_MARKUP
    title = " ".join(page.xpath("//title//text()").getall())
    visible = " ".join(
        t.strip()
        for t in page.xpath(
            "//body//text()[not(ancestor::script or ancestor::style or ancestor::noscript)]"
        ).getall()
        if t.strip()
    )
    if (
        page.xpath(_BLOCKED_MARKUP)
        or _BLOCKED_TEXT.search(title)
        or (len(visible) < 2000 and _BLOCKED_TEXT.search(visible))
    ):
        return BLOCKED
    if page.xpath("//input[translate(@type, 'PASWORD', 'pasword') = 'password']") or (
        _SIGN_IN_TEXT.search(title) and page.xpath("//form")
    ):
        return SIGN_IN_PAGE
    if len(visible) <= JS_ONLY_MAX_TEXT:
        code = page.xpath(_CODE_SCRIPTS)  # JSON-LD and other data blocks are not code
        inline = sum(len(text) for text in code.xpath("self::*[not(@src)]/text()").getall())
        if inline >= JS_ONLY_MIN_SCRIPT or code.xpath("self::*[@src]"):
            return JAVASCRIPT_ONLY
    return NO_KNOWN_MARKUP
