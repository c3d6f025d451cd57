"""Crawls with the real Scrapy engine (a child process) against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from crawl_support import load_sources, review_node, rows
from scrapy import signals
from scrapy.utils.test import get_crawler
from servers import LocalServer, Reply

from crawler.crawl_db import CrawlDatabase
from crawler.launcher import CrawlError, run_crawl, select_sources
from crawler.middlewares import QuietItemLogFormatter, parse_retry_after
from crawler.sources import read_sources_file, write_sources_file
from reputation.cli import cli
from reputation.registry.loader import source_id
from spiders.reviews import ReviewsSpider
from storage.database import connect
from storage.errors import NotFoundError, ReputationError
from storage.runlog import this_host

REPO = Path(__file__).resolve().parent.parent

# Fast and deterministic: no AutoThrottle, no delay, short timeouts, few retries.
FAST = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "DOWNLOAD_TIMEOUT": 1,
    "RETRY_TIMES": 2,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 4,
}


def review(
    rid: str, body: str, *, author: str = "Ana P.", rating: int = 4, date: str = "2024-05-03"
) -> dict[str, Any]:
    return {"id": rid, "body": body, "author": author, "rating": rating, "date": date}


def trust_page(
    page_url: str,
    reviews: list[dict[str, Any]],
    *,
    next_href: str | None = None,
    links: str = "",
    head: str = "",
) -> str:
    """A review-platform page: JSON-LD @graph with an Organization and Review nodes."""
    org = f"{page_url}#org"
    graph: list[dict[str, Any]] = [
        {
            "@type": "Organization",
            "@id": org,
            "name": "Acme",
            "review": [{"@id": f"{page_url}#r-{r['id']}"} for r in reviews],
        }
    ]
    for r in reviews:
        graph.append(
            review_node(r, f"{page_url}#r-{r['id']}", itemReviewed={"@id": org}, headline=f"Review {r['id']}")
        )
    data = json.dumps({"@context": "https://schema.org", "@graph": graph})
    rel_next = f'<link rel="next" href="{next_href}">' if next_href else ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Acme</title>{rel_next}{head}'
        f'<script type="application/ld+json">{data}</script></head><body><h1>Acme</h1>{links}</body></html>'
    )


def three_page_site(site: LocalServer) -> dict[str, str]:
    """/trust/acme/ -> (rel=next) page 2 -> (numbered link) page 3, plus links that must not be followed."""
    p1, p2, p3 = "/trust/acme/", "/trust/acme/page/2/", "/trust/acme/page/3/"
    offsite = f"http://localhost:{site.port}/trust/acme/page/9/"  # another host name for the same server
    outside = "/trust/other-brand/page/2/"
    site.route(p1, trust_page(site.url(p1), [review("T1", "Agent fixed it fast."), review("T2", "Waited an hour.")],
                              next_href=p2, links=f'<a href="{offsite}" rel="next">next</a>'))  # fmt: skip
    site.route(p2, trust_page(site.url(p2), [review("T3", "Refund came quickly."), review("T1", "Agent fixed it fast.")],
                              links=f'<nav><a href="{p1}">1</a> <a href="{p3}">3</a> <a href="{outside}">2</a></nav>'))  # fmt: skip
    site.route(p3, trust_page(site.url(p3), [review("T4", "Never answered my email.", rating=1)],
                              links=f'<a href="{p2}">2</a>'))  # fmt: skip
    return {"p1": p1, "p2": p2, "p3": p3, "offsite": offsite, "outside": outside}


def test_pagination_recrawl_and_edits(tmp_path: Path, db_path: Path, local_server: LocalServer) -> None:
    paths = three_page_site(local_server)
    load_sources(tmp_path, db_path, {"acme-air": [local_server.url(paths["p1"])]})

    first = run_crawl(db_path, brands=["acme-air"], settings=FAST)

    for page in ("p1", "p2", "p3"):
        assert len(local_server.hits_for(paths[page])) == 1, page
    assert "/trust/acme/page/9/" not in local_server.paths()  # offsite (other host) not followed
    assert paths["outside"] not in local_server.paths()  # outside the source's path not followed
    stored = rows(db_path, "SELECT * FROM reviews ORDER BY id")
    listing = source_id(local_server.url(paths["p1"]))
    assert [r["id"] for r in stored] == [f"site:{listing}:T{n}" for n in (1, 2, 3, 4)]
    assert all(r["first_crawl_run_id"] == first["id"] and r["brand_id"] == "acme-air" for r in stored)
    assert all(r["author_hash"] and "Ana" not in r["author_hash"] for r in stored)
    assert first["status"] == "ok" and first["finished_at"]
    assert first["pages"] == 3
    assert (first["items_new"], first["items_updated"], first["items_unchanged"]) == (4, 0, 0)
    assert first["dropped_by_reason"] == {"duplicate_in_run": 1} and first["items_dropped"] == 1
    assert first["errors"] == 0 and first["errors_by_reason"] == {}
    assert first["selection"] == {"brands": ["acme-air"], "due_only": False, "vendors": []}
    assert first["detail"]["offsite_filtered"] + first["detail"]["skipped"].get("out_of_scope", 0) >= 2
    source = rows(db_path, "SELECT * FROM sources")[0]
    assert source["last_crawl_status"] == "ok" and source["last_crawl_at"]

    # full=True: the whole listing again (a plain re-crawl would be incremental, tests/test_incremental.py)
    second = run_crawl(db_path, brands=["acme-air"], full=True, settings=FAST)
    assert (second["items_new"], second["items_updated"], second["items_unchanged"]) == (0, 0, 4)
    again = rows(db_path, "SELECT * FROM reviews ORDER BY id")
    assert len(again) == 4
    assert all(
        r["last_crawl_run_id"] == second["id"] and r["first_crawl_run_id"] == first["id"] for r in again
    )
    assert all(new["last_seen"] >= old["last_seen"] for new, old in zip(again, stored, strict=True))

    # The site edits review T2: the row is updated and the earlier hash kept.
    local_server.route(paths["p1"], trust_page(local_server.url(paths["p1"]),
                       [review("T1", "Agent fixed it fast."), review("T2", "Waited an hour. Edit: they called back.")],
                       next_href=paths["p2"]))  # fmt: skip
    third = run_crawl(db_path, brands=["acme-air"], full=True, settings=FAST)
    assert (third["items_new"], third["items_updated"], third["items_unchanged"]) == (0, 1, 3)
    edited = rows(db_path, "SELECT * FROM reviews WHERE id = ?", [f"site:{listing}:T2"])[0]
    before = next(r for r in stored if r["id"] == f"site:{listing}:T2")
    assert "they called back" in edited["body"]
    assert json.loads(edited["previous_body_hashes"]) == [before["body_hash"]]
    assert edited["body_hash"] != before["body_hash"] and edited["first_seen"] == before["first_seen"]


def test_pages_extracted_in_the_worker_process_store_the_same_rows(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    """crawler.extraction_pool parses listing pages beside the crawl; the rows must not change."""
    paths = three_page_site(local_server)
    load_sources(tmp_path, db_path, {"acme-air": [local_server.url(paths["p1"])]})
    other = tmp_path / "in-process.db"
    load_sources(tmp_path, other, {"acme-air": [local_server.url(paths["p1"])]})
    pooled = run_crawl(db_path, brands=["acme-air"], settings={**FAST, "REPUTATION_EXTRACT_PROCESSES": 1})
    alone = run_crawl(other, brands=["acme-air"], settings={**FAST, "REPUTATION_EXTRACT_PROCESSES": 0})
    assert pooled["detail"]["counted"].get("extracted_in_pool") == 3
    assert "extracted_in_pool" not in alone["detail"]["counted"]
    assert "extract_pool_fallback" not in pooled["detail"]["counted"]
    columns = "id, source_id, brand_id, url, site_review_id, title, body, body_hash, rating, " \
        "published_at, date_precision, language, extractor, content_key"
    query = f"SELECT {columns} FROM reviews ORDER BY id"
    assert rows(db_path, query) == rows(other, query) and len(rows(db_path, query)) == 4
    assert pooled["dropped_by_reason"] == alone["dropped_by_reason"] == {"duplicate_in_run": 1}


def test_robots_txt_disallow_is_respected(tmp_path: Path, db_path: Path, local_server: LocalServer) -> None:
    site = local_server
    site.robots("User-agent: *\nDisallow: /forum/acme/drafts/\n")
    draft = "/forum/acme/drafts/1/"
    site.route("/forum/acme/", trust_page(site.url("/forum/acme/"), [review("F1", "Fine service.")], next_href=draft,
                                          links=f'<a href="{draft}">2</a>'))  # fmt: skip
    site.route(draft, trust_page(site.url(draft), [review("F9", "A draft that must stay unread.")]))
    load_sources(tmp_path, db_path, {"acme-air": [site.url("/forum/acme/")]})

    run = run_crawl(db_path, brands=["acme-air"], settings=FAST)

    assert site.hits_for("/robots.txt")
    assert draft not in site.paths()
    assert all("reputation-bot/" in hit.headers.get("User-Agent", "") for hit in site.hits)
    assert run["detail"]["robots_forbidden"] == 1 and run["detail"]["skipped"] == {"robots_txt": 1}
    assert run["errors"] == 0 and run["items_new"] == 1


def test_retry_after_is_honoured(tmp_path: Path, db_path: Path, local_server: LocalServer) -> None:
    site = local_server
    page = "/trust/acme/"
    ok = trust_page(site.url(page), [review("T1", "Slow site, good agent.")])
    site.route(page, [Reply(429, "slow down", headers={"Retry-After": "2"}), Reply(200, ok)])
    load_sources(tmp_path, db_path, {"acme-air": [site.url(page)]})

    run = run_crawl(db_path, brands=["acme-air"], settings=FAST)

    hits = site.hits_for(page)
    assert [h.status for h in hits] == [429, 200]
    assert hits[1].at - hits[0].at >= 2.0
    assert run["detail"]["backoffs"] == 1 and run["detail"]["backoff_max_wait"] == 2.0
    assert run["items_new"] == 1 and run["errors"] == 0


def test_errors_are_counted_and_the_crawl_goes_on(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    site = local_server
    site.route("/broken/", "server error", status=500)
    site.route(
        "/slow/", trust_page(site.url("/slow/"), [review("S1", "First page is fine.")], next_href="/slow/2/")
    )
    site.route("/slow/2/", trust_page(site.url("/slow/2/"), [review("S2", "Too late.")]), delay=2.0)
    bad_json = '<script type="application/ld+json">{"@graph": [ {"@type": "Review", </script>'
    site.route(
        "/messy/",
        f"<html><head>{bad_json}<link rel='next' href='/messy/2/'></head><body><p>oops</p></body></html>",
    )
    site.route("/messy/2/", trust_page(site.url("/messy/2/"), [review("M1", "Second page still parsed.")]))
    load_sources(tmp_path, db_path, {
        "broken-brand": [site.url("/broken/")],
        "slow-brand": [site.url("/slow/")],
        "messy-brand": [site.url("/messy/")],
    })  # fmt: skip

    run = run_crawl(db_path, vendors=["acme-contact"], settings=FAST, log_path=tmp_path / "crawl.log")

    assert [h.status for h in site.hits_for("/broken/")] == [500, 500, 500]  # first try + RETRY_TIMES=2
    assert len(site.hits_for("/slow/2/")) == 3  # timed out, retried twice
    assert run["errors_by_reason"] == {"http_500": 1, "timeout": 1} and run["errors"] == 2
    assert run["status"] == "ok"  # some sources worked
    assert run["detail"]["retries"] == 4 and run["detail"]["retries_exhausted"] == 2
    assert run["detail"]["extract_errors"]  # the broken JSON-LD was reported ...
    stored = {r["id"] for r in rows(db_path, "SELECT id FROM reviews")}
    assert stored == {f"site:{source_id(site.url('/slow/'))}:S1", f"site:{source_id(site.url('/messy/'))}:M1"}  # ... and its next page still crawled
    status = {
        r["url"]: r["last_crawl_status"] for r in rows(db_path, "SELECT url, last_crawl_status FROM sources")
    }
    assert status == {
        site.url("/broken/"): "failed: http_500",
        site.url("/slow/"): "partial",
        site.url("/messy/"): "ok",
    }
    broken = rows(
        db_path, "SELECT last_crawl_at FROM sources WHERE id = ?", [source_id(site.url("/broken/"))]
    )[0]
    assert broken["last_crawl_at"] is None  # a failed source stays due


def test_every_source_failing_raises_and_is_recorded(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    load_sources(tmp_path, db_path, {"gone-brand": [local_server.url("/gone/")]})

    with pytest.raises(CrawlError, match="failed") as caught:
        run_crawl(db_path, brands=["gone-brand"], settings=FAST)

    assert caught.value.run is not None and caught.value.run["errors_by_reason"] == {"http_404": 1}
    run = rows(db_path, "SELECT status, pages, errors FROM crawl_runs")[0]
    assert run == {"status": "failed", "pages": 1, "errors": 1}


def test_unknown_names_are_refused_before_crawling(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    load_sources(tmp_path, db_path, {"acme-air": [local_server.url("/trust/acme/")]})
    with pytest.raises(NotFoundError, match="vendor 'nobody'.*brand 'nothing'"):
        run_crawl(db_path, vendors=["nobody"], brands=["nothing", "acme-air"])
    assert rows(db_path, "SELECT * FROM crawl_runs") == []
    assert local_server.hits == []


def test_selection_by_vendor_and_due_only(tmp_path: Path, db_path: Path) -> None:
    load_sources(
        tmp_path, db_path,
        {"served": ["http://127.0.0.1:9/a/"], "other": ["http://127.0.0.1:9/b/", "http://127.0.0.1:9/c/"]},
        vendor_brands=["served"],
    )  # fmt: skip
    now = datetime(2024, 6, 1, 12, tzinfo=UTC)
    db = connect(db_path)
    try:
        db.execute(
            "UPDATE sources SET last_crawl_at = ? WHERE url LIKE '%/b/'",
            [(now - timedelta(hours=2)).isoformat()],
        )
        db.execute(
            "UPDATE sources SET last_crawl_at = ? WHERE url LIKE '%/c/'",
            [(now - timedelta(hours=25)).isoformat()],
        )
        assert [s.url for s in select_sources(db, vendors=["acme-contact"])] == ["http://127.0.0.1:9/a/"]
        assert len(select_sources(db)) == 3
        due = select_sources(db, brands=["other"], due_only=True, now=now)
        assert [s.url for s in due] == ["http://127.0.0.1:9/c/"]
    finally:
        db.close()


def test_parse_retry_after() -> None:
    now = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(b"120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize(("level", "logged"), [("DEBUG", True), ("INFO", False), ("WARNING", False)])
def test_item_log_record_only_when_debug_shows_it(level: str, logged: bool) -> None:
    import scrapy
    from scrapy.http import HtmlResponse
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(settings_dict={"LOG_LEVEL": level})
    formatter = QuietItemLogFormatter.from_crawler(crawler)
    spider = scrapy.Spider.from_crawler(crawler, name="reviews")
    response = HtmlResponse("http://127.0.0.1/trust/acme/", body=b"<html></html>")
    record = formatter.scraped({"body": "Good."}, response, spider)
    assert (record is not None) == logged
    if record is not None:
        assert record["msg"].startswith("Scraped from")
    dropped = formatter.dropped({"body": ""}, ValueError("missing_body"), response, spider)
    assert "Dropped" in dropped["msg"]  # drops keep Scrapy's own record


def test_cli_crawl_prints_a_summary(tmp_path: Path, db_path: Path, local_server: LocalServer) -> None:
    site = local_server
    site.route(
        "/trust/acme/", trust_page(site.url("/trust/acme/"), [review("T1", "Good."), review("T2", "Bad.")])
    )
    load_sources(tmp_path, db_path, {"acme-air": [site.url("/trust/acme/")]})
    settings = [arg for key, value in FAST.items() for arg in ("-s", f"{key}={value}")]

    result = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", "--brand", "acme-air", *settings])
    assert result.exit_code == 0, result.output
    assert "pages 1" in result.output and "new 2" in result.output

    unknown = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", "--vendor", "nobody"])
    assert unknown.exit_code != 0 and "vendor 'nobody'" in unknown.output

    bad = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", "-s", "NOEQUALS"])
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output


def test_scrapy_crawl_works_from_the_repository_root(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    site = local_server
    site.route("/trust/acme/", trust_page(site.url("/trust/acme/"), [review("T1", "Plain scrapy crawl.")]))
    load_sources(tmp_path, db_path, {"acme-air": [site.url("/trust/acme/")]})
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    env["REPUTATION_DB"] = str(db_path)
    argv = [sys.executable, "-m", "scrapy", "crawl", "reviews", "-a", "brand=acme-air"]
    argv += [arg for key, value in FAST.items() for arg in ("-s", f"{key}={value}")]

    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr[-2000:]
    run = rows(db_path, "SELECT status, items_new, selection FROM crawl_runs")
    assert run == [
        {
            "status": "ok",
            "items_new": 1,
            "selection": json.dumps({"brands": ["acme-air"], "due_only": False, "vendors": []}),
        }
    ]


def test_a_killed_crawl_is_reported_and_its_row_marked_interrupted_by_the_next_run(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    site = local_server
    page = "/trust/acme/"
    ok = trust_page(site.url(page), [review("T1", "Survived the crash.")])
    killed: list[int] = []

    def kill_the_crawl() -> None:
        """SIGKILL the crawl process mid-crawl: its run-log row names it."""
        pid = rows(db_path, "SELECT pid FROM crawl_runs WHERE status = 'running'")[0]["pid"]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    site.route(page, [Reply(200, ok, action=kill_the_crawl), Reply(200, ok)])
    load_sources(tmp_path, db_path, {"acme-air": [site.url(page)]})

    with pytest.raises(CrawlError, match="exited with status -9; end of its log") as caught:
        run_crawl(db_path, brands=["acme-air"], settings=FAST)

    dead = caught.value.run
    assert dead is not None and killed == [dead["pid"]] and dead["pid"] != os.getpid()
    assert dead["host"] == this_host() and dead["status"] == "running"
    # The parent only reported: the dead child's row is as the child left it.
    assert rows(db_path, "SELECT status, finished_at FROM crawl_runs") == [{"status": "running", "finished_at": None}]

    second = run_crawl(db_path, brands=["acme-air"], settings=FAST)

    assert second["status"] == "ok" and second["items_new"] == 1 and second["id"] != dead["id"]
    assert second["pid"] not in (None, os.getpid(), dead["pid"]) and second["host"] == this_host()
    first = rows(db_path, "SELECT status, finished_at FROM crawl_runs WHERE id = ?", [dead["id"]])[0]
    assert first["status"] == "interrupted" and first["finished_at"]


def test_crawl_runs_from_an_unrelated_folder(
    tmp_path: Path, db_path: Path, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = local_server
    site.route("/trust/acme/", trust_page(site.url("/trust/acme/"), [review("T1", "Found from anywhere.")]))
    load_sources(tmp_path, db_path, {"acme-air": [site.url("/trust/acme/")]})
    # Inside another Scrapy project (its scrapy.cfg names other settings), in a folder whose
    # same-named packages would break the crawl if the child imported them from there.
    project = tmp_path / "other-project"
    elsewhere = project / "work"
    for package in ("crawler", "spiders", "storage"):
        (elsewhere / package).mkdir(parents=True)
        (elsewhere / package / "__init__.py").write_text("raise ImportError('imported from the current folder')\n")
    (project / "scrapy.cfg").write_text("[settings]\ndefault = nowhere.settings\n")
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("SCRAPY_SETTINGS_MODULE", raising=False)

    run = run_crawl(db_path, brands=["acme-air"], settings=FAST)

    assert run["status"] == "ok" and run["items_new"] == 1
    assert sorted(path.name for path in elsewhere.iterdir()) == ["crawler", "spiders", "storage"]


def test_plain_scrapy_crawl_needs_a_database_and_runs_from_any_folder(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    site = local_server
    site.route("/trust/acme/", trust_page(site.url("/trust/acme/"), [review("T1", "Plain crawl, any folder.")]))
    load_sources(tmp_path, db_path, {"acme-air": [site.url("/trust/acme/")]})
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPUTATION_", "SCRAPY_"))}
    env["SCRAPY_SETTINGS_MODULE"] = "crawler.settings"
    argv = [sys.executable, "-m", "scrapy", "crawl", "reviews", "-a", "brand=acme-air"]
    argv += [arg for key, value in FAST.items() for arg in ("-s", f"{key}={value}")]

    refused = subprocess.run(argv, cwd=empty, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "error: no database: set REPUTATION_DB=path/to/reputation.db in the environment "
        "or pass -s REPUTATION_DB=path/to/reputation.db"
    ]
    assert list(empty.iterdir()) == []  # no ./reputation.db created

    done = subprocess.run(
        argv, cwd=empty, env={**env, "REPUTATION_DB": str(db_path)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    assert rows(db_path, "SELECT status, items_new FROM crawl_runs") == [{"status": "ok", "items_new": 1}]
    assert list(empty.iterdir()) == []


def test_the_spider_takes_the_resolved_sources_or_selects_its_own(tmp_path: Path, db_path: Path) -> None:
    urls = ["http://127.0.0.1:9/a/", "http://127.0.0.1:9/b/"]
    load_sources(tmp_path, db_path, {"acme-air": urls})
    db = connect(db_path)
    try:
        resolved = select_sources(db, brands=["acme-air"])[:1]
    finally:
        db.close()
    handoff = tmp_path / "sources.json"
    selection = {"brands": ["acme-air"], "due_only": False, "vendors": []}
    write_sources_file(handoff, selection, resolved)
    assert read_sources_file(handoff) == (selection, resolved)

    # With the launcher's file the spider neither selects again nor needs the database.
    handed = get_crawler(ReviewsSpider)
    spider = ReviewsSpider.from_crawler(handed, sources_file=str(handoff))
    assert spider.sources == resolved and spider.selection == selection
    assert spider.allowed_domains == ["127.0.0.1"] and not CrawlDatabase.of(handed).is_open

    # Without it (plain `scrapy crawl reviews -a brand=...`) it selects through the crawl's connection.
    own = get_crawler(ReviewsSpider, settings_dict={"REPUTATION_DB": str(db_path)})
    spider = ReviewsSpider.from_crawler(own, brand="acme-air")
    assert [s.url for s in spider.sources] == urls
    holder = CrawlDatabase.of(own)
    assert holder.is_open
    own.signals.send_catch_log(signal=signals.engine_stopped)
    assert not holder.is_open

    with pytest.raises(ReputationError, match="no database: set REPUTATION_DB"):
        ReviewsSpider.from_crawler(get_crawler(ReviewsSpider), brand="acme-air")
    (tmp_path / "junk.json").write_text('{"version": 1, "sources": [{"id": 1}]}')
    with pytest.raises(ReputationError, match="junk.json: not a sources file"):
        read_sources_file(tmp_path / "junk.json")
