"""The operator CLI on the small demo world: --json/--csv outputs match the database, progress, -q, help.

One module-scoped world (generated site on 127.0.0.1, tiny model); the crawl, score and
roll-up run once through the real CLI and their --json outputs are kept for the tests.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from small_world import FAST, World, copy_db, rows, small_world
from tiny_models import build_classifier

from reputation.cli import cli
from reputation.progress import MAX_ROWS, CrawlProgress
from reputation.rollups.ranking import ranking
from storage.database import connect

FAST_ARGS = [arg for k, v in FAST.items() for arg in ("-s", f"{k}={v}")]
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def invoke(db: Path, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


@dataclass
class Built:
    db: Path
    outputs: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("cli-world")
    model = build_classifier(workdir / "tiny-bert", layers=1, model_id="test/tiny-bert")
    with small_world(workdir, model) as built:
        yield built


@pytest.fixture(scope="module")
def built(world: World, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """crawl -> score -> rollup through the CLI, each with --json."""
    db = world.fresh_db(tmp_path_factory.mktemp("cli-built") / "rep.db")
    out = Built(db)
    out.outputs["crawl"] = json.loads(invoke(db, "crawl", *FAST_ARGS, "--json").stdout)
    out.outputs["score"] = json.loads(
        invoke(db, "score", "--model", str(world.model), "--no-progress", "--json").stdout
    )
    out.outputs["rollup"] = json.loads(invoke(db, "rollup", "--json").stdout)
    return out


def test_crawl_json_is_the_run_log_row(built: Built) -> None:
    crawl = built.outputs["crawl"]
    [row] = rows(built.db, "SELECT * FROM crawl_runs WHERE stage = 'crawl'")
    assert crawl["id"] == row["id"] and crawl["status"] == row["status"] == "ok"
    for key in ("pages", "items_new", "items_updated", "errors"):
        assert crawl[key] == row[key], key
    n_reviews = rows(built.db, "SELECT COUNT(*) AS n FROM reviews")[0]["n"]
    assert crawl["items_new"] == n_reviews > 0
    assert set(crawl["detail"]["sources"]) == {r["id"] for r in rows(built.db, "SELECT id FROM sources")}


def test_score_json_matches_the_sentiment_rows(built: Built) -> None:
    score = built.outputs["score"]
    stored = rows(built.db, "SELECT model_id, COUNT(*) AS n FROM review_sentiment GROUP BY model_id")
    assert stored == [{"model_id": score["model_id"], "n": score["scored"]}]
    assert score["model_id"] == "test/tiny-bert" and score["failed"] == 0


def test_rollup_json_matches_the_tables(built: Built) -> None:
    rollup = built.outputs["rollup"]
    assert rollup["n_vendors"] == rows(built.db, "SELECT COUNT(*) AS n FROM vendor_reputation")[0]["n"]
    assert rollup["n_brands"] == rows(built.db, "SELECT COUNT(*) AS n FROM brand_reputation")[0]["n"]
    meta = {r["key"]: r["value"] for r in rows(built.db, "SELECT key, value FROM rollup_meta")}
    assert meta["model_id"] == rollup["model_id"] and meta["as_of"] == rollup["as_of"]
    assert float(meta["prior_strength"]) == rollup["prior_strength"] == 20.0
    assert rollup["settings_from"] == {"prior_strength": "default", "half_life_days": "default"}


def test_vendors_list_json_csv_and_plain(built: Built) -> None:
    engagements = rows(built.db, "SELECT vendor_id, brand_id, start_date, end_date, scope FROM engagements")
    vendors = {r["id"]: r["name"] for r in rows(built.db, "SELECT id, name FROM vendors")}

    listed = json.loads(invoke(built.db, "vendors", "list", "--json").stdout)
    assert {v["id"]: v["name"] for v in listed} == vendors
    got = sorted((v["id"], e["brand_id"], e["start_date"], e["end_date"], e["scope"])
                 for v in listed for e in v["engagements"])
    want = sorted((e["vendor_id"], e["brand_id"], e["start_date"], e["end_date"], e["scope"]) for e in engagements)
    assert got == want

    table = list(csv.DictReader(io.StringIO(invoke(built.db, "vendors", "list", "--csv").stdout)))
    assert len(table) == len(engagements)
    assert {r["vendor_id"] for r in table} == set(vendors)

    plain = invoke(built.db, "vendors", "list").stdout.splitlines()
    assert plain[0].split("\t") == ["vendor", "name", "brand", "period", "scope"]
    assert len(plain) == 1 + len(engagements)


def test_table_json_and_csv_are_the_ranking(built: Built) -> None:
    out = json.loads(invoke(built.db, "table", "--json").stdout)
    db = connect(built.db)
    try:
        expected = ranking(db)
    finally:
        db.close()
    assert [v["vendor_id"] for v in out["vendors"]] == [r["vendor_id"] for r in expected]
    ranks = {r["vendor_id"]: r["rank"] for r in rows(built.db, "SELECT vendor_id, rank FROM vendor_reputation")}
    assert {v["vendor_id"]: v["rank"] for v in out["vendors"]} == ranks
    assert out["meta"]["model_id"] == "test/tiny-bert"

    table = list(csv.DictReader(io.StringIO(invoke(built.db, "table", "--csv").stdout)))
    assert [r["vendor_id"] for r in table] == [r["vendor_id"] for r in expected]

    plain = invoke(built.db, "table").stdout
    for vendor in expected:
        assert (vendor["vendor_name"] or vendor["vendor_id"])[:10] in plain


def test_table_without_rollups_is_one_line(world: World, tmp_path: Path) -> None:
    db = world.fresh_db(tmp_path / "rep.db")
    result = invoke(db, "table", ok=False)
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert "rollup" in result.stderr and "Traceback" not in result.stderr


def test_run_json_matches_the_run_log(built: Built, world: World, tmp_path: Path) -> None:
    db = copy_db(built.db, tmp_path / "rep.db")
    out = json.loads(invoke(db, "run", "--skip-crawl", "--model", str(world.model), "--json").stdout)
    assert out["ok"] is True and out["exit_code"] == 0 and out["log_file"] is None
    [run_row] = rows(db, "SELECT * FROM crawl_runs WHERE id = ?", [out["run_id"]])
    assert run_row["stage"] == "run" and run_row["status"] == "ok"
    assert [(s["name"], s["status"]) for s in out["stages"]] == [("crawl", "skipped"), ("score", "ok"),
                                                                ("rollup", "ok")]
    score = out["stages"][1]
    assert score["counts"]["scored"] == 0 and score["counts"]["skipped"] == built.outputs["score"]["scored"]
    rollup = out["stages"][2]
    assert rollup["counts"]["n_vendors"] == built.outputs["rollup"]["n_vendors"]
    for stage in out["stages"][1:]:
        assert re.fullmatch(STAMP, stage["finished_at"]) and stage["seconds"] >= 0
        assert stage["run_id"] == rows(db, "SELECT MAX(id) AS id FROM crawl_runs WHERE stage = ?",
                                       [stage["name"]])[0]["id"]
    stages_csv = list(csv.DictReader(io.StringIO(
        invoke(db, "run", "--skip-crawl", "--model", str(world.model), "--csv").stdout)))
    assert [r["name"] for r in stages_csv] == ["crawl", "score", "rollup"]


def test_verbose_crawl_shows_progress_per_source(world: World, tmp_path: Path) -> None:
    """-v: the child's counts reach the parent while it crawls and end in a table on stderr."""
    db = world.fresh_db(tmp_path / "rep.db")
    result = invoke(db, "-v", "crawl", *FAST_ARGS, "-s", "REPUTATION_PROGRESS_INTERVAL=0.2")
    sources = [r["id"] for r in rows(db, "SELECT id FROM sources")]
    for word in ("source", "pages", "reviews", "errors", f"all {len(sources)} sources"):
        assert word in result.stderr
    shown = [source for source in sources if source in result.stderr]
    assert len(shown) == min(len(sources), MAX_ROWS)
    if len(sources) > MAX_ROWS:  # a terminal's height of rows, and the rest counted
        assert f"… {len(sources) - MAX_ROWS} more" in result.stderr
    [run] = rows(db, "SELECT pages FROM crawl_runs WHERE stage = 'crawl'")
    total = re.search(rf"all {len(sources)} sources\D+(\d+)", result.stderr)
    assert total and int(total.group(1)) == run["pages"]
    assert "crawl run" in result.stdout and not (tmp_path / "reputation-logs").exists()


