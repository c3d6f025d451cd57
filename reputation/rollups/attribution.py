"""Which vendor a review counts for, and when a brand changed vendors.

A review counts for a vendor only when the brand was served by that vendor on the review's
published date (engagement start..end inclusive; an open end, or an end after ``as_of``, runs to
``as_of``; engagements that start after ``as_of`` were not known then and are ignored).

Rules, applied by :func:`attribution_periods`:

* Several vendors at once (split by channel, or a handover overlap): each vendor gets
  ``share / sum(shares of the engagements active that day)``, so one review's weights across
  vendors always add up to 1 and nothing is double counted. Several engagements of the same
  vendor (e.g. voice and chat) add their shares.
* Reviews without a usable date (``date_precision = 'missing'`` or no ``published_at``): attributed
  with weight 1 only when the brand had a single vendor over its whole known history; otherwise
  they count for the brand only and appear in the vendors' ``n_undated``. Such periods use the
  sentinel dates :data:`UNDATED` .. :data:`UNDATED`.
* ``date_precision = 'relative'`` ("3 months ago") dates are attributed like exact ones: they
  were resolved against the crawl date, so they are off by days, not years. They are also counted
  in ``n_relative_date`` so a reader can see how much of a score rests on them.
* Reviews outside every engagement window count for the brand only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import sqlite_utils

from storage.errors import ReputationError
from storage.records import Engagement

UNDATED = "0000-00-00"  # sorts before every real date; period key for reviews without a date
SWITCH_MAX_GAP_DAYS = 60  # vendor B must start within this many days of vendor A's end
SWITCH_WINDOW_DAYS = 180  # days of reviews compared before and after a switch


@dataclass(frozen=True)
class Period:
    """A stretch of days during which ``vendor_id`` gets ``weight`` of each review of ``brand_id``."""

    brand_id: str
    vendor_id: str
    start_date: str
    end_date: str
    weight: float


@dataclass(frozen=True)
class Switch:
    """Vendor ``from_vendor_id`` stopped serving the brand on ``from_end``; ``to_vendor_id`` began on ``switch_date``."""

    brand_id: str
    from_vendor_id: str
    to_vendor_id: str
    from_end: date
    switch_date: date


def load_engagements(db: sqlite_utils.Database, as_of: date) -> list[Engagement]:
    """Engagements as known on ``as_of``: those that had started, with ``end`` None while still running then."""
    result: list[Engagement] = []
    rows = db.execute(
        "SELECT id, vendor_id, brand_id, start_date, end_date, scope, share, evidence_url FROM engagements ORDER BY id"
    ).fetchall()
    for eid, vendor_id, brand_id, start_raw, end_raw, scope, share, evidence_url in rows:
        try:
            start = date.fromisoformat(str(start_raw)[:10])
            end = date.fromisoformat(str(end_raw)[:10]) if end_raw else None
        except ValueError as exc:
            raise ReputationError(
                f"engagement {eid} ({vendor_id} -> {brand_id}) has a bad date: {exc}"
            ) from exc
        if start > as_of:
            continue
        known_end = end if end is not None and end <= as_of else None  # a later end was not known yet
        result.append(Engagement(vendor_id, brand_id, start, known_end, scope or "all", float(share), evidence_url))
    return result


def attribution_periods(engagements: Iterable[Engagement], as_of: date) -> list[Period]:
    """Cut each brand's timeline where the set of active engagements changes; weight by share.

    Windows still open are attributed up to ``as_of``.
    """
    by_brand: dict[str, list[Engagement]] = defaultdict(list)
    for engagement in engagements:
        by_brand[engagement.brand_id].append(engagement)
    periods: list[Period] = []
    for brand_id in sorted(by_brand):
        items = by_brand[brand_id]
        if len({e.vendor_id for e in items}) == 1:
            periods.append(Period(brand_id, items[0].vendor_id, UNDATED, UNDATED, 1.0))
        last_days = [_last_day(e, as_of) for e in items]
        cuts = sorted({e.start for e in items} | {day + timedelta(days=1) for day in last_days})
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            active = [e for e, last_day in zip(items, last_days, strict=True) if e.start <= lo <= last_day]
            total = sum(e.share for e in active)
            if not active or total <= 0:
                continue
            shares: dict[str, float] = defaultdict(float)
            for e in active:
                shares[e.vendor_id] += e.share
            last = (hi - timedelta(days=1)).isoformat()
            for vendor_id in sorted(shares):
                periods.append(Period(brand_id, vendor_id, lo.isoformat(), last, shares[vendor_id] / total))
    return _merge_adjacent(periods)


def _last_day(engagement: Engagement, as_of: date) -> date:
    """The last day an engagement counts for on ``as_of``: its end, or ``as_of`` while it still runs."""
    return engagement.end if engagement.end is not None and engagement.end <= as_of else as_of


def _merge_adjacent(periods: list[Period]) -> list[Period]:
    """Join back-to-back periods with the same brand, vendor and weight (fewer, clearer rows)."""
    merged: list[Period] = []
    last_by_key: dict[tuple[str, str, float], int] = {}
    for period in periods:
        if period.start_date == UNDATED:
            merged.append(period)
            continue
        key = (period.brand_id, period.vendor_id, period.weight)
        index = last_by_key.get(key)
        if index is not None:
            previous = merged[index]
            next_day = date.fromisoformat(previous.end_date) + timedelta(days=1)
            if next_day.isoformat() == period.start_date:
                merged[index] = Period(
                    period.brand_id, period.vendor_id, previous.start_date, period.end_date, period.weight
                )
                continue
        last_by_key[key] = len(merged)
        merged.append(period)
    return merged


def find_switches(engagements: Iterable[Engagement], max_gap_days: int = SWITCH_MAX_GAP_DAYS) -> list[Switch]:
    """Vendor A's engagement ended and another vendor's began within ``max_gap_days`` of that end."""
    by_brand: dict[str, list[Engagement]] = defaultdict(list)
    for engagement in engagements:
        by_brand[engagement.brand_id].append(engagement)
    found: set[Switch] = set()
    for brand_id, items in by_brand.items():
        for old in items:
            if old.end is None:  # still running: not (yet) a switch
                continue
            for new in items:
                if new.vendor_id == old.vendor_id or new.start <= old.start:
                    continue
                if abs((new.start - old.end).days) <= max_gap_days:
                    found.add(Switch(brand_id, old.vendor_id, new.vendor_id, old.end, new.start))
    return sorted(found, key=lambda s: (s.brand_id, s.switch_date, s.from_vendor_id, s.to_vendor_id))


def vendor_brands(engagements: Iterable[Engagement]) -> dict[str, set[str]]:
    """Brands each vendor had served by ``as_of``."""
    served: dict[str, set[str]] = defaultdict(set)
    for engagement in engagements:
        served[engagement.vendor_id].add(engagement.brand_id)
    return served


def multi_vendor_brands(engagements: Iterable[Engagement]) -> set[str]:
    """Brands with more than one vendor in their history: their undated reviews stay unattributed."""
    vendors: dict[str, set[str]] = defaultdict(set)
    for engagement in engagements:
        vendors[engagement.brand_id].add(engagement.vendor_id)
    return {brand for brand, ids in vendors.items() if len(ids) > 1}
