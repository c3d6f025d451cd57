"""Settings persist: command line > config file > stored in the database > default, and `run` honours them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import Builder
from tiny_models import build_classifier

from reputation import settings as settings_mod
from reputation.cli import cli
from reputation.rollups.build import DEFAULT_HALF_LIFE_DAYS, DEFAULT_PRIOR_STRENGTH
from storage.database import connect


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_classifier(tmp_path_factory.mktemp("model") / "tiny-bert", layers=1, model_id="test/tiny-bert")


@pytest.fixture
def scored_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry and scored reviews (model m@1), in a folder of its own that is also the current one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(settings_mod.CONFIG_ENV, raising=False)
    db_path = tmp_path / "rep.db"
    make = Builder.open(db_path).vendor("acme", name="Acme Contact")
    make.brand("northwind", name="Northwind Air")
    make.engage("acme", "northwind", "2023-01-01")
    for i in range(8):
        make.review("northwind", f"2024-0{1 + i % 6}-10", cs=0.5 if i % 2 else -0.25, score=0.1,
                    body=f"The support agent answered quickly ({i}).")
    make.db.conn.close()
    return db_path


def invoke(db: Path, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def built_with(db_path: Path) -> tuple[float, float]:
    """(prior strength, half-life) the last roll-up used, as recorded in rollup_meta."""
    db = connect(db_path)
    try:
        meta = dict(db.execute("SELECT key, value FROM rollup_meta").fetchall())
    finally:
        db.close()
    return float(meta["prior_strength"]), float(meta["half_life_days"])


def test_defaults_agree_with_the_rollup() -> None:
    assert settings_mod.BY_NAME["rollup.prior_strength"].default == DEFAULT_PRIOR_STRENGTH
    assert settings_mod.BY_NAME["rollup.half_life_days"].default == DEFAULT_HALF_LIFE_DAYS


def test_settings_given_to_rollup_persist_into_run(scored_db: Path, tiny_model: Path) -> None:
    invoke(scored_db, "rollup", "--prior-strength", "50", "--half-life", "90")
    assert built_with(scored_db) == (50, 90)
    invoke(scored_db, "run", "--skip-crawl", "--model", str(tiny_model))
    assert built_with(scored_db) == (50, 90)  # not back to 20 / 180
    again = json.loads(invoke(scored_db, "rollup", "--json").stdout)
    assert (again["prior_strength"], again["half_life_days"]) == (50, 90)
    assert again["settings_from"] == {"prior_strength": "database", "half_life_days": "database"}

    shown = {s["name"]: s for s in json.loads(invoke(scored_db, "settings", "--json").stdout)["settings"]}
    assert shown["rollup.prior_strength"]["value"] == 50 and shown["rollup.prior_strength"]["origin"] == "database"
    assert shown["score.model"]["value"] == str(tiny_model)  # given to run: remembered too

    invoke(scored_db, "settings", "unset", "rollup.prior_strength")
    invoke(scored_db, "run", "--skip-crawl")  # the stored model, no --model
    assert built_with(scored_db) == (DEFAULT_PRIOR_STRENGTH, 90)
    db = connect(scored_db)
    try:
        model_ids = dict(db.execute("SELECT key, value FROM rollup_meta").fetchall())["model_id"]
    finally:
        db.close()
    assert model_ids == "test/tiny-bert"


def test_config_file_beats_stored_and_command_line_beats_both(
    scored_db: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(scored_db, "rollup", "--prior-strength", "50", "--half-life", "90")  # stored
    (tmp_path / "reputation.toml").write_text("[rollup]\nprior_strength = 30\nhalf_life_days = 60\n")
    invoke(scored_db, "run", "--skip-crawl", "--model", str(tiny_model))  # ./reputation.toml
    assert built_with(scored_db) == (30, 60)

    other = tmp_path / "ops.toml"
    other.write_text("[rollup]\nprior_strength = 40\n")
    invoke(scored_db, "--config", str(other), "run", "--skip-crawl", "--model", str(tiny_model))
    assert built_with(scored_db) == (40, 90)  # half-life: not in this file, so the stored one

    monkeypatch.setenv(settings_mod.CONFIG_ENV, str(other))
    out = json.loads(invoke(scored_db, "rollup", "--prior-strength", "70", "--json").stdout)
    assert (out["prior_strength"], out["half_life_days"]) == (70, 90)
    assert out["settings_from"]["prior_strength"] == "command line"
    assert built_with(scored_db) == (70, 90)


BAD_CONFIGS = {
    "syntax": ("[rollup\nprior_strength = 5\n", "not valid TOML"),
    "unknown key": ("[rollup]\nprior_strenght = 5\n", "unknown key rollup.prior_strenght"),
    "unknown table": ("[rolup]\nprior_strength = 5\n", "unknown table [rolup]"),
    "wrong type": ("[rollup]\nprior_strength = 'high'\n", "rollup.prior_strength: expected a number"),
    "out of range": ("[rollup]\nhalf_life_days = 0\n", "rollup.half_life_days: must be above 0"),
    "scrapy value": ("[crawl]\nsettings = { DOWNLOAD_DELAY = [1] }\n", "crawl.settings: setting 'DOWNLOAD_DELAY'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_bad_config_file_is_one_line_and_exit_1(case: str, scored_db: Path, tmp_path: Path) -> None:
    text, expected = BAD_CONFIGS[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    for command in (["rollup"], ["run", "--skip-crawl"], ["settings"]):
        result = invoke(scored_db, "--config", str(path), *command, ok=False)
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
        assert result.stderr.startswith(f"Error: {path}: ") and expected in result.stderr, result.stderr
    assert not (tmp_path / "reputation-logs").exists()
    # help still works beside a broken file
    assert invoke(scored_db, "--config", str(path), "run", "--help").exit_code == 0


def test_a_missing_config_file_named_explicitly_is_an_error(scored_db: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(scored_db, "--config", str(tmp_path / "nope.toml"), "rollup", ok=False)
    assert result.exit_code == 1 and "nope.toml: configuration file not found (named by --config)" in result.stderr
    monkeypatch.setenv(settings_mod.CONFIG_ENV, str(tmp_path / "gone.toml"))
    result = invoke(scored_db, "rollup", ok=False)
    assert result.exit_code == 1 and "named by $REPUTATION_CONFIG" in result.stderr


def test_the_example_config_file_is_valid() -> None:
    path = Path(__file__).resolve().parents[1] / "datasets" / "reputation.example.toml"
    config = settings_mod.load_config(path)
    assert set(config) == set(settings_mod.SECTIONS)
    chosen = settings_mod.resolve("rollup", config=config, config_file=path)
    assert (chosen["prior_strength"], chosen["half_life_days"]) == (DEFAULT_PRIOR_STRENGTH, DEFAULT_HALF_LIFE_DAYS)
    assert chosen.origins["prior_strength"] == f"config file {path}"
