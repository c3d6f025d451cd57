"""The README's analyst queries: their SQL is the script's, and their outputs are a fresh demo's.

The slow test builds a demo and runs ``python -m docs.readme_queries --check`` (the same command
that rewrites the blocks with ``--write``), so a README showing outputs the demo no longer gives fails.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from docs.readme_queries import QUERIES, README, REPO, column_layout, render, replace_blocks, run_sql


def test_every_query_has_its_block_in_the_readme_with_the_scripts_sql() -> None:
    readme = README.read_text(encoding="utf-8")
    for query in QUERIES:
        opening = f"<!-- readme-query: {query.name} -->\n"
        assert readme.count(opening) == 1, query.name
        body = readme.split(opening, 1)[1].split("<!-- /readme-query -->", 1)[0]
        # What the reader copies is what the script runs: only the output part may differ.
        assert body.startswith(render(query, "").rsplit("```\n```", 1)[0]), query.name


def test_blocks_are_replaced_and_markers_checked() -> None:
    readme = "intro\n<!-- readme-query: a -->\nold\n<!-- /readme-query -->\nend\n"
    assert (
        replace_blocks(readme, {"a": "new\n"})
        == "intro\n<!-- readme-query: a -->\nnew\n<!-- /readme-query -->\nend\n"
    )
    with pytest.raises(SystemExit, match=r"missing \['b'\], unknown \[\]"):
        replace_blocks(readme, {"a": "x\n", "b": "y\n"})
    with pytest.raises(SystemExit, match=r"missing \[\], unknown \['a'\]"):
        replace_blocks(readme, {})


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="needs the sqlite3 shell (make test installs it)")
def test_layout_is_the_sqlite3_shells(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    sql = (
        "SELECT 1 AS rank, 'Brightline Contact Group' AS vendor_name, NULL AS gap, 0.25 AS x, "
        "printf('%+.2f', -0.5) AS s UNION ALL SELECT 10, 'B', 'filled', 1.5, 'é'"
    )
    conn = sqlite3.connect(db)
    try:
        ours = run_sql(conn, sql)
    finally:
        conn.close()
    shell = subprocess.run(
        ["sqlite3", "-header", "-column", str(db), sql], capture_output=True, text=True, check=True
    ).stdout
    assert ours.splitlines() == [line.rstrip() for line in shell.splitlines()]
    assert column_layout(["a"], []) == "a\n-"


@pytest.mark.slow
def test_readme_outputs_match_a_fresh_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "docs.readme_queries", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    assert "match the demo" in done.stdout
