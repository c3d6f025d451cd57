"""Readers for one field of one registry entry: each returns the value or None and names any mistake."""

from __future__ import annotations

import difflib
import math
import re
from datetime import date, datetime
from urllib.parse import urlsplit

from reputation.registry.problems import Problems
from reputation.registry.tree import Located

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class Fields:
    """Reads the fields of one mapping (``where`` names it in messages, e.g. ``engagements[0]``)."""

    def __init__(self, item: Located, where: str, problems: Problems) -> None:
        self.item = item
        self.where = where
        self.problems = problems

    def _error(self, key: str, message: str, *, at: int | None = None) -> None:
        line = at if at is not None else self.line_of(key)
        self.problems.add(line, f"{self.where}.{key}", message)

    def line_of(self, key: str) -> int:
        got = self.item.mapping.get(key)
        return got.line if got is not None else self.item.line

    def field_lines(self) -> dict[str, int]:
        return {key: value.line for key, value in self.item.mapping.items()}

    def only(self, allowed: tuple[str, ...]) -> None:
        """Every key must be one the section knows: a typo (``ends:``) must not silently mean 'absent'."""
        for key, got in self.item.mapping.items():
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self._error(key, f"unknown key ({hint}expected one of: {', '.join(allowed)})", at=got.key_line)

    def text(self, key: str, *, required: bool = True) -> str | None:
        got = self.item.mapping.get(key)
        if got is None or got.value is None or got.value == "":
            if required:
                self._error(key, "is required", at=self.item.line)
            return None
        if isinstance(got.value, bool) or not isinstance(got.value, str | int | float):
            self._error(key, f"must be text, not {_kind(got.value)}")
            return None
        return str(got.value).strip()

    def slug(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None and not SLUG.match(value):
            self._error(key, f"{value!r} must be a lower-case slug (a-z, 0-9, -)")
            return None
        return value

    def url(self, key: str, *, required: bool) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self._error(key, f"{value!r} is not an http(s) URL")
            return None
        return value

    def choice(self, key: str, known: list[str], default: str) -> str:
        value = self.text(key, required=False)
        if value is None:
            return default
        if value not in known:
            self._error(key, f"unknown {key} {value!r} (known: {', '.join(known)})")
            return default
        return value

    def day(self, key: str, *, required: bool) -> date | None:
        got = self.item.mapping.get(key)
        if got is None or got.value is None:
            if required:
                self._error(key, "is required (YYYY-MM-DD)", at=self.item.line)
            return None
        if isinstance(got.value, datetime):
            self._error(key, f"{got.value.isoformat()!r} must be a day without a time (YYYY-MM-DD)")
            return None
        if isinstance(got.value, date):
            return got.value
        try:
            return date.fromisoformat(str(got.value))
        except ValueError:
            self._error(key, f"{got.value!r} is not a date (YYYY-MM-DD)")
            return None

    def number(self, key: str, default: float, low: float, high: float) -> float:
        """A number in (low, high]; absent means ``default``."""
        got = self.item.mapping.get(key)
        if got is None or got.value is None:
            return default
        value = got.value
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) \
                or not low < value <= high:
            self._error(key, f"{value!r} must be a number in ({low:g}, {high:g}]")
            return default
        return float(value)


def entries(parent: Located, key: str, where: str, problems: Problems) -> list[tuple[str, Located]]:
    """The mappings listed under ``key`` (absent or empty: none), each with its field name."""
    got = parent.mapping.get(key)
    name = f"{where}.{key}" if where else key
    if got is None or got.value is None:
        return []
    if not isinstance(got.value, list):
        problems.add(got.line, name, f"must be a list, not {_kind(got.value)}")
        return []
    found = []
    for index, item in enumerate(got.value):
        if isinstance(item.value, dict):
            found.append((f"{name}[{index}]", item))
        else:
            problems.add(item.line, f"{name}[{index}]", f"must be a mapping, not {_kind(item.value)}")
    return found


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    return type(value).__name__
