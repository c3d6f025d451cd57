"""Precision and recall of discovery against known engagements (the demo generator's own)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from crawler.discovery.candidates import PROPOSE_CONFIDENCE
from reputation.engagements.store import CandidateRow
from storage.records import Engagement


@dataclass(frozen=True)
class DiscoveryScore:
    proposed: int        # candidates at or above the proposing confidence
    correct: int         # of those, ones that a known engagement bears out
    engagements: int     # known engagements
    found: int           # known engagements with a start candidate in the start's month and scope
    ends: int            # known engagements that ended
    ends_found: int      # of those, with an end candidate in the end's month
    wrong: tuple[str, ...]  # the proposed candidates nothing bears out, for the report

    @property
    def precision(self) -> float:
        return self.correct / self.proposed if self.proposed else 0.0

    @property
    def recall(self) -> float:
        return self.found / self.engagements if self.engagements else 0.0

    def line(self) -> str:
        return (f"discovery: precision {self.precision:.0%} ({self.correct}/{self.proposed} proposed candidates "
                f"right), recall {self.recall:.0%} ({self.found}/{self.engagements} engagements found with their "
                f"start month), ends {self.ends_found}/{self.ends}")


def _month(day: str | date | None) -> str:
    return (day.isoformat() if isinstance(day, date) else day or "")[:7]


def _bears_out(c: CandidateRow, truth: Sequence[Engagement]) -> bool:
    pair = [e for e in truth if e.vendor_id == c.vendor_id and e.brand_id == c.brand_id]
    if not pair:
        return False
    if c.relation == "client":
        return True
    if c.relation == "started":
        return any(_month(e.start) == _month(c.event_date) and e.scope in (c.scope, "all") for e in pair)
    if c.relation == "ended":
        return any(e.end is not None and _month(e.end) == _month(c.event_date) for e in pair)
    day = date.fromisoformat(c.event_date) if c.event_date else None  # renewed, expanded: inside a window
    return day is None or any(e.active(day) for e in pair)


def score_discovery(candidates: Iterable[CandidateRow], truth: Sequence[Engagement],
                    min_confidence: float = PROPOSE_CONFIDENCE) -> DiscoveryScore:
    proposed = [c for c in candidates if c.confidence >= min_confidence]
    right = [c for c in proposed if _bears_out(c, truth)]
    found = sum(1 for e in truth if any(
        c.relation == "started" and c.vendor_id == e.vendor_id and c.brand_id == e.brand_id
        and _month(c.event_date) == _month(e.start) and c.scope in (e.scope, "all") for c in proposed))
    ended = [e for e in truth if e.end is not None]
    ends_found = sum(1 for e in ended if any(
        c.relation == "ended" and c.vendor_id == e.vendor_id and c.brand_id == e.brand_id
        and _month(c.event_date) == _month(e.end) for c in proposed))
    wrong = tuple(f"{c.vendor_id}: {c.brand_name} {c.relation} {c.event_date or ''}".strip()
                  for c in proposed if c not in right)
    return DiscoveryScore(len(proposed), len(right), len(truth), found, len(ended), ends_found, wrong)