def test_plain_progress_lines_when_not_at_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = {"pages": 1585, "reviews": 3109, "errors": 0, "sources": {"a": {}, "b": {}, "c": {}}}
    with CrawlProgress("lines", interval=0) as shown:
        shown(snapshot)
        shown(snapshot)  # unchanged: not repeated
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert re.fullmatch(rf"{STAMP} crawl progress: 3 sources, 1,585 pages, 3,109 reviews, 0 errors", err[0])


def test_quiet_prints_nothing_but_errors(built: Built, world: World, tmp_path: Path) -> None:
    db = copy_db(built.db, tmp_path / "rep.db")
    for args in (["-q", "rollup"], ["rollup", "-q"], ["-q", "run", "--skip-crawl", "--model", str(world.model)],
                 ["--log-level", "error", "rollup"], ["-q", "crawl", *FAST_ARGS]):
        result = invoke(db, *args)
        assert (result.stdout, result.stderr) == ("", ""), args
    failed = invoke(db, "-q", "run", "--skip-crawl", "--model", str(tmp_path / "no-model"), ok=False)
    assert failed.exit_code == 1 and failed.stdout == ""
    assert len(failed.stderr.splitlines()) == 1 and failed.stderr.startswith("Error: stage 'score' failed")


def _all_commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(group: click.Group, path: list[str]) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            found.append([*path, name])
            if isinstance(command, click.Group):
                walk(command, [*path, name])

    walk(cli, [])
    return found


