"""Settings that persist: a configuration file and the choices stored in the database.

An operator picks roll-up parameters, a model or Scrapy settings once; the scheduled
``reputation run`` then uses them instead of silently going back to the defaults. A value
comes from the first of these that has it (highest first):

1. the command line (``reputation rollup --prior-strength 50``);
2. the configuration file: ``--config PATH``, else ``$REPUTATION_CONFIG``, else
   ``./reputation.toml`` when it exists (TOML, one table per command, e.g.
   ``[rollup] prior_strength = 50``);
3. the settings stored in the database (table ``app_settings``, keys ``settings.<section>.<key>``):
   a value given on the command line of a command that takes it is stored there after the
   command succeeds, so the next ``run`` against the same database uses it;
4. the built-in default.

A configuration file with a syntax error, an unknown table or key, or a value of the wrong
type is refused with one line naming the file and the key (ConfigError, exit 1): a mistyped
key must never be ignored silently. ``reputation settings`` shows every value and where it
came from; ``reputation settings unset KEY`` forgets a stored one.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.errors import ReputationError

CONFIG_ENV = "REPUTATION_CONFIG"
CONFIG_NAME = "reputation.toml"
STORED_PREFIX = "settings."


class ConfigError(ReputationError):
    """The configuration file cannot be used as written."""

    exit_code = 1


Check = Callable[[Any], str | None]  # None when the value is fine, else what is wrong with it


def _number(minimum: float, *, open_min: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {value!r}"
        if value < minimum or (open_min and value == minimum):
            return f"must be {'above' if open_min else 'at least'} {minimum:g}, got {value!r}"
        return None

    return check


def _integer(minimum: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a whole number, got {value!r}"
        return f"must be at least {minimum}, got {value!r}" if value < minimum else None

    return check


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else f"expected a non-empty string, got {value!r}"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def _scrapy_settings(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"expected a table of Scrapy settings, got {value!r}"
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            return f"setting {key!r}: expected a string, number or boolean, got {item!r}"
    return None


def _formats(value: Any) -> str | None:
    allowed = ("html", "csv", "json")
    if not isinstance(value, list) or not value or any(v not in allowed for v in value):
        return f"expected a list of {', '.join(allowed)}, got {value!r}"
    return None


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    check: Check
    default: Any
    help: str
    stored: bool = False  # remembered in the database when given on the command line

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


# Defaults of the roll-up live in reputation.rollups.build; repeated here as data so that
# reading the settings never imports the statistics (tests check the two agree).
SETTINGS: tuple[Setting, ...] = (
    Setting("crawl", "settings", _scrapy_settings, {}, "Scrapy settings for every crawl, e.g. DOWNLOAD_DELAY"),
    Setting("crawl", "full", _flag, False, "walk every listing to its end"),
    Setting("score", "model", _text, None, "sentiment model directory or Hugging Face id", stored=True),
    Setting("score", "batch_size", _integer(1), 64, "texts per forward pass"),
    Setting("score", "chunk_size", _integer(1), 512, "reviews per database transaction"),
    Setting("score", "device", _text, None, "torch device (cpu, cuda)"),
    Setting("rollup", "prior_strength", _number(0), 20.0, "pseudo-reviews of shrinkage", stored=True),
    Setting("rollup", "half_life_days", _number(0, open_min=True), 180.0, "recency half-life in days", stored=True),
    Setting("run", "log_dir", _text, None, "folder for run logs (default: reputation-logs beside the database)"),
    Setting("scorecard", "out", _text, "scorecards", "folder for the scorecards"),
    Setting("scorecard", "formats", _formats, ["html"], "scorecard formats"),
    Setting("scorecard", "png", _flag, False, "also write trend charts as PNG"),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
SECTIONS: dict[str, dict[str, Setting]] = {}
for _s in SETTINGS:
    SECTIONS.setdefault(_s.section, {})[_s.key] = _s


def config_path(explicit: str | os.PathLike[str] | None = None, *, cwd: Path | None = None) -> Path | None:
    """The configuration file in use: --config, else $REPUTATION_CONFIG, else ./reputation.toml if present.

    A file named explicitly (option or variable) must exist; the one in the current folder is optional.
    """
    named = explicit if explicit is not None else os.environ.get(CONFIG_ENV) or None
    if named is not None:
        path = Path(named)
        if not path.is_file():
            how = "--config" if explicit is not None else f"${CONFIG_ENV}"
            raise ConfigError(f"{path}: configuration file not found (named by {how})")
        return path
    local = (cwd or Path.cwd()) / CONFIG_NAME
    return local if local.is_file() else None


def load_config(path: Path | None) -> dict[str, dict[str, Any]]:
    """The file's tables, every key checked; ``{}`` when there is no file."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    config: dict[str, dict[str, Any]] = {}
    for section, table in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{path}: unknown table [{section}] (known: {', '.join(sorted(SECTIONS))})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a table ([{section}]), got {table!r}")
        for key, value in table.items():
            setting = SECTIONS[section].get(key)
            if setting is None:
                known = ", ".join(sorted(SECTIONS[section]))
                raise ConfigError(f"{path}: unknown key {section}.{key} (known in [{section}]: {known})")
            problem = setting.check(value)
            if problem:
                raise ConfigError(f"{path}: {section}.{key}: {problem}")
        config[section] = dict(table)
    return config


