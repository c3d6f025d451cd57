"""The vendor registry: vendors, their client brands, engagement windows and review sources.

A registry file goes through four phases: read the YAML with line numbers (:mod:`.tree`),
check each section's entries (:mod:`.sections`), check entries against each other
(:mod:`.crosscheck`), and write it in one transaction (:mod:`.store`). Every mistake is
reported as ``FILE:LINE: field: problem``, all of them at once, and a file with any
mistake changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from crawler.extractors import layout_names
from reputation.registry.crosscheck import cross_check
from reputation.registry.entries import Registry, source_id
from reputation.registry.persist import write_registry
from reputation.registry.problems import Problems
from reputation.registry.sections import check_sections
from reputation.registry.tree import read_tree
from storage.errors import RegistryError

# A registry of thousands of brands is a few hundred kilobytes; anything past this is not one.
MAX_REGISTRY_BYTES = 10 * 1024 * 1024

__all__ = ["MAX_REGISTRY_BYTES", "Registry", "RegistrySummary", "load_registry", "parse_registry",
           "read_registry", "source_id", "write_registry"]


@dataclass(frozen=True)
class RegistrySummary:
    vendors: int
    brands: int
    engagements: int
    sources: int


def parse_registry(text: str, path: str = "<registry>", *, layouts: Sequence[str] | None = None) -> Registry:
    """Validate a registry document; raise RegistryError listing every mistake.

    ``layouts`` are the accepted values of a source's ``layout`` (default: the crawler's).
    """
    if len(text) > MAX_REGISTRY_BYTES or len(text.encode("utf-8", "replace")) > MAX_REGISTRY_BYTES:
        raise RegistryError(f"{path}:1: the registry is larger than {_megabytes(MAX_REGISTRY_BYTES)}")
    problems = Problems(path)
    root = read_tree(text, problems)
    sections = check_sections(root, list(layouts if layouts is not None else layout_names()), problems)
    registry = cross_check(sections, problems)
    problems.raise_if_any()
    return registry


def read_registry(path: str | Path) -> Registry:
    """Read and validate a registry file without touching any database."""
    return parse_registry(_read_text(Path(path)), str(path))


def load_registry(db: sqlite_utils.Database, path: str | Path) -> RegistrySummary:
    """Validate the file, then upsert it in one transaction: all of it lands or none."""
    registry = read_registry(path)
    write_registry(db, registry)
    return summarize(registry)


def summarize(registry: Registry) -> RegistrySummary:
    return RegistrySummary(
        len(registry.vendors), len(registry.brands), len(registry.engagements), len(registry.sources)
    )


def _read_text(file: Path) -> str:
    """The file as text, refusing one over ``MAX_REGISTRY_BYTES`` before reading all of it."""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_REGISTRY_BYTES + 1)
    except FileNotFoundError as exc:
        raise RegistryError(f"{file}: no such file") from exc
    except OSError as exc:
        raise RegistryError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_REGISTRY_BYTES:
        raise RegistryError(f"{file}:1: the registry is larger than {_megabytes(MAX_REGISTRY_BYTES)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RegistryError(f"{file}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _megabytes(size: int) -> str:
    return f"{size // (1024 * 1024)} MB"
