"""Plain Scrapy without a database: one line naming REPUTATION_DB, exit 1, and no ./reputation.db.

Real ``scrapy`` processes started from an empty folder, as a user would start them; the crawl that
works once the variable is set is tests/test_crawl.py's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.clock import crawl_clock
from storage.errors import ReputationError

REPO = Path(__file__).resolve().parent.parent
REFUSAL = [
    "error: no database: set REPUTATION_DB=path/to/reputation.db in the environment "
    "or pass -s REPUTATION_DB=path/to/reputation.db"
]


def scrapy(args: list[str], cwd: Path, *, module: str = "scrapy", **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` from ``cwd`` with none of our variables set but ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REPUTATION_", "SCRAPY_"))}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=600,  # Python and Scrapy starting on a loaded machine; a hang still ends
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    return empty


@pytest.mark.parametrize(
    "args",
    [
        ["crawl", "reviews"],
        ["crawl", "reviews", "-a", "brand=acme-air", "-s", "REPUTATION_DB="],
        ["runspider", str(REPO / "spiders" / "reviews.py")],
    ],
    ids=["crawl", "crawl-empty-setting", "runspider"],
)
def test_no_database_is_one_line_and_exit_1(folder: Path, args: list[str]) -> None:
    done = scrapy(args, folder, SCRAPY_SETTINGS_MODULE="crawler.settings", REPUTATION_DB="")
    assert (done.returncode, done.stderr.splitlines(), done.stdout) == (1, REFUSAL, "")
    assert list(folder.iterdir()) == []  # no ./reputation.db, no log, nothing


def test_a_checkout_style_project_folder_refuses_the_same_way(folder: Path) -> None:
    """``scrapy.cfg`` naming the project's settings, as in a checkout, rather than the variable."""
    (folder / "scrapy.cfg").write_text((REPO / "scrapy.cfg").read_text())
    done = scrapy(["crawl", "reviews", "-a", "brand=acme-air"], folder, PYTHONPATH=str(REPO))
    assert (done.returncode, done.stderr.splitlines()) == (1, REFUSAL)
    assert sorted(path.name for path in folder.iterdir()) == ["scrapy.cfg"]


def test_other_scrapy_commands_need_no_database(folder: Path) -> None:
    done = scrapy(["list"], folder, SCRAPY_SETTINGS_MODULE="crawler.settings")
    assert done.returncode == 0, done.stderr
    assert "reviews" in done.stdout.split()
    assert list(folder.iterdir()) == []


def test_the_crawl_clock_setting_is_read_as_utc() -> None:
    """REPUTATION_CRAWL_CLOCK pins the time relative dates are read against (the README's demo uses it)."""
    assert crawl_clock(None) is None and crawl_clock("") is None
    assert crawl_clock("2026-11-29") == "2026-11-29T12:00:00+00:00"
    assert crawl_clock("2026-11-29T23:30:00-02:00") == "2026-11-30T01:30:00+00:00"
    with pytest.raises(ReputationError, match="REPUTATION_CRAWL_CLOCK: 'soon' is not an ISO date or time"):
        crawl_clock("soon")
