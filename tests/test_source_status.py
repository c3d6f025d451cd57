"""The end-of-crawl status of a source, the page classifier behind ``empty: REASON``, and when it is due again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawler import stat_keys as keys
from crawler.source_status import SourceOutcome, classify_empty_page, outcome_from_stats, source_status
from crawler.sources import RETRY_NOT_OK_HOURS, is_due
from storage.records import Source


@pytest.mark.parametrize(
    ("outcome", "finish", "expected"),
    [
        (SourceOutcome(reviews=12), "finished", "ok"),
        (SourceOutcome(reviews=12, errors=1), "finished", "partial"),
        (SourceOutcome(reviews=12), "closespider_timeout", "ok"),
        (SourceOutcome(reviews=12), "shutdown", "interrupted"),
        (SourceOutcome(), "shutdown", "interrupted"),
        (SourceOutcome(errors=1, failed="http_500"), "finished", "failed: http_500"),
        (SourceOutcome(errors=1, failed="redirect_loop"), "finished", "failed: redirect_loop"),
        (SourceOutcome(errors=1, failed="http_403"), "finished", "empty: blocked"),
        (SourceOutcome(errors=1, failed="http_429"), "finished", "empty: blocked"),
        (SourceOutcome(empty="sign_in_page"), "finished", "empty: sign_in_page"),
        (SourceOutcome(empty="out_of_scope_redirect"), "finished", "empty: out_of_scope_redirect"),
        (SourceOutcome(), "finished", "empty: no_known_markup"),
        (SourceOutcome(errors=2, empty="javascript_only"), "finished", "empty: javascript_only"),
    ],
)
def test_source_status(outcome: SourceOutcome, finish: str, expected: str) -> None:
    assert source_status(outcome, finish) == expected


def test_outcome_from_stats_reads_the_spiders_counters() -> None:
    stats: dict[str, object] = {
        keys.SOURCE_REVIEWS + "a": 7,
        keys.SOURCE_ERRORS + "a": 1,
        keys.SOURCE_FAILED + "b": "timeout",
        keys.SOURCE_EMPTY + "c": "blocked",
    }
    assert outcome_from_stats(stats, "a") == SourceOutcome(reviews=7, errors=1)
    assert outcome_from_stats(stats, "b") == SourceOutcome(failed="timeout")
    assert outcome_from_stats(stats, "c") == SourceOutcome(empty="blocked")
    assert outcome_from_stats(stats, "unseen") == SourceOutcome()


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        (
            "<html><head><title>Attention Required! | Cloudflare</title></head><body>...</body></html>",
            "blocked",
        ),
        ("<html><body><h1>Access denied</h1><p>You don't have permission.</p></body></html>", "blocked"),
        ("<html><body><div class='h-captcha' data-sitekey='x'></div></body></html>", "blocked"),
        ("<html><body><form><input name=u><input type=PASSWORD name=p></form></body></html>", "sign_in_page"),
        (
            "<html><title>Log in - Reviews</title><body><form action=/session></form></body></html>",
            "sign_in_page",
        ),
        (
            '<html><body><div id="app"></div><script src="/bundle.js"></script></body></html>',
            "javascript_only",
        ),
        ("<html><body><script>" + "var a=1;" * 400 + "</script></body></html>", "javascript_only"),
        (
            '<html><head><script type="application/ld+json">'
            + "[" * 500
            + "]" * 500
            + "</script></head></html>",
            "no_known_markup",
        ),  # fmt: skip
        (
            "<html><body><p>" + "Plenty of text but no review markup. " * 20 + "</p></body></html>",
            "no_known_markup",
        ),
        ("", "no_known_markup"),
        ("\x00\x01 not html at all", "no_known_markup"),
    ],
)
def test_classify_empty_page(html: str, reason: str) -> None:
    assert classify_empty_page(html) == reason


def test_a_long_article_that_mentions_login_is_not_a_sign_in_page() -> None:
    html = "<html><title>Reviews</title><body><p>I could not log in for days.</p><form role=search></form></body></html>"
    assert classify_empty_page(html) == "no_known_markup"


NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def source(hours_ago: float | None, status: str | None, interval: float = 24.0) -> Source:
    at = None if hours_ago is None else (NOW - timedelta(hours=hours_ago)).isoformat()
    return Source("s", "b", "http://127.0.0.1/", "auto", interval, at, status)


@pytest.mark.parametrize(
    ("hours_ago", "status", "interval", "due"),
    [
        (None, None, 24.0, True),  # never crawled
        (None, "failed: timeout", 24.0, True),  # never brought reviews
        (2.0, "ok", 24.0, False),
        (25.0, "ok", 24.0, True),
        (2.0, None, 24.0, False),  # rows written before statuses: the interval rule
        (0.5, "partial", 24.0, False),
        (RETRY_NOT_OK_HOURS, "partial", 24.0, True),
        (2.0, "empty: blocked", 24.0, True),
        (2.0, "failed: http_500", 24.0, True),
        (2.0, "interrupted", 24.0, True),
        (0.2, "failed: http_500", 0.25, False),  # a shorter interval still wins
        (0.3, "failed: http_500", 0.25, True),
    ],
)
def test_is_due_retries_sources_whose_last_crawl_was_not_ok(
    hours_ago: float | None, status: str | None, interval: float, due: bool
) -> None:
    assert is_due(source(hours_ago, status, interval), NOW) is due
