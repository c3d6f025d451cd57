"""The README's analyst queries and their outputs, produced from the demo so they cannot go stale.

    python -m docs.readme_queries                   # build a demo in a temporary folder, print the blocks
    python -m docs.readme_queries --write           # rewrite the blocks in README.md
    python -m docs.readme_queries --check           # exit 1, with a diff, when README.md differs
    python -m docs.readme_queries --db demo-output/reputation.db   # a demo already built, for a look

The demo it builds is crawled as on DEMO_DAY, so its outputs do not move with the calendar; a
database given with ``--db`` gives the same outputs only if it was crawled on that day.

Each query's code and output sit in README.md between ``<!-- readme-query: NAME -->`` and
``<!-- /readme-query -->``; this script is the only thing that writes them (the prose around them is
edited by hand). Outputs are laid out as ``sqlite3 -header -column`` lays them out, without the
trailing blanks of its last column. The database is only read: the ``--as-of`` query runs on a copy.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
# The day the README's outputs were crawled on: ``make demo`` on another day reads the forum's
# "N months ago" against that day, which moves a few reviews by days and a few counts by one.
DEMO_DAY = date(2026, 11, 29)
DEMO_DB = "demo-output/reputation.db"  # where `make demo` leaves it; the name the README shows
_SQLITE3_VALUE = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])"
_BLOCK = re.compile(
    r"(?P<open><!-- readme-query: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(?P<close><!-- /readme-query -->)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Query:
    """One README example: optional shell lines run first (shown as such), then SQL whose output is shown."""

    name: str
    sql: str
    shell: str = ""


# Only columns the roll-ups have kept across releases (rank may be NULL: "not enough evidence").
# Orders never rest on review or source ids: those hash the demo server's port, which varies.
QUERIES: tuple[Query, ...] = (
    Query(
        "ranking",
        """\
SELECT rank, vendor_name, n_reviews, n_cs,
       printf('%+.2f [%+.2f, %+.2f]', cs_score, cs_score_low, cs_score_high) AS cs_score_95,
       printf('%+.2f', shrunk_score) AS shrunk,
       printf('%.0f%% [%.0f, %.0f]', 100 * share_negative, 100 * share_negative_low,
              100 * share_negative_high) AS negative_95
FROM vendor_reputation ORDER BY rank IS NULL, rank, vendor_id;""",
    ),
    Query(
        "switch",
        """\
SELECT brand_id, from_vendor_id, to_vendor_id, switch_date,
       n_cs_before, printf('%+.2f', cs_before) AS cs_before,
       n_cs_after, printf('%+.2f', cs_after) AS cs_after,
       printf('%+.2f', cs_change) AS cs_change
FROM vendor_switches ORDER BY brand_id, switch_date;""",
    ),
    Query(
        "refunds",
        """\
SELECT a.vendor_id, r.brand_id, r.published_at, printf('%+.2f', s.cs_score) AS cs,
       substr(json_extract(s.cs_sentences, '$[0]'), 1, 70) AS excerpt
FROM reviews_fts
JOIN reviews r ON r.rowid = reviews_fts.rowid
JOIN vendor_review_attribution a ON a.review_id = r.id
JOIN review_sentiment s ON s.review_id = r.id
WHERE reviews_fts MATCH 'refund' AND a.vendor_id = 'quillstone' AND s.cs_score IS NOT NULL
ORDER BY round(s.cs_score, 2), r.published_at, r.brand_id, excerpt LIMIT 5;""",
    ),
    Query(
        "as-of",
        """\
SELECT rank, vendor_name, n_cs, printf('%+.2f', shrunk_score) AS shrunk
FROM vendor_reputation ORDER BY rank IS NULL, rank, vendor_id;""",
        shell=f"""\
DAY=$(sqlite3 {DEMO_DB} "SELECT substr(min(first_seen), 1, 10) FROM reviews")
reputation --db {DEMO_DB} rollup --as-of "$DAY\"""",
    ),
)


def column_layout(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """``sqlite3 -header -column``: left-aligned columns two blanks apart, dashes under the header."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    lines = [list(headers), ["-" * width for width in widths], *cells]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
                     for line in lines)  # fmt: skip


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.15g}"  # sqlite3 shows REALs with 15 significant digits
    return str(value)


def run_sql(conn: sqlite3.Connection, sql: str) -> str:
    cursor = conn.execute(sql)
    headers = [column[0] for column in cursor.description]
    return column_layout(headers, cursor.fetchall())


def render(query: Query, output: str) -> str:
    """The markdown between one query's markers."""
    shell = f"```sh\n{query.shell}\n```\n" if query.shell else ""
    return f"{shell}```sql\n{query.sql}\n```\n```\n{output}\n```\n"


def produce(db_path: Path) -> dict[str, str]:
    """Every query's block, run against the demo database at ``db_path`` (left unchanged)."""
    blocks: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="readme-queries-") as scratch:
        copy = Path(scratch) / "reputation.db"
        source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)  # SQLite's own copy: consistent even while another process writes
        finally:
            source.close()
        try:
            for query in QUERIES:
                if query.shell:
                    target.close()
                    _run_shell(query, copy)
                    target = sqlite3.connect(copy)
                blocks[query.name] = render(query, run_sql(target, query.sql))
        finally:
            target.close()
    return blocks


