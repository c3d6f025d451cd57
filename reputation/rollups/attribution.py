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
* Channel scope: an engagement's ``scope`` may name a channel (voice/phone, chat, email, social;
  see :data:`SCOPE_CHANNELS`). For brands with such an engagement, :func:`detect_channels` reads
  each review's title and body for the channels it reveals (:data:`CHANNEL_PATTERNS`, whole words,
  any case): chat, live chat, messenger, messaging -> chat; phone, called, calling, on hold, call
  centre, helpline, hotline -> voice; email -> email; Twitter, tweet, Facebook, Instagram, DM,
  social media -> social. On a given day, a review goes to the active engagements whose scope is a
  channel it reveals when exactly one such channel matches (basis ``scope``; e.g. a chat review of
  a brand split voice/chat goes wholly to the chat vendor, even if it also mentions an email
  follow-up); when it reveals a channel no scoped engagement covers, to the active ``all``-scope
  engagements if there are any (they cover every channel; basis ``scope``); otherwise (no channel
  revealed, or two matching channels) it keeps the share split (basis ``share``). The result per
  review is kept in ``review_channels`` and shown by the ``vendor_review_attribution`` view.
  Reading the words is the costly part of a rebuild, so each result is also saved (table
  ``review_channel_scans``) with a fingerprint of these rules (:data:`CHANNEL_RULES_KEY`); triggers
  on reviews delete a review's saved result when its title, body or id changes or it is deleted
  (storage migration 13), so a rebuild reads again only reviews that are new or edited, or all
  of them when the rules change (:func:`scan_channels`).
"""

from __future__ import annotations

import hashlib
import re
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

# The channel words a review can reveal, matched as whole words in any case (module doc).
CHANNEL_PATTERNS: dict[str, re.Pattern[str]] = {
    "chat": re.compile(
        r"\b(?:live[- ]?chat|web ?chat|chat(?:s|ted|ting|bot|bots)?|messenger|whatsapp|messaging)\b", re.I
    ),
    "voice": re.compile(
        r"\b(?:(?:tele)?phone[ds]?|phoning|call(?:s|ed|ing)?|call[- ]?cent(?:re|er)s?|on hold|helpline|hotline|rang)\b",
        re.I,
    ),
    "email": re.compile(r"\b(?:e-?mail(?:s|ed|ing)?)\b", re.I),
    "social": re.compile(
        r"\b(?:twitter|tweet(?:s|ed)?|facebook|instagram|social media|dms?|direct messages?)\b", re.I
    ),
}
CHANNELS = tuple(CHANNEL_PATTERNS)
# Engagement scopes that name a channel; any other scope (all, billing...) covers no one channel.
SCOPE_CHANNELS = {
    "voice": "voice",
    "phone": "voice",
    "telephone": "voice",
    "calls": "voice",
    "chat": "chat",
    "live chat": "chat",
    "messaging": "chat",
    "email": "email",
    "e-mail": "email",
    "social": "social",
    "social media": "social",
}
SCOPE_ALL = "all"


@dataclass(frozen=True)
class Period:
    """A stretch of days during which ``vendor_id`` gets ``weight`` of each review of ``brand_id``."""

    brand_id: str
    vendor_id: str
    start_date: str
    end_date: str
    weight: float
    channels: str = ""  # the channel key of the reviews it applies to ('' = none revealed)
    basis: str = "share"  # 'scope': given by a matching channel scope; 'share': the share split


def detect_channels(text: str) -> tuple[str, str]:
    """(channel key, matched words) for a review text: e.g. ('chat,email', 'live chat, email')."""
    found: list[str] = []
    words: list[str] = []
    for channel, pattern in CHANNEL_PATTERNS.items():
        hits = [m.group(0).lower() for m in pattern.finditer(text)]
        if hits:
            found.append(channel)
            words.extend(dict.fromkeys(hits))
    return ",".join(found), ", ".join(words)


def scope_channel(scope: str | None) -> str | None:
    """The channel an engagement scope names, or None (all, or a scope that is not a channel)."""
    return SCOPE_CHANNELS.get((scope or SCOPE_ALL).strip().lower())


def channel_brands(engagements: Iterable[Engagement]) -> set[str]:
    """Brands with at least one channel-scoped engagement: only their reviews need reading."""
    return {e.brand_id for e in engagements if scope_channel(e.scope) is not None}


def channel_text(title: str | None, body: str | None) -> str:
    """The text a review's channels are read from."""
    return f"{title or ''}\n{body or ''}"


