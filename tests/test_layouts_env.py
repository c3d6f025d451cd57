"""REPUTATION_LAYOUTS through the CLI: bad files stop a crawl before it starts; layout errors say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from crawl_support import SITE_LAYOUT
from servers import LocalServer

from crawler.extractors import LayoutError
from crawler.extractors.layout_config import ENV_VAR
from crawler.launcher import run_crawl
from reputation.cli import cli
from reputation.registry.loader import load_registry, source_id
from storage.database import connect

FAST = ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "DOWNLOAD_TIMEOUT=30", "-s", "RETRY_TIMES=0"]  # 30 s: loopback, on a loaded machine



def register(tmp_path: Path, db_path: Path, url: str, layout: str = "auto") -> None:
    """One vendor serving one brand with one source, loaded into a real database."""
    registry = tmp_path / "vendors.yaml"
    registry.write_text(
        "vendors:\n  - id: acme-contact\n    name: Acme Contact\n"
        f"brands:\n  - id: acme-air\n    name: Acme Air\n    sources:\n      - url: {url}\n        layout: {layout}\n"
        "engagements:\n  - vendor: acme-contact\n    brand: acme-air\n    start: 2023-01-01\n",
        encoding="utf-8",
    )
    db = connect(db_path)
    try:
        load_registry(db, registry)
    finally:
        db.close()


def run_rows(db_path: Path) -> list[tuple[int, str, str]]:
    db = connect(db_path)
    try:
        return [tuple(row) for row in db.execute("SELECT id, stage, status FROM crawl_runs ORDER BY id")]
    finally:
        db.close()


def bad_layout_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (REPUTATION_LAYOUTS value, what the one-line error must say)."""
    missing = tmp_path / "missing-layouts.yaml"
    broken = tmp_path / "broken-layouts.yaml"
    broken.write_text("layouts:\n  site-x:\n    kind: html\n    fields: {body: [unclosed\n", encoding="utf-8")
    return {
        "missing": (missing, f"{ENV_VAR}: layout file {missing} does not exist"),
        "broken": (broken, f"{broken}:5: invalid YAML: "),
    }


@pytest.mark.parametrize("command", [["crawl", *FAST], ["run"]])
@pytest.mark.parametrize("which", ["missing", "broken"])
def test_bad_layout_file_fails_before_the_crawl(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], which: str
) -> None:
    register(tmp_path, db_path, "http://127.0.0.1:9/trust/acme/")
    path, expected = bad_layout_files(tmp_path)[which]
    monkeypatch.setenv(ENV_VAR, str(path))
    result = CliRunner().invoke(cli, ["--db", str(db_path), *command])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    lines = result.output.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"Error: {expected}"), result.output
    assert run_rows(db_path) == []  # no crawl child, no run-log row


def test_every_path_in_the_variable_is_checked(tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(tmp_path, db_path, "http://127.0.0.1:9/trust/acme/")
    good = tmp_path / "good.yaml"
    good.write_text(SITE_LAYOUT, encoding="utf-8")
    path, expected = bad_layout_files(tmp_path)["broken"]
    monkeypatch.setenv(ENV_VAR, f"{good}:{path}")
    with pytest.raises(LayoutError, match="invalid YAML") as info:
        run_crawl(db_path)
    assert str(info.value).startswith(f"{path}:5: ") and "\n" not in str(info.value)
    assert run_rows(db_path) == []


def test_layout_error_reason_reaches_the_crawl_summary(
    tmp_path: Path, db_path: Path, monkeypatch: pytest.MonkeyPatch, local_server: LocalServer
) -> None:
    """A source whose layout is gone from the layout files: counted as layout_error, and the summary says why."""
    site = local_server
    site.route("/trust/acme/", "<html><body><div class='review'><p>Fine.</p></div></body></html>")
    layouts = tmp_path / "site.yaml"
    layouts.write_text(SITE_LAYOUT, encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(layouts))
    register(tmp_path, db_path, site.url("/trust/acme/"), layout="site-x")
    monkeypatch.delenv(ENV_VAR)  # the crawl runs without the file that defined site-x

    result = CliRunner().invoke(cli, ["--db", str(db_path), "crawl", *FAST])

    assert "errors 1: layout_error 1 (layout 'site-x': unknown layout 'site-x' (known layouts: " in result.output
    assert result.exit_code == 1  # the only source failed, so the crawl failed
    source = source_id(site.url("/trust/acme/"))
    assert "sources 1: failed 1" in result.output and f"    failed {source}: layout_error\n" in result.output
    [(run_id, stage, status)] = run_rows(db_path)
    assert (stage, status) == ("crawl", "failed")
    db = connect(db_path)
    try:
        detail = json.loads(db.execute("SELECT detail FROM crawl_runs WHERE id = ?", [run_id]).fetchone()[0])
    finally:
        db.close()
    assert detail["layout_errors"]["site-x"].startswith("unknown layout 'site-x'")
