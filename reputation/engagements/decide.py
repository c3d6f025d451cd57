"""An analyst's decision on a candidate: accept writes (or confirms) an engagement, reject records the no.

Accepting builds the registry lines the engagement needs (vendor, brand, this pair's windows
with the new one) and runs them through the registry's own validation, so an accepted
engagement is exactly as valid as one typed into vendors.yaml: a window that overlaps one
already there is reported, never overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlite_utils
import yaml

from reputation.engagements.store import CandidateRow, get_candidate
from reputation.registry.loader import parse_registry
from storage.database import transaction, utcnow
from storage.errors import BadValueError, RegistryError
from storage.records import Engagement


@dataclass(frozen=True)
class Decision:
    candidate: int
    status: str
    engagement_id: int | None
    message: str


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _engagements(db: sqlite_utils.Database, vendor: str, brand: str) -> list[tuple[int, Engagement]]:
    rows = db.execute("SELECT id, vendor_id, brand_id, start_date, end_date, scope, share, evidence_url "
                      "FROM engagements WHERE vendor_id = ? AND brand_id = ? ORDER BY start_date",
                      (vendor, brand)).fetchall()
    return [(r[0], Engagement(r[1], r[2], date.fromisoformat(r[3]), date.fromisoformat(r[4]) if r[4] else None,
                              r[5], r[6], r[7])) for r in rows]


def registry_line(e: Engagement) -> dict[str, Any]:
    line: dict[str, Any] = {"vendor": e.vendor_id, "brand": e.brand_id, "start": e.start}
    if e.end:
        line["end"] = e.end
    line.update(scope=e.scope, share=e.share)
    if e.evidence_url:
        line["evidence"] = e.evidence_url
    return line


def validate(vendor: dict[str, Any], brand: dict[str, Any], engagements: list[Engagement], where: str) -> None:
    """The registry's checks on these lines; RegistryError naming every problem."""
    doc = {"vendors": [{k: v for k, v in vendor.items() if v}], "brands": [{k: v for k, v in brand.items() if v}],
           "engagements": [registry_line(e) for e in engagements]}
    parse_registry(yaml.safe_dump(doc, sort_keys=False), where)


