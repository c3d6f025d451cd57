"""The crawl against a misbehaving site: real Scrapy in a child process, a real server on 127.0.0.1.

Every fault must end the crawl of its source with a counted reason in the run log
(``crawl_runs``) and the truth in ``sources.last_crawl_status``; nothing hangs, nothing is lost
without a count.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from crawl_support import load_sources, rows
from fault_server import (
    Fault,
    FaultServer,
    Request,
    deep_jsonld,
    hang,
    huge,
    infinite_pagination,
    malformed_jsonld,
    page,
    redirect,
    repeating_pagination,
    review,
    review_page,
    status,
    truncated,
    undeclared,
)

from crawler.launcher import CrawlError, run_crawl, select_sources
from reputation.cli import cli
from reputation.registry.loader import source_id
from storage.database import connect

# DOWNLOAD_TIMEOUT: far above a loopback answer, even from a loaded machine (a stalled reactor
# runs its timers before it reads the socket), far below how long a hanging fault hangs.
FAST = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "DOWNLOAD_TIMEOUT": 5,
    "RETRY_TIMES": 1,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    "BACKOFF_MAX_DELAY": 1,
}


WAIT_S = 240.0  # the longest a test waits for the crawl to reach a state (a loaded machine is slow)
HANG_S = 600.0  # a hanging fault's silence: longer than any crawl here takes, loaded or not


@pytest.fixture
def site() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def register(tmp_path: Path, db_path: Path, urls: list[str]) -> dict[str, str]:
    """One brand per source URL (brand-0, brand-1...), all served by one vendor; url -> source id."""
    load_sources(tmp_path, db_path, {f"brand-{n}": [url] for n, url in enumerate(urls)})
    return {url: source_id(url) for url in urls}


def statuses(db_path: Path) -> dict[str, str]:
    return {
        r["url"]: r["last_crawl_status"] for r in rows(db_path, "SELECT url, last_crawl_status FROM sources")
    }


def bodies(db_path: Path) -> list[str]:
    return sorted(r["body"] for r in rows(db_path, "SELECT body FROM reviews"))


def one_review(rid: str) -> str:
    return review_page([review(rid, f"Review {rid}: the agent sorted it out.")])


def test_redirects_obey_the_source_scope_and_loops_end(
    tmp_path: Path, db_path: Path, site: FaultServer
) -> None:
    site.add("/moved/", redirect("/moved/new/", 301))  # in scope: followed
    site.add("/moved/new/", page(one_review("M1")))
    site.add("/offhost/", redirect(site.url("/offhost/", host="localhost")))  # same server, other host
    site.add("/offpath/", redirect("/elsewhere/"))  # same host, outside the source's path
    site.add("/elsewhere/", page(one_review("X1")))
    site.add("/self/", redirect("/self/"))
    site.add("/ping/", redirect("/ping/pong/"))
    site.add("/ping/pong/", redirect("/ping/"))
    site.add(
        "/chain/",
        lambda handler, request: redirect(f"/chain/?page={request.page_number() + 1}")(handler, request),
    )
    refresh_to = site.url("/refresh/", host="localhost")
    site.add(
        "/refresh/",
        page(f'<html><head><meta http-equiv="refresh" content="0; url={refresh_to}"></head></html>'),
    )
    paths = ("/moved/", "/offhost/", "/offpath/", "/self/", "/ping/", "/chain/", "/refresh/")
    urls = [site.url(p) for p in paths]
    register(tmp_path, db_path, urls)

    run = run_crawl(db_path, vendors=["acme-contact"], settings=FAST)

    assert "/elsewhere/" not in site.paths()
    assert [r.host for r in site.requests if r.host.startswith("localhost")] == []
    assert [len(site.hits(p)) for p in ("/self/", "/ping/", "/ping/pong/")] == [1, 1, 1]
    assert run["detail"]["skipped"]["out_of_scope"] == 3
    assert len(site.hits("/chain/")) == 6  # the first request and REDIRECT_MAX_TIMES redirects
    assert run["errors_by_reason"] == {"redirect_loop": 2, "too_many_redirects": 1}
    assert bodies(db_path) == ["Review M1: the agent sorted it out."]
    assert statuses(db_path) == {
        urls[0]: "ok",
        urls[1]: "empty: out_of_scope_redirect",
        urls[2]: "empty: out_of_scope_redirect",
        urls[3]: "failed: redirect_loop",
        urls[4]: "failed: redirect_loop",
        urls[5]: "failed: too_many_redirects",
        urls[6]: "empty: out_of_scope_redirect",
    }


def test_pagination_stops_at_the_page_budget_on_repeats_and_on_empty_pages(
    tmp_path: Path, db_path: Path, site: FaultServer
) -> None:
    site.add("/forever/", infinite_pagination(per_page=2))
    site.add("/same/", repeating_pagination([review("S1", "Same again."), review("S2", "And again.")]))
    site.add("/nothing/", lambda handler, request: page(
        f'<html><head><link rel="next" href="/nothing/?page={request.page_number() + 1}"></head>'
        "<body><p>No reviews here.</p></body></html>")(handler, request))  # fmt: skip
    urls = [site.url(p) for p in ("/forever/", "/same/", "/nothing/")]
    register(tmp_path, db_path, urls)

    run = run_crawl(
        db_path, vendors=["acme-contact"], settings={**FAST, "REPUTATION_MAX_PAGES_PER_SOURCE": 5}
    )

    assert len(site.hits("/forever/")) == 5
    assert len(site.hits("/same/")) == 2  # the second page brought nothing new
    assert len(site.hits("/nothing/")) == 3  # REPUTATION_MAX_EMPTY_PAGES
    assert run["detail"]["stopped"] == {"page_budget": 1, "stopped_repeating": 1, "stopped_empty": 1}
    assert run["items_new"] == 5 * 2 + 2
    assert run["dropped_by_reason"] == {"duplicate_in_run": 2}
    assert statuses(db_path) == {urls[0]: "ok", urls[1]: "ok", urls[2]: "empty: no_known_markup"}


def test_the_store_flushes_on_its_timer_when_no_item_arrives(
    tmp_path: Path, db_path: Path, site: FaultServer
) -> None:
    """Reviews, then only repeats while another source hangs; a SIGKILL then loses nothing stored."""
    killed: list[int] = []

    def kill_the_crawl(handler: Any, request: Request) -> int:
        # The crawl cannot end while this request hangs, and no item reaches the store after the
        # first page: only the store's timer can write the reviews. Wait for that (and for the page
        # of repeats), however slow the machine, then kill the crawl; give up after WAIT_S.
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if site.hits("/listing/?page=2") and len(bodies(db_path)) == len(reviews):
                break
            time.sleep(0.1)
        pid = rows(db_path, "SELECT pid FROM crawl_runs WHERE status = 'running'")[0]["pid"]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        return 0

    reviews = [review("K1", "Kept after the crash."), review("K2", "Kept as well.")]
    site.add("/listing/", page(review_page(reviews, next_href="/listing/?page=2")))
    site.add("/listing/?page=2", page(review_page(reviews)))  # duplicates only: no item reaches the store
    site.add("/stuck/", kill_the_crawl)
    register(tmp_path, db_path, [site.url("/listing/"), site.url("/stuck/")])
    settings = {
        **FAST,
        "DOWNLOAD_TIMEOUT": 2 * WAIT_S,  # /stuck/ hangs until the crawl is killed
        "REPUTATION_FLUSH_SECONDS": 0.5,
        "REPUTATION_BATCH_SIZE": 1000,
    }

    with pytest.raises(CrawlError, match="exited with status -9"):
        run_crawl(db_path, vendors=["acme-contact"], settings=settings)

    assert killed and len(site.hits("/listing/?page=2")) == 1
    assert bodies(db_path) == ["Kept after the crash.", "Kept as well."]


def test_bodies_over_the_size_cap_are_dropped_and_counted(
    tmp_path: Path, db_path: Path, site: FaultServer
) -> None:
    site.add("/big/", huge(400_000))
    site.add("/big-unannounced/", huge(400_000, announce=False))
    site.add("/fine/", page(one_review("F1")))
    urls = [site.url(p) for p in ("/big/", "/big-unannounced/", "/fine/")]
    register(tmp_path, db_path, urls)

    run = run_crawl(db_path, vendors=["acme-contact"], settings={**FAST, "DOWNLOAD_MAXSIZE": 100_000})

    assert run["errors_by_reason"] == {"too_large": 2}
    assert run["status"] == "ok" and run["items_new"] == 1
    assert statuses(db_path) == {urls[0]: "failed: too_large", urls[1]: "failed: too_large", urls[2]: "ok"}


def test_an_undeclared_latin1_page_is_read_as_latin1(
    tmp_path: Path, db_path: Path, site: FaultServer
) -> None:
    html = review_page([review("L1", "Le service était très rapide, merci à l'équipe.")], charset=False)
    site.add("/fr/", undeclared(html, "latin-1"))
    register(tmp_path, db_path, [site.url("/fr/")])

    run = run_crawl(db_path, vendors=["acme-contact"], settings=FAST)

    assert bodies(db_path) == ["Le service était très rapide, merci à l'équipe."]
    assert run["detail"]["counted"]["charset_guessed"] == 1


def test_hostile_review_text_is_stored_as_text_and_counted(
    tmp_path: Path, db_path: Path, site: FaultServer
) -> None:
    hostile = [
        review("H1", "<script>alert('x')</script>Great agent."),
        review("H2", "Broken \ud800 surrogate."),
        review("H3", "Coder \U0001f469\u200d\U0001f4bb helped me."),
        review("H4", "Prices went from <10 to >20 dollars."),
    ]
    site.add("/hostile/", page(review_page(hostile, ascii_json=True)))
    register(tmp_path, db_path, [site.url("/hostile/")])

    run = run_crawl(db_path, vendors=["acme-contact"], settings=FAST)

    assert bodies(db_path) == [
        "Broken \ufffd surrogate.",
        "Coder \U0001f469\u200d\U0001f4bb helped me.",
        "Great agent.",
        "Prices went from <10 to >20 dollars.",
    ]
    assert run["detail"]["counted"]["invalid_chars_replaced"] == 1


def test_server_faults_end_each_source_with_its_reason(
    tmp_path: Path, db_path: Path, site: FaultServer
) -> None:
    ok = page(one_review("B1"))
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
    js_shell = '<html><body><div id="root"></div><script src="/static/app.js"></script></body></html>'
    pages: dict[str, Fault | list[Fault]] = {
        "/e500/": status(500, "boom"),
        "/hang/": hang(HANG_S),  # answers only after the bound below: a working timeout is the only way out
        "/cut/": truncated(one_review("C1")),
        "/deep/": page(deep_jsonld()),
        "/malformed/": page(malformed_jsonld()),
        "/forbidden/": status(403, "no"),
        "/captcha/": page(
            "<html><title>Are you a robot?</title><body><div class='g-recaptcha'></div></body></html>"
        ),
        "/login/": page(
            "<html><title>Sign in</title><body><form><input type='password'></form></body></html>"
        ),
        "/app/": page(js_shell),
        "/busy-date/": [status(503, headers={"Retry-After": soon}), ok],
        "/busy-absurd/": [status(429, headers={"Retry-After": "9" * 40}), ok],
        "/busy-nonsense/": [status(429, headers={"Retry-After": "tomorrow-ish"}), ok],
    }
    for path, fault in pages.items():
        site.add(path, fault)
    urls = {path: site.url(path) for path in pages}
    register(tmp_path, db_path, list(urls.values()))

    started = time.monotonic()
    run = run_crawl(db_path, vendors=["acme-contact"], settings=FAST)

    assert time.monotonic() - started < HANG_S / 2  # nothing hung: no wait outlasted its bound
    assert run["errors_by_reason"] == {"connection_lost": 1, "http_403": 1, "http_500": 1, "timeout": 1}
    assert run["detail"]["backoffs"] == 3 and run["detail"]["backoff_max_wait"] <= 1.0
    assert run["items_new"] == 3  # the three busy sources, once their wait was over
    assert statuses(db_path) == {
        urls["/e500/"]: "failed: http_500",
        urls["/hang/"]: "failed: timeout",
        urls["/cut/"]: "failed: connection_lost",
        urls["/deep/"]: "empty: no_known_markup",
        urls["/malformed/"]: "empty: no_known_markup",
        urls["/forbidden/"]: "empty: blocked",
        urls["/captcha/"]: "empty: blocked",
        urls["/login/"]: "empty: sign_in_page",
        urls["/app/"]: "empty: javascript_only",
        urls["/busy-date/"]: "ok",
        urls["/busy-absurd/"]: "ok",
        urls["/busy-nonsense/"]: "ok",
    }
    assert run["detail"]["extract_errors"]  # the broken JSON-LD was reported


def test_due_only_retries_what_was_not_ok_and_the_summary_names_it(
    tmp_path: Path, db_path: Path, site: FaultServer
) -> None:
    site.add("/good/", page(one_review("G1")))
    site.add("/gone/", status(500))
    site.add(
        "/login/", page("<html><title>Log in</title><body><form><input type='password'></form></body></html>")
    )
    urls = [site.url(p) for p in ("/good/", "/gone/", "/login/")]
    ids = register(tmp_path, db_path, urls)
    settings = [arg for key, value in FAST.items() for arg in ("-s", f"{key}={value}")]

    result = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", "--vendor", "acme-contact", *settings])

    assert result.exit_code == 0, result.output
    assert "sources 3: empty 1, failed 1, ok 1" in result.output
    assert f"empty {ids[urls[2]]}: sign_in_page" in result.output
    assert f"failed {ids[urls[1]]}: http_500" in result.output
    db = connect(db_path)
    try:
        due = {s.url for s in select_sources(db, due_only=True)}
    finally:
        db.close()
    assert due == {urls[1], urls[2]}  # the ok source waits for its interval; the others are retried
