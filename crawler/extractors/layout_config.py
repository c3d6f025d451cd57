"""Load and validate site layouts: crawler/layouts.yaml plus files named by REPUTATION_LAYOUTS.

REPUTATION_LAYOUTS holds one or more paths (separated by the OS path separator); a path may be a
YAML file or a directory of them. Later files add layouts or replace ones of the same name, and
add pagination selectors. Loaded layouts are cached until a file changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from crawler.extractors.selectors import CompiledSelector, SelectorSyntaxError, compile_selector
from storage.errors import ReputationError

# Package data, found the same way in a checkout or a wheel. A plain file path, because wheels
# install unpacked and load_layouts stats it to know when the cache is stale.
DEFAULT_LAYOUTS = Path(str(resources.files("crawler").joinpath("layouts.yaml")))
ENV_VAR = "REPUTATION_LAYOUTS"
FIELD_NAMES = frozenset({"review_id", "title", "body", "rating", "rating_min", "rating_max", "date", "author"})
KINDS = ("html", "json")


class LayoutError(ReputationError):
    """A layout file is wrong or a source names a layout that does not exist."""


@dataclass(frozen=True)
class Layout:
    """One site layout, selectors compiled."""

    name: str
    kind: str
    match: CompiledSelector | None
    fields: dict[str, Any]  # html: name -> CompiledSelector; json: name -> dotted path
    rating_min: float | None = None
    rating_max: float | None = None
    container: CompiledSelector | None = None
    next_page: CompiledSelector | None = None
    script: CompiledSelector | None = None
    reviews_path: str | None = None
    next_page_path: str | None = None


@dataclass(frozen=True)
class LayoutSet:
    """Every known layout in file order, and the site-independent pagination selectors."""

    layouts: dict[str, Layout] = field(default_factory=dict)
    pagination: tuple[CompiledSelector, ...] = ()

    def get(self, name: str) -> Layout:
        try:
            return self.layouts[name]
        except KeyError:
            known = ", ".join(sorted(self.layouts)) or "none"
            raise LayoutError(f"unknown layout {name!r} (known layouts: {known})") from None


def _selector(value: Any, where: str) -> CompiledSelector:
    if not isinstance(value, str):
        raise LayoutError(f"{where}: expected a selector string, got {value!r}")
    try:
        return compile_selector(value)
    except SelectorSyntaxError as exc:
        raise LayoutError(f"{where}: {exc}") from exc


def _optional_selector(spec: dict[str, Any], key: str, where: str) -> CompiledSelector | None:
    value = spec.get(key)
    return None if value is None else _selector(value, f"{where}.{key}")


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LayoutError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _build_layout(name: str, spec: Any, where: str) -> Layout:
    if not isinstance(spec, dict):
        raise LayoutError(f"{where}: a layout must be a mapping")
    kind = spec.get("kind", "html")
    if kind not in KINDS:
        raise LayoutError(f"{where}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    fields = spec.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise LayoutError(f"{where}.fields: a non-empty mapping of field name to selector is required")
    unknown = set(fields) - FIELD_NAMES
    if unknown:
        raise LayoutError(
            f"{where}.fields: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(FIELD_NAMES))}"
        )
    scale = spec.get("rating_scale") or {}
    if not isinstance(scale, dict):
        raise LayoutError(f"{where}.rating_scale: expected {{min: N, max: N}}")
    common: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "match": _optional_selector(spec, "match", where),
        "rating_min": _number(scale.get("min"), f"{where}.rating_scale.min"),
        "rating_max": _number(scale.get("max"), f"{where}.rating_scale.max"),
    }
    if kind == "html":
        if "container" not in spec:
            raise LayoutError(f"{where}.container: required for kind html")
        compiled = {key: _selector(value, f"{where}.fields.{key}") for key, value in fields.items()}
        return Layout(
            fields=compiled,
            container=_selector(spec["container"], f"{where}.container"),
            next_page=_optional_selector(spec, "next_page", where),
            **common,
        )
    for key, value in fields.items():
        if not isinstance(value, str) or not value:
            raise LayoutError(f"{where}.fields.{key}: expected a dotted path string, got {value!r}")
    reviews_path = spec.get("reviews_path")
    if not isinstance(reviews_path, str):
        raise LayoutError(f"{where}.reviews_path: required for kind json (dotted path to the review list)")
    script = _optional_selector(spec, "script", where) or common["match"]
    if script is None:
        raise LayoutError(f"{where}.script: required for kind json (selector of the <script> text)")
    next_path = spec.get("next_page_path")
    if next_path is not None and not isinstance(next_path, str):
        raise LayoutError(f"{where}.next_page_path: expected a dotted path string")
    return Layout(fields=dict(fields), script=script, reviews_path=reviews_path, next_page_path=next_path, **common)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read layout file: {exc}") from exc
    except yaml.MarkedYAMLError as exc:  # one line: where and what, not PyYAML's multi-line report
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise LayoutError(f"{where}: invalid YAML: {exc.problem or exc.context or 'unreadable'}") from exc
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: dates such as 0000-00-00
        raise LayoutError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LayoutError(f"{path}: expected a mapping with 'layouts' and/or 'pagination'")
    return data


@lru_cache(maxsize=8)
def _load(files: tuple[tuple[str, float], ...]) -> LayoutSet:
    layouts: dict[str, Layout] = {}
    pagination: list[CompiledSelector] = []
    for name, _mtime in files:
        path = Path(name)
        data = _read_file(path)
        entries = data.get("layouts") or {}
        if not isinstance(entries, dict):
            raise LayoutError(f"{path}: 'layouts' must be a mapping of name to layout")
        for layout_name, spec in entries.items():
            layouts[str(layout_name)] = _build_layout(str(layout_name), spec, f"{path}: layouts.{layout_name}")
        extra = data.get("pagination") or []
        if not isinstance(extra, list):
            raise LayoutError(f"{path}: 'pagination' must be a list of selectors")
        pagination.extend(_selector(value, f"{path}: pagination[{i}]") for i, value in enumerate(extra))
    return LayoutSet(layouts=layouts, pagination=tuple(dict.fromkeys(pagination)))


def _layout_files() -> list[Path]:
    files = [DEFAULT_LAYOUTS]
    for part in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part.strip()).expanduser()
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        elif path.exists():
            files.append(path)
        else:
            raise LayoutError(f"{ENV_VAR}: layout file {path} does not exist")
    return files


def load_layouts() -> LayoutSet:
    """All layouts: the built-in file, then REPUTATION_LAYOUTS files in order (cached)."""
    stamped = []
    for path in _layout_files():
        try:
            stamped.append((str(path), path.stat().st_mtime))
        except OSError as exc:
            raise LayoutError(f"{path}: cannot read layout file: {exc}") from exc
    return _load(tuple(stamped))