def test_every_command_has_h_examples_and_verbosity_options() -> None:
    commands = _all_commands()
    assert ["table"] in commands and ["vendors", "list"] in commands
    for path in commands:
        result = CliRunner().invoke(cli, [*path, "-h"])
        assert result.exit_code == 0, (path, result.output)
        assert "Examples:" in result.stdout, path
        for option in ("-v, --verbose", "-q, --quiet", "--log-level"):
            assert option in result.stdout, (path, option)
        # \b kept the example lines as written
        example = result.stdout.split("Examples:")[1].splitlines()[1]
        assert example.strip().startswith("reputation"), (path, example)


def test_run_with_a_crawl_from_the_config_file(world: World, tmp_path: Path) -> None:
    """`run` crawls with the [crawl] settings of the config file; its JSON and -v progress match the run log."""
    db = world.fresh_db(tmp_path / "rep.db")
    config = tmp_path / "fast.toml"
    config.write_text("[crawl]\nsettings = { " + ", ".join(f'{k} = "{v}"' for k, v in FAST.items()) + " }\n"
                      f"[score]\nmodel = {json.dumps(str(world.model))}\n")
    result = invoke(db, "--config", str(config), "-v", "run", "--json")
    out = json.loads(result.stdout)
    crawl = out["stages"][0]
    [row] = rows(db, "SELECT * FROM crawl_runs WHERE stage = 'crawl'")
    assert crawl["status"] == "ok" and crawl["run_id"] == row["id"]
    n_sources = rows(db, "SELECT COUNT(*) AS n FROM sources")[0]["n"]
    assert crawl["counts"]["sources"] == n_sources and crawl["counts"]["pages"] == row["pages"]
    assert crawl["counts"]["new"] == rows(db, "SELECT COUNT(*) AS n FROM reviews")[0]["n"] == row["items_new"]
    assert crawl["summary"].startswith(f"{n_sources} sources due, {row['pages']} pages, ")
    assert out["stages"][1]["counts"]["model_id"] == "test/tiny-bert"  # [score] model from the file
    assert f"all {n_sources} sources" in result.stderr  # the progress table, on stderr only


# --- -q on every command: only errors and the data asked for; the normal lines without it ---

SUGGEST_REGISTRY = """\
vendors:
  - id: acme
    name: Acme Contact
brands:
  - id: northwind
    name: Northwind Air
    website: https://www.northwind-air.example/about
    sources: suggest
engagements:
  - vendor: acme
    brand: northwind
    start: 2023-01-01
"""