# Changes whenever the channel words or the patterns' flags change, so saved scans go stale with them.
CHANNEL_RULES_KEY = hashlib.blake2b(
    repr([(name, p.pattern, int(p.flags)) for name, p in CHANNEL_PATTERNS.items()]).encode("utf-8"),
    digest_size=16,
).digest()


def scan_channels(
    rows: Iterable[tuple[int, str, str | None, str | None]],
) -> list[tuple[int, str, str, str]]:
    """(rowid, review id, channels, words) for each (rowid, review id, title, body) row: the reviews
    a rebuild has no saved scan for, read afresh."""
    return [
        (rid, review_id, *detect_channels(channel_text(title, body))) for rid, review_id, title, body in rows
    ]


def _channel_pool(active: list[Engagement], key: str) -> tuple[list[Engagement], str]:
    """The engagements that share a review with channel key ``key``, and the basis (module doc)."""
    revealed = set(key.split(",")) - {""}
    if revealed:
        matched = [e for e in active if scope_channel(e.scope) in revealed]
        if len({scope_channel(e.scope) for e in matched}) == 1:
            return matched, "scope"
        if not matched and any(scope_channel(e.scope) is not None for e in active):
            whole = [e for e in active if (e.scope or SCOPE_ALL).strip().lower() == SCOPE_ALL]
            if whole:
                return whole, "scope"
    return active, "share"


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
        result.append(
            Engagement(vendor_id, brand_id, start, known_end, scope or "all", float(share), evidence_url)
        )
    return result


def attribution_periods(
    engagements: Iterable[Engagement], as_of: date, channel_keys: dict[str, set[str]] | None = None
) -> list[Period]:
    """Cut each brand's timeline where the set of active engagements changes; weight by share.

    Windows still open are attributed up to ``as_of``. ``channel_keys`` holds, per brand, the
    channel keys its reviews revealed: each gets its own periods, weighted by the channel rule
    (module doc); key '' (no channel) is always there.
    """
    by_brand: dict[str, list[Engagement]] = defaultdict(list)
    for engagement in engagements:
        by_brand[engagement.brand_id].append(engagement)
    periods: list[Period] = []
    for brand_id in sorted(by_brand):
        items = by_brand[brand_id]
        keys = sorted((channel_keys or {}).get(brand_id, set()) | {""})
        if len({e.vendor_id for e in items}) == 1:
            periods.extend(Period(brand_id, items[0].vendor_id, UNDATED, UNDATED, 1.0, key) for key in keys)
        last_days = [_last_day(e, as_of) for e in items]
        cuts = sorted({e.start for e in items} | {day + timedelta(days=1) for day in last_days})
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            active = [e for e, last_day in zip(items, last_days, strict=True) if e.start <= lo <= last_day]
            if not active:
                continue
            last = (hi - timedelta(days=1)).isoformat()
            for key in keys:
                pool, basis = _channel_pool(active, key)
                total = sum(e.share for e in pool)
                if total <= 0:
                    continue
                shares: dict[str, float] = defaultdict(float)
                for e in pool:
                    shares[e.vendor_id] += e.share
                for vendor_id in sorted(shares):
                    weight = shares[vendor_id] / total
                    periods.append(Period(brand_id, vendor_id, lo.isoformat(), last, weight, key, basis))
    return _merge_adjacent(periods)


def _last_day(engagement: Engagement, as_of: date) -> date:
    """The last day an engagement counts for on ``as_of``: its end, or ``as_of`` while it still runs."""
    return engagement.end if engagement.end is not None and engagement.end <= as_of else as_of


def _merge_adjacent(periods: list[Period]) -> list[Period]:
    """Join back-to-back periods with the same brand, vendor and weight (fewer, clearer rows)."""
    merged: list[Period] = []
    last_by_key: dict[tuple[str, str, float, str, str], int] = {}
    for period in periods:
        if period.start_date == UNDATED:
            merged.append(period)
            continue
        key = (period.brand_id, period.vendor_id, period.weight, period.channels, period.basis)
        index = last_by_key.get(key)
        if index is not None:
            previous = merged[index]
            next_day = date.fromisoformat(previous.end_date) + timedelta(days=1)
            if next_day.isoformat() == period.start_date:
                merged[index] = Period(
                    period.brand_id,
                    period.vendor_id,
                    previous.start_date,
                    period.end_date,
                    period.weight,
                    period.channels,
                    period.basis,
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
