"""What a valid registry holds, ready to be written: vendors, brands, sources and engagements."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from storage.records import Engagement, Source

T = TypeVar("T")


@dataclass(frozen=True)
class Vendor:
    """One row of ``vendors``."""

    id: str
    name: str
    website: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Brand:
    """One row of ``brands``."""

    id: str
    name: str
    website: str | None = None


@dataclass
class Registry:
    """A validated registry; every reference in it resolves and no windows overlap."""

    vendors: list[Vendor] = field(default_factory=list)
    brands: list[Brand] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    engagements: list[Engagement] = field(default_factory=list)
    # Brands that said ``sources: suggest``: none of their sources is loaded; their website is set.
    suggest_sources: list[Brand] = field(default_factory=list)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A row read from the file, with where it came from, so later checks can point at it."""

    value: T
    where: str  # e.g. "engagements[2]"
    line: int
    field_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.field_lines.get(key, self.line)


def source_id(url: str) -> str:
    """Sources are keyed by a short hash of their URL so ids survive renames of brands."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