def _run_shell(query: Query, db_path: Path) -> None:
    """Run the query's shell lines for real, on the copy: they are what a reader will type."""
    lines = query.shell.replace(DEMO_DB, shlex.quote(str(db_path))).splitlines()
    # The tool as this interpreter runs it, whether or not its script is on PATH.
    lines = [re.sub(r"^reputation ", f"{shlex.quote(sys.executable)} -m reputation ", line) for line in lines]
    if shutil.which("sqlite3") is None:  # the shell's one-value lookups, through Python's sqlite3
        lines.insert(
            0, f'sqlite3() {{ {shlex.quote(sys.executable)} -c {shlex.quote(_SQLITE3_VALUE)} "$@"; }}'
        )
    script = "\n".join(lines)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"error: the {query.name!r} example failed: {(done.stderr or done.stdout).strip()}")


def replace_blocks(readme: str, blocks: dict[str, str]) -> str:
    """``readme`` with each marked block's body replaced; every query must have its markers."""
    found = {match["name"] for match in _BLOCK.finditer(readme)}
    missing = [name for name in blocks if name not in found]
    unknown = sorted(found - set(blocks))
    if missing or unknown:
        raise SystemExit(f"error: README markers: missing {missing}, unknown {unknown}")
    return _BLOCK.sub(lambda m: m["open"] + blocks[m["name"]] + m["close"], readme)


def build_demo(out_dir: Path, day: date = DEMO_DAY) -> Path:
    """The demo as ``make demo`` builds it on ``day`` (crawl, score, roll up; no scorecards).

    The site's "N months ago" dates and the crawl that reads them back both use ``day``
    (REPUTATION_CRAWL_CLOCK), so the outputs are the same whenever this runs.
    """
    # torch and Scrapy: only when no database is given
    from demo_world import generate_site, serve_directory, write_demo_registry
    from reputation import pipeline
    from reputation.demo import DEMO_CRAWL_SETTINGS
    from reputation.registry.loader import load_registry
    from storage.database import connect

    db_path = out_dir / "reputation.db"
    manifest = generate_site(out_dir / "site", today=day)
    db = connect(db_path)
    try:
        settings = {**DEMO_CRAWL_SETTINGS, "REPUTATION_CRAWL_CLOCK": day.isoformat()}
        job = pipeline.Job(str(db_path), db, crawl_settings=settings, full=True)
        with serve_directory(out_dir / "site") as base_url:
            write_demo_registry(manifest, base_url, out_dir / "vendors.yaml")
            load_registry(db, out_dir / "vendors.yaml")
            crawl = pipeline.crawl(job)
        if crawl.get("status") != "ok":
            raise SystemExit(f"error: the demo crawl ended {crawl.get('status')!r}")
        pipeline.score(job)
        pipeline.rollup(job)
    finally:
        db.close()
    return db_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.readme_queries", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db", type=Path, help=f"a demo database already built (default: build one crawled on {DEMO_DAY})"
    )
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--keep", type=Path, help="build the demo in this folder and keep it")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the blocks in the README")
    mode.add_argument("--check", action="store_true", help="exit 1 when the README's blocks differ")
    args = parser.parse_args(argv)
    if args.db is not None and not args.db.is_file():
        print(f"error: {args.db}: no such database", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="readme-demo-") as scratch:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
        db_path = args.db or build_demo(args.keep or Path(scratch))
        blocks = produce(db_path)
    if not (args.write or args.check):
        for name, block in blocks.items():
            print(f"<!-- readme-query: {name} -->\n{block}<!-- /readme-query -->\n")
        return 0
    current = args.readme.read_text(encoding="utf-8")
    updated = replace_blocks(current, blocks)
    if args.write:
        if updated != current:
            args.readme.write_text(updated, encoding="utf-8")
        print(f"{args.readme}: {'updated' if updated != current else 'already current'}")
        return 0
    if updated == current:
        print(f"{args.readme}: the analyst queries match the demo")
        return 0
    diff = difflib.unified_diff(
        current.splitlines(keepends=True), updated.splitlines(keepends=True), "README (now)", "from the demo"
    )
    sys.stderr.writelines(diff)
    print(f"error: {args.readme}: analyst-query outputs differ from the demo; run "
          "`python -m docs.readme_queries --write`", file=sys.stderr)  # fmt: skip
    return 1


if __name__ == "__main__":
    sys.exit(main())