def test_init_and_vendors_load_are_silent_under_q(tmp_path: Path) -> None:
    db = tmp_path / "rep.db"
    assert (invoke(db, "-q", "init").stdout, invoke(db, "init", "-q").stderr) == ("", "")
    said = invoke(db, "init")
    assert re.fullmatch(rf"{re.escape(str(db))}: schema version \d+\n", said.stdout) and said.stderr == ""
    example = Path(__file__).resolve().parents[1] / "datasets" / "vendors.example.yaml"
    quiet = invoke(db, "-q", "vendors", "load", str(example))
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert rows(db, "SELECT COUNT(*) AS n FROM vendors")[0]["n"] > 0  # -q silenced it, not skipped it
    loaded = invoke(db, "vendors", "load", str(example))
    assert loaded.stdout.startswith("loaded ") and f"sources from {example}" in loaded.stdout


def test_vendors_load_q_still_prints_the_suggestions_the_file_asked_for(tmp_path: Path) -> None:
    """`sources: suggest` asks for registry YAML to paste: data, so -q keeps it and drops the summary."""
    registry = tmp_path / "suggest.yaml"
    registry.write_text(SUGGEST_REGISTRY)
    db = tmp_path / "rep.db"
    quiet = invoke(db, "-q", "vendors", "load", str(registry))
    loud = invoke(db, "vendors", "load", str(registry))
    assert quiet.stderr == loud.stderr == ""
    assert quiet.stdout.startswith("# brand northwind: 'sources: suggest' loaded no source")
    assert "trustpilot.com/review/northwind-air.example" in quiet.stdout
    assert "loaded 1 vendors" not in quiet.stdout
    assert loud.stdout == f"loaded 1 vendors, 1 brands, 1 engagements, 0 sources from {registry}\n\n" + quiet.stdout


def test_table_q_prints_the_rows_without_the_note(built: Built) -> None:
    loud, quiet = invoke(built.db, "table"), invoke(built.db, "-q", "table")
    assert "Ranked: vendors with at least" in loud.stdout
    assert "Ranked:" not in quiet.stdout and quiet.stderr == ""
    db = connect(built.db)
    try:
        names = [row["vendor_name"] or row["vendor_id"] for row in ranking(db)]
    finally:
        db.close()
    assert names and all(name in quiet.stdout for name in names)  # the rows asked for
    assert quiet.stdout.strip() in loud.stdout


def test_candidates_export_and_data_commands_under_q(built: Built, tmp_path: Path) -> None:
    db = copy_db(built.db, tmp_path / "rep.db")
    export = tmp_path / "accepted.yaml"
    assert invoke(db, "vendors", "candidates", "--export", str(export)).stdout == f"wrote 0 engagements to {export}\n"
    assert (invoke(db, "-q", "vendors", "candidates", "--export", str(export)).stdout) == ""
    # data asked for is printed whatever the verbosity
    for args in (["vendors", "list"], ["settings"], ["vendors", "list", "--csv"], ["settings", "--json"]):
        assert invoke(db, "-q", *args).stdout == invoke(db, *args).stdout != "", args


def test_demo_q_prints_nothing_and_its_lines_without_it(tmp_path: Path) -> None:
    """The demo's crawl alone (no model, no discovery); a second run, under -q, re-crawls silently."""
    db, out = tmp_path / "demo.db", tmp_path / "demo-output"
    loud = invoke(db, "demo", "--out", str(out), "--no-score", "--no-discover")
    lines = loud.stdout.splitlines()
    assert lines[0].startswith("generated the demo site: ") and lines[1].startswith("serving it on http://127.0.0.1:")
    assert any(re.match(r"crawl: \d+ pages, \d+ new, ", line) for line in lines), lines
    assert "Open the results:" in lines and f"  datasette {db} -m {out / 'datasette-metadata.yaml'}" in lines
    quiet = invoke(db, "-q", "demo", "--out", str(out), "--no-score", "--no-discover")
    assert (quiet.stdout, quiet.stderr) == ("", "")
    crawls = rows(db, "SELECT status, items_new, items_unchanged FROM crawl_runs WHERE stage = 'crawl' ORDER BY id")
    assert [c["status"] for c in crawls] == ["ok", "ok"]  # the quiet run did its work
    assert crawls[1]["items_new"] == 0 and crawls[1]["items_unchanged"] == crawls[0]["items_new"] > 0