def stored_settings(db: sqlite_utils.Database) -> dict[str, Any]:
    """``{"rollup.prior_strength": 50.0, ...}``: the values remembered in the database.

    A stored value this release no longer knows, or that fails its check, is ignored here and
    shown as such by ``reputation settings``.
    """
    if "app_settings" not in db.table_names():
        return {}
    found: dict[str, Any] = {}
    rows = db.execute("SELECT key, value FROM app_settings WHERE key LIKE ?", [STORED_PREFIX + "%"]).fetchall()
    for key, raw in rows:
        name = key[len(STORED_PREFIX) :]
        setting = BY_NAME.get(name)
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if setting is not None and setting.check(value) is None:
            found[name] = value
    return found


def store_settings(db: sqlite_utils.Database, values: Mapping[str, Any]) -> None:
    """Remember command-line values of storable settings (others, and None, are not stored)."""
    rows = [
        {"key": STORED_PREFIX + name, "value": json.dumps(value)}
        for name, value in values.items()
        if value is not None and name in BY_NAME and BY_NAME[name].stored
    ]
    if rows:
        with db.conn:
            db.table("app_settings").upsert_all(rows, pk="key")


def unset_setting(db: sqlite_utils.Database, name: str) -> bool:
    """Forget a stored value; True when there was one."""
    if name not in BY_NAME:
        raise ConfigError(f"unknown setting {name!r} (known: {', '.join(sorted(BY_NAME))})")
    with db.conn:
        cursor = db.conn.execute("DELETE FROM app_settings WHERE key = ?", [STORED_PREFIX + name])
    return cursor.rowcount > 0


@dataclass(frozen=True)
class Resolved:
    """Values of one section and where each came from (command line, config file, database, default)."""

    values: dict[str, Any]
    origins: dict[str, str]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def resolve(
    section: str,
    *,
    cli: Mapping[str, Any] | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    config_file: Path | None = None,
    stored: Mapping[str, Any] | None = None,
) -> Resolved:
    """Every setting of ``section``: command line > config file > stored > default (None on the
    command line means "not given")."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    given = {k: v for k, v in (cli or {}).items() if v is not None}
    from_file = (config or {}).get(section, {})
    for key, setting in SECTIONS[section].items():
        if key in given:
            values[key], origins[key] = given[key], "command line"
        elif key in from_file:
            values[key], origins[key] = from_file[key], f"config file {config_file}" if config_file else "config file"
        elif setting.name in (stored or {}):
            values[key], origins[key] = (stored or {})[setting.name], "database"
        else:
            values[key], origins[key] = setting.default, "default"
    return Resolved(values, origins)
