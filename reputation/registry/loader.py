"""The vendor registry: vendors, their client brands, engagement windows and review sources.

A registry file is validated as a whole before anything is written; every mistake is
reported with file, line and field, and a file with any mistake changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlite_utils
import yaml

from storage.database import transaction
from storage.errors import RegistryError, read_user_text

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SCOPES_ANY = "all"


@dataclass
class Located:
    """A YAML value with the line it came from, so errors can point at it."""

    value: Any
    line: int


@dataclass
class Engagement:
    vendor: str
    brand: str
    start: date
    end: date | None
    scope: str
    share: float
    evidence: str | None
    line: int


@dataclass
class Source:
    brand: str
    url: str
    layout: str
    interval_hours: float
    line: int


@dataclass
class Registry:
    vendors: list[dict[str, Any]] = field(default_factory=list)
    brands: list[dict[str, Any]] = field(default_factory=list)
    engagements: list[Engagement] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)


@dataclass
class RegistrySummary:
    vendors: int
    brands: int
    engagements: int
    sources: int


def source_id(url: str) -> str:
    """Sources are keyed by a short hash of their URL so ids survive renames of brands."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _plain(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    """Turn a YAML node into Located-wrapped Python values (mappings and lists recursively)."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        return Located({str(k.value): _plain(v, loader) for k, v in node.value}, line)
    if isinstance(node, yaml.SequenceNode):
        return Located([_plain(v, loader) for v in node.value], line)
    try:
        return Located(loader.construct_object(node, deep=True), line)
    except (ValueError, yaml.YAMLError):
        return Located(node.value, line)  # e.g. an impossible date: let the field check report it


