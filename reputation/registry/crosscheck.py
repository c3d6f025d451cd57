"""Phase 3: check entries against each other: unique ids and URLs, references, engagement windows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from reputation.registry.entries import Entry, Registry
from reputation.registry.problems import Problems
from reputation.registry.sections import Sections
from storage.records import Engagement

T = TypeVar("T")


def cross_check(found: Sections, problems: Problems) -> Registry:
    """The registry made of entries that agree with each other; every disagreement goes to ``problems``."""
    vendors = _unique(found.vendors, lambda v: v.id, "id", "vendor id", problems)
    brands = _unique(found.brands, lambda b: b.id, "id", "brand id", problems)
    sources = _unique(found.sources, lambda s: s.url, "url", "source URL", problems)
    vendor_ids = {v.value.id for v in vendors}
    brand_ids = {b.value.id for b in brands}
    engagements = []
    for entry in found.engagements:
        known = _references_known(entry, vendor_ids, brand_ids, problems)
        in_order = _window_in_order(entry, problems)  # checked even when a reference is wrong
        if known and in_order:
            engagements.append(entry)
    _check_overlaps(engagements, problems)
    return Registry(
        vendors=[v.value for v in vendors],
        brands=[b.value for b in brands],
        sources=[s.value for s in sources],
        engagements=[e.value for e in engagements],
        suggest_sources=[b.value for b in brands if b.value.id in found.suggest_sources],
    )


def _unique(
    entries: Iterable[Entry[T]], key_of: Callable[[T], str], field: str, what: str, problems: Problems
) -> list[Entry[T]]:
    """The first entry for each key; later ones are named as duplicates with the line of the first."""
    first: dict[str, Entry[T]] = {}
    for entry in entries:
        key = key_of(entry.value)
        if key in first:
            problems.add(entry.line_of(field), f"{entry.where}.{field}",
                         f"duplicate {what} {key!r} (first at line {first[key].line_of(field)})")
        else:
            first[key] = entry
    return list(first.values())


def _references_known(entry: Entry[Engagement], vendor_ids: set[str], brand_ids: set[str], problems: Problems) -> bool:
    engagement = entry.value
    ok = True
    if engagement.vendor_id not in vendor_ids:
        problems.add(entry.line_of("vendor"), f"{entry.where}.vendor", f"unknown vendor {engagement.vendor_id!r}")
        ok = False
    if engagement.brand_id not in brand_ids:
        problems.add(entry.line_of("brand"), f"{entry.where}.brand", f"unknown brand {engagement.brand_id!r}")
        ok = False
    return ok


def _window_in_order(entry: Entry[Engagement], problems: Problems) -> bool:
    engagement = entry.value
    if engagement.end is not None and engagement.end < engagement.start:
        problems.add(entry.line_of("end"), f"{entry.where}.end",
                     f"end {engagement.end} is before start {engagement.start}")
        return False
    return True


def _check_overlaps(engagements: list[Entry[Engagement]], problems: Problems) -> None:
    """The same vendor cannot serve the same brand in the same scope twice at once."""
    by_key: dict[tuple[str, str, str], list[Entry[Engagement]]] = {}
    for entry in engagements:
        e = entry.value
        by_key.setdefault((e.vendor_id, e.brand_id, e.scope), []).append(entry)
    for (vendor, brand, _scope), group in by_key.items():
        group.sort(key=lambda entry: entry.value.start)
        for earlier, later in zip(group, group[1:], strict=False):
            a, b = earlier.value, later.value
            if a.end is None or b.start <= a.end:
                problems.add(
                    later.line,
                    "engagements",
                    f"window {b.start}..{b.end or 'open'} for vendor {vendor!r} and brand {brand!r} "
                    f"overlaps the one at line {earlier.line} ({a.start}..{a.end or 'open'})",
                )
