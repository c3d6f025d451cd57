"""The extraction workers beside the crawl (crawler.extraction_pool), driven by a real asyncio loop
and real forked processes: a page comes back extracted and normalised exactly as the crawl process
would do it, an error comes back as an error, a killed worker fails its pages instead of hanging
them, and closing ends the workers cleanly."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
from datetime import datetime

import pytest
from crawl_support import review_node

from crawler.extraction_pool import WorkerFailed, _Worker, extract_page
from crawler.extractors import AUTO, extract_reviews
from crawler.fields import normalize_item_counted
from crawler.identity import body_hash, item_content_key, item_review_id, normalise_site_id

CRAWLED_AT = "2026-11-29T12:00:00+00:00"
SOURCE = "acme-trustpilot"
URL = "http://127.0.0.1:1/reviews/"


def page(n: int) -> bytes:
    """A listing page with two schema.org reviews, one with an invalid character and a relative date."""
    reviews = [
        review_node({"body": f"Waited an hour on hold, page {n}.\ud800", "rating": 1, "author": "Ann",
                     "date": "3 weeks ago"}, f"#r{n}a"),
        review_node({"body": f"The agent sorted it out in minutes, page {n}.", "rating": 5, "author": "Bo",
                     "date": "2026-10-01"}, f"#r{n}b"),
    ]  # fmt: skip
    data = json.dumps({"@context": "https://schema.org", "@graph": reviews}, ensure_ascii=True)
    return f'<html><body><script type="application/ld+json">{data}</script></body></html>'.encode()


def in_process(body: bytes) -> list[tuple[object, ...]]:
    """What the crawl process itself makes of the page: extracted, normalised by the pipeline's
    function, then named by crawler.identity's own functions for ids, content keys and hashes."""
    result = extract_reviews(body, URL, AUTO, encoding="utf-8")
    rows: list[tuple[object, ...]] = []
    for review in result.reviews:
        item, replaced = normalize_item_counted(copy.copy(review), datetime.fromisoformat(CRAWLED_AT))
        item.source_id = SOURCE
        item.site_review_id = normalise_site_id(item.site_review_id)
        names = (item_review_id(item), item_content_key(item), body_hash(item.body or ""))
        rows.append((item.body, item.rating, item.published_at, item.language, replaced, *names))
    return rows


def test_a_page_done_in_the_worker_equals_the_crawl_process_reading() -> None:
    async def scenario() -> list[tuple[object, ...]]:
        worker = _Worker(asyncio.get_running_loop(), [])
        await worker.connect()
        try:
            result = await worker.submit(1, (page(1), URL, AUTO, "utf-8", SOURCE, CRAWLED_AT))
        finally:
            await worker.close()
        assert worker.process.exitcode == 0  # it ended on its own when its pipe closed
        assert all(r.normalised and r.identified and r.crawled_at == CRAWLED_AT for r in result.reviews)
        return [
            (r.body, r.rating, r.published_at, r.language, r.invalid_chars_replaced, r.id, r.content_key,
             r.body_hash)
            for r in result.reviews
        ]  # fmt: skip

    rows = asyncio.run(scenario())
    assert rows == in_process(page(1))
    assert rows[0][4] == 1 and rows[0][2] == "2026-11-08"  # the surrogate was replaced; "3 weeks ago"


def test_the_worker_function_leaves_a_review_without_text_raw() -> None:
    empty = review_node({"body": "   ", "rating": 3, "author": "Cy", "date": "2026-10-01"}, "#e")
    data = json.dumps({"@context": "https://schema.org", "@graph": [empty]})
    body = f'<script type="application/ld+json">{data}</script>'.encode()
    result = extract_page(body, URL, AUTO, "utf-8", SOURCE, CRAWLED_AT)
    (review,) = result.reviews
    assert not review.normalised and review.published_at is None  # left raw for the validate pipeline
    assert not review.identified and review.id is None


def test_an_error_comes_back_and_the_worker_goes_on() -> None:
    async def scenario() -> None:
        worker = _Worker(asyncio.get_running_loop(), [])
        await worker.connect()
        try:
            with pytest.raises(WorkerFailed, match="no-such-layout"):
                await worker.submit(1, (page(1), URL, "no-such-layout", "utf-8", SOURCE, CRAWLED_AT))
            done = await worker.submit(2, (page(2), URL, AUTO, "utf-8", SOURCE, CRAWLED_AT))
            assert len(done.reviews) == 2 and worker.alive
        finally:
            await worker.close()

    asyncio.run(scenario())


def test_a_killed_worker_fails_its_pages_and_takes_no_more() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        first = _Worker(loop, [])
        second = _Worker(loop, [first])  # forked with the first one's pipe ends, which it must close
        for worker in (first, second):
            await worker.connect()
        try:
            pid = first.process.pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)  # nothing it was given can be answered
            out = [first.submit(n, (page(n), URL, AUTO, "utf-8", SOURCE, CRAWLED_AT)) for n in range(3)]
            os.kill(pid, signal.SIGKILL)
            for future in out:  # failed, not left waiting
                with pytest.raises(WorkerFailed, match="gone"):
                    await asyncio.wait_for(future, 60)
            assert not first.alive
            with pytest.raises(WorkerFailed):
                first.submit(9, (page(9), URL, AUTO, "utf-8", SOURCE, CRAWLED_AT))
            done = await second.submit(4, (page(4), URL, AUTO, "utf-8", SOURCE, CRAWLED_AT))
            assert len(done.reviews) == 2
        finally:
            for worker in (first, second):
                await worker.close()
        assert (
            second.process.exitcode == 0
        )  # the second saw its pipe end although the first was forked before it

    asyncio.run(scenario())
