"""The crawl children's entry point (crawler.child) and the spider loader they start with.

Real child processes: ``python -m crawler.child`` must behave as ``python -m scrapy`` does (its
output, its exit status, its log) while skipping the interpreter's teardown, and the on-demand
spider loader must import only the spider a crawl runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from crawl_support import load_sources, modules_loaded_after
from servers import LocalServer
from test_crawl import FAST, three_page_site
from test_scrapy_without_db import REFUSAL, scrapy

from crawler.child import exit_status
from crawler.launcher import CHILD_MODULE, run_crawl


def child(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return scrapy(args, cwd, module=CHILD_MODULE, SCRAPY_SETTINGS_MODULE="crawler.settings", **env)


def test_exit_status_is_what_sys_exit_would_make_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert (exit_status(None), exit_status(0), exit_status(3)) == (0, 0, 3)
    assert exit_status("bad settings") == 1
    assert capsys.readouterr().err == "bad settings\n"


def test_output_is_flushed_before_the_prompt_exit(tmp_path: Path) -> None:
    done = child(["settings", "--get", "BOT_NAME"], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "reputation\n", "")


def test_a_refused_crawl_keeps_its_line_and_status(tmp_path: Path) -> None:
    done = child(["crawl", "reviews"], tmp_path, REPUTATION_DB="")
    assert (done.returncode, done.stderr.splitlines()) == (1, REFUSAL)


def test_the_crawl_log_is_whole_after_the_prompt_exit(
    tmp_path: Path, db_path: Path, local_server: LocalServer
) -> None:
    """The launcher's copy of the child's log and Scrapy's LOG_FILE both end with the closing stats."""
    paths = three_page_site(local_server)
    load_sources(tmp_path, db_path, {"acme-air": [local_server.url(paths["p1"])]})
    captured, log_file = tmp_path / "captured.log", tmp_path / "scrapy.log"
    run = run_crawl(db_path, brands=["acme-air"], settings={**FAST, "LOG_FILE": str(log_file)}, log_path=captured)
    assert run["status"] == "ok" and run["pages"] == 3
    last = log_file.read_text().rstrip().splitlines()[-1]
    assert "Spider closed (finished)" in last, last
    assert "'finish_reason': 'finished'" in log_file.read_text()


def _loaded_after(code: str) -> list[str]:
    """The ``spiders.*`` modules imported once ``code`` has run against the project's spider loader."""
    setup = (
        "from scrapy.utils.project import get_project_settings\n"
        "from scrapy.spiderloader import get_spider_loader\n"
        "loader = get_spider_loader(get_project_settings())\n"
    )
    return modules_loaded_after(setup + code, r"spiders\..+")


def test_a_crawl_imports_only_its_own_spider() -> None:
    assert _loaded_after("assert loader.load('reviews').name == 'reviews'") == ["spiders.reviews"]
    discovery = _loaded_after("assert loader.load('discovery').name == 'discovery'")
    assert "spiders.discovery" in discovery and "spiders.frontier" not in discovery  # it shares reviews' helpers


def test_listing_and_names_outside_the_rule_load_every_spider() -> None:
    everything = ["spiders.discovery", "spiders.frontier", "spiders.reviews"]
    listed = "assert sorted(loader.list()) == ['discovery', 'reviews', 'reviews_frontier'], loader.list()"
    assert _loaded_after(listed) == everything
    assert _loaded_after("assert loader.load('reviews_frontier').name == 'reviews_frontier'") == everything
    code = "try:\n    loader.load('no_such_spider')\nexcept KeyError as e:\n    print(e, file=sys.stderr)"
    assert _loaded_after(code) == everything


def test_a_child_whose_launcher_is_gone_stops_with_one_line(tmp_path: Path) -> None:
    """A crawl child started for a launcher that is no longer its parent exits at once, saying why."""
    gone = os.getpid() + 1  # the child's parent is this process, never this number
    done = child(["settings", "--get", "BOT_NAME"], tmp_path, REPUTATION_PARENT_PID=str(gone))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [f"error: the process that started this one ({gone}) is gone; stopping"]