def accept(db: sqlite_utils.Database, candidate_id: int, *, brand_name: str | None = None,
           brand_id: str | None = None, brand_website: str | None = None, start: date | None = None,
           share: float = 1.0) -> Decision:
    """Accept a proposed candidate; an unknown brand needs ``brand_name`` (a new brand entry) too."""
    c = get_candidate(db, candidate_id)
    if c.status != "proposed":
        raise BadValueError(f"candidate {c.id} is already {c.status}")
    vendor_row = db.execute("SELECT id, name, website FROM vendors WHERE id = ?", (c.vendor_id,)).fetchone()
    new_brand: dict[str, Any] | None = None
    if c.brand_id is None:
        if not brand_name:
            raise BadValueError(f"candidate {c.id} names {c.brand_name!r}, which is no registry brand; accept it "
                                "with --brand-name NAME (and --brand-id, --brand-website) to add the brand too")
        bid = brand_id or _slug(brand_name)
        if db.execute("SELECT 1 FROM brands WHERE id = ?", (bid,)).fetchone():
            raise BadValueError(f"brand id {bid!r} is taken; choose another with --brand-id")
        new_brand = {"id": bid, "name": brand_name, "website": brand_website}
        brand: dict[str, Any] = new_brand
    else:
        row = db.execute("SELECT id, name, website FROM brands WHERE id = ?", (c.brand_id,)).fetchone()
        brand = {"id": row[0], "name": row[1], "website": row[2]}
    vendor = {"id": vendor_row[0], "name": vendor_row[1], "website": vendor_row[2]}
    brand_key = str(brand["id"])
    existing = _engagements(db, c.vendor_id, brand_key)
    day = start or (date.fromisoformat(c.event_date) if c.event_date else None)
    where = f"candidate {c.id}"

    if c.relation == "ended":
        if day is None:
            raise BadValueError(f"candidate {c.id} has no date; give --start for the end date")
        # the window this end belongs to: the latest one of that scope that began before it
        open_ = sorted(((i, e) for i, e in existing if e.scope == c.scope and e.start <= day),
                       key=lambda pair: pair[1].start, reverse=True)
        if not open_:
            raise BadValueError(f"candidate {c.id}: no engagement of {c.vendor_id} for {brand['id']} "
                                f"({c.scope}) began before {day}; accept its start first")
        eid, old = open_[0]
        if old.end is not None:  # already ended: the same month confirms it, another date is a conflict
            if old.end.replace(day=1) != day.replace(day=1):
                raise BadValueError(f"{where} conflicts with engagement {eid}, which already ends {old.end}, "
                                    f"not {day}; nothing written (correct the registry, or reject the candidate)")
            with transaction(db) as conn:
                _mark(conn, c, "accepted", eid)
            return Decision(c.id, "accepted", eid, f"confirms the end of engagement {eid} ({old.end})")
        closed = Engagement(old.vendor_id, old.brand_id, old.start, day, old.scope, old.share,
                            old.evidence_url or c.url)
        _checked(vendor, brand, [e for i, e in existing if i != eid] + [closed], where)
        with transaction(db) as conn:
            conn.execute("UPDATE engagements SET end_date = ? WHERE id = ?", (day.isoformat(), eid))
            _mark(conn, c, "accepted", eid)
        return Decision(c.id, "accepted", eid, f"engagement {eid} of {c.vendor_id} for {brand['id']} ends {day}")

    covering = [(i, e) for i, e in existing if e.scope in (c.scope, "all") and (day is None or e.active(day))]
    same_start = [(i, e) for i, e in existing
                  if c.relation == "started" and day is not None and e.scope == c.scope and e.start.replace(day=1) == day.replace(day=1)]
    if same_start or (covering and c.relation != "started"):
        eid = (same_start or covering)[0][0]
        with transaction(db) as conn:
            _mark(conn, c, "accepted", eid)
        return Decision(c.id, "accepted", eid, f"confirms engagement {eid} of {c.vendor_id} for {brand['id']}")
    if day is None:
        raise BadValueError(f"candidate {c.id} ({c.relation}) has no date; give --start YYYY-MM-DD")
    new = Engagement(c.vendor_id, brand_key, day, None, c.scope, share, c.url)
    for eid, old in existing:
        if old.scope == new.scope and (old.end is None or old.end >= day):
            raise BadValueError(
                f"{where} conflicts with engagement {eid}: {c.vendor_id} serves {brand_key} ({old.scope}) "
                f"{old.start}..{old.end or 'open'}, and a window from {day} would overlap it; nothing written "
                "(end that engagement first, or reject the candidate)")
    _checked(vendor, brand, [e for _, e in existing] + [new], where)
    with transaction(db) as conn:
        if new_brand is not None:
            conn.execute("INSERT INTO brands (id, name, website) VALUES (?, ?, ?)",
                         (new_brand["id"], new_brand["name"], new_brand["website"]))
        cursor = conn.execute(
            "INSERT INTO engagements (vendor_id, brand_id, start_date, end_date, scope, share, evidence_url) "
            "VALUES (?, ?, ?, NULL, ?, ?, ?)", (new.vendor_id, new.brand_id, day.isoformat(), new.scope, share, c.url))
        eid = int(cursor.lastrowid or 0)
        if new_brand is not None:
            conn.execute("UPDATE engagement_candidates SET brand_id = ? WHERE id = ?", (new_brand["id"], c.id))
        _mark(conn, c, "accepted", eid)
    return Decision(c.id, "accepted", eid,
                    f"engagement {eid}: {c.vendor_id} serves {brand['id']} ({c.scope}) from {day}, evidence {c.url}")


def _checked(vendor: dict[str, Any], brand: dict[str, Any], engagements: list[Engagement], where: str) -> None:
    try:
        validate(vendor, brand, engagements, where)
    except RegistryError as exc:
        raise RegistryError(f"{where} conflicts with the registry, nothing written:\n{exc}") from exc


def _mark(conn: Any, c: CandidateRow, status: str, engagement_id: int | None) -> None:
    conn.execute("UPDATE engagement_candidates SET status = ?, decided_at = ?, engagement_id = ? WHERE id = ?",
                 (status, utcnow(), engagement_id, c.id))


def reject(db: sqlite_utils.Database, candidate_id: int) -> Decision:
    c = get_candidate(db, candidate_id)
    if c.status != "proposed":
        raise BadValueError(f"candidate {c.id} is already {c.status}")
    with transaction(db) as conn:
        _mark(conn, c, "rejected", None)
    return Decision(c.id, "rejected", None, f"candidate {c.id} rejected ({c.brand_name} {c.relation})")