class _Checker:
    """Collects every mistake instead of stopping at the first."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[str] = []

    def error(self, line: int, where: str, message: str) -> None:
        self.errors.append(f"{self.path}:{line}: {where}: {message}")

    def text(self, item: Located, key: str, where: str, *, required: bool = True) -> str | None:
        got = item.value.get(key)
        if got is None or got.value is None or got.value == "":
            if required:
                self.error(item.line, f"{where}.{key}", "is required")
            return None
        if not isinstance(got.value, str | int | float) or isinstance(got.value, bool):
            self.error(got.line, f"{where}.{key}", f"must be text, not {type(got.value).__name__}")
            return None
        return str(got.value).strip()

    def slug(self, item: Located, key: str, where: str) -> str | None:
        value = self.text(item, key, where)
        if value is not None and not SLUG.match(value):
            self.error(item.value[key].line, f"{where}.{key}", f"{value!r} must be a lower-case slug (a-z, 0-9, -)")
            return None
        return value

    def url(self, item: Located, key: str, where: str, *, required: bool) -> str | None:
        value = self.text(item, key, where, required=required)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.error(item.value[key].line, f"{where}.{key}", f"{value!r} is not an http(s) URL")
            return None
        return value

    def day(self, item: Located, key: str, where: str, *, required: bool) -> date | None:
        got = item.value.get(key)
        if got is None or got.value is None:
            if required:
                self.error(item.line, f"{where}.{key}", "is required (YYYY-MM-DD)")
            return None
        if isinstance(got.value, date):
            return got.value
        try:
            return date.fromisoformat(str(got.value))
        except ValueError:
            self.error(got.line, f"{where}.{key}", f"{got.value!r} is not a date (YYYY-MM-DD)")
            return None

    def number(self, item: Located, key: str, where: str, default: float, low: float, high: float) -> float:
        got = item.value.get(key)
        if got is None or got.value is None:
            return default
        value = got.value
        if isinstance(value, bool) or not isinstance(value, int | float) or not (low < value <= high):
            self.error(got.line, f"{where}.{key}", f"{value!r} must be a number in ({low}, {high}]")
            return default
        return float(value)

    def items(self, root: Located, key: str) -> list[Located]:
        got = root.value.get(key)
        if got is None or got.value is None:
            return []
        if not isinstance(got.value, list):
            self.error(got.line, key, "must be a list")
            return []
        good = []
        for index, item in enumerate(got.value):
            if not isinstance(item.value, dict):
                self.error(item.line, f"{key}[{index}]", "must be a mapping")
            else:
                good.append(item)
        return good


def parse_registry(text: str, path: str = "<registry>") -> Registry:
    """Validate a registry document; raise RegistryError listing every mistake."""
    check = _Checker(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise RegistryError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if node is None or not isinstance(node, yaml.MappingNode):
        raise RegistryError(f"{path}:1: the registry must be a mapping with vendors, brands and engagements")
    loader = yaml.SafeLoader("")
    try:
        root = _plain(node, loader)
    finally:
        loader.dispose()
    for key, value in root.value.items():
        if key not in ("vendors", "brands", "engagements"):
            check.error(value.line, key, "unknown section (expected vendors, brands, engagements)")

    registry = Registry()
    vendor_ids: set[str] = set()
    for index, item in enumerate(check.items(root, "vendors")):
        where = f"vendors[{index}]"
        vid = check.slug(item, "id", where)
        name = check.text(item, "name", where)
        website = check.url(item, "website", where, required=False)
        if vid in vendor_ids:
            check.error(item.line, f"{where}.id", f"duplicate vendor id {vid!r}")
        elif vid and name:
            vendor_ids.add(vid)
            notes = check.text(item, "notes", where, required=False)
            registry.vendors.append({"id": vid, "name": name, "website": website, "notes": notes})

    brand_ids: set[str] = set()
    seen_urls: dict[str, int] = {}
    for index, item in enumerate(check.items(root, "brands")):
        where = f"brands[{index}]"
        bid = check.slug(item, "id", where)
        name = check.text(item, "name", where)
        website = check.url(item, "website", where, required=False)
        if bid in brand_ids:
            check.error(item.line, f"{where}.id", f"duplicate brand id {bid!r}")
            continue
        if not (bid and name):
            continue
        brand_ids.add(bid)
        registry.brands.append({"id": bid, "name": name, "website": website})
        for s_index, src in enumerate(check.items(item, "sources")):
            s_where = f"{where}.sources[{s_index}]"
            url = check.url(src, "url", s_where, required=True)
            layout = check.text(src, "layout", s_where, required=False) or "auto"
            interval = check.number(src, "crawl_interval_hours", s_where, 24.0, 0.0, 24.0 * 366)
            if url is None:
                continue
            if url in seen_urls:
                check.error(src.line, f"{s_where}.url", f"{url!r} is already listed at line {seen_urls[url]}")
                continue
            seen_urls[url] = src.line
            registry.sources.append(Source(bid, url, layout, interval, src.line))

    for index, item in enumerate(check.items(root, "engagements")):
        where = f"engagements[{index}]"
        vendor = check.slug(item, "vendor", where)
        brand = check.slug(item, "brand", where)
        start = check.day(item, "start", where, required=True)
        end = check.day(item, "end", where, required=False)
        scope = (check.text(item, "scope", where, required=False) or SCOPES_ANY).lower()
        share = check.number(item, "share", where, 1.0, 0.0, 1.0)
        evidence = check.url(item, "evidence", where, required=False)
        ok = True
        if vendor is not None and vendor not in vendor_ids:
            check.error(item.value["vendor"].line, f"{where}.vendor", f"unknown vendor {vendor!r}")
            ok = False
        if brand is not None and brand not in brand_ids:
            check.error(item.value["brand"].line, f"{where}.brand", f"unknown brand {brand!r}")
            ok = False
        if start and end and end < start:
            check.error(item.value["end"].line, f"{where}.end", f"end {end} is before start {start}")
            ok = False
        if ok and vendor and brand and start:
            registry.engagements.append(Engagement(vendor, brand, start, end, scope, share, evidence, item.line))

    _check_overlaps(registry.engagements, check)
    if check.errors:
        count = len(check.errors)
        raise RegistryError(f"{count} mistake{'s' if count > 1 else ''} in {path}:\n  " + "\n  ".join(check.errors))
    return registry


def _check_overlaps(engagements: list[Engagement], check: _Checker) -> None:
    """The same vendor cannot serve the same brand in the same scope twice at once."""
    by_key: dict[tuple[str, str, str], list[Engagement]] = {}
    for eng in engagements:
        by_key.setdefault((eng.vendor, eng.brand, eng.scope), []).append(eng)
    for (vendor, brand, _scope), group in by_key.items():
        group.sort(key=lambda e: e.start)
        for earlier, later in zip(group, group[1:], strict=False):
            if earlier.end is None or later.start <= earlier.end:
                check.error(
                    later.line,
                    "engagements",
                    f"window {later.start}..{later.end or 'open'} for vendor {vendor!r} and brand {brand!r} "
                    f"overlaps the one at line {earlier.line} ({earlier.start}..{earlier.end or 'open'})",
                )


def load_registry(db: sqlite_utils.Database, path: str | Path) -> RegistrySummary:
    """Validate the file, then upsert it in one transaction: all of it lands or none."""
    text = read_user_text(path, RegistryError)
    registry = parse_registry(text, str(Path(path)))
    write_registry(db, registry)
    return RegistrySummary(
        len(registry.vendors), len(registry.brands), len(registry.engagements), len(registry.sources)
    )


def write_registry(db: sqlite_utils.Database, registry: Registry) -> None:
    """Upsert vendors, brands and sources; replace the engagements of the brands listed.

    Engagements are replaced per brand (not merged) so that a window corrected in the
    file is corrected in the database. Plain SQL keeps the whole write in one transaction.
    """
    with transaction(db) as conn:
        conn.executemany(
            "INSERT INTO vendors (id, name, website, notes) VALUES (:id, :name, :website, :notes) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, website=excluded.website, notes=excluded.notes",
            registry.vendors,
        )
        conn.executemany(
            "INSERT INTO brands (id, name, website) VALUES (:id, :name, :website) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, website=excluded.website",
            registry.brands,
        )
        conn.executemany(
            "INSERT INTO sources (id, brand_id, url, layout, crawl_interval_hours) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET brand_id=excluded.brand_id, layout=excluded.layout, "
            "crawl_interval_hours=excluded.crawl_interval_hours",
            [(source_id(s.url), s.brand, s.url, s.layout, s.interval_hours) for s in registry.sources],
        )
        brands = sorted({e.brand for e in registry.engagements} | {b["id"] for b in registry.brands})
        conn.executemany("DELETE FROM engagements WHERE brand_id = ?", [(b,) for b in brands])
        conn.executemany(
            "INSERT INTO engagements (vendor_id, brand_id, start_date, end_date, scope, share, evidence_url) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (e.vendor, e.brand, e.start.isoformat(), e.end.isoformat() if e.end else None, e.scope, e.share, e.evidence)
                for e in registry.engagements
            ],
        )
