"""Accepted engagements as a registry YAML fragment, so they can live in version control.

``vendors load`` replaces a listed brand's engagements with the file's, so the fragment carries
every engagement of each brand it names (not only the accepted ones) with the vendors they need:
loading it gives back exactly the engagements the database holds for those brands.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import sqlite_utils
import yaml

from reputation.engagements.decide import registry_line
from storage.records import Engagement


def export_fragment(db: sqlite_utils.Database, *, vendor: str | None = None) -> dict[str, Any]:
    sql = "SELECT DISTINCT brand_id FROM engagement_candidates WHERE status = 'accepted' AND brand_id IS NOT NULL"
    params: tuple[Any, ...] = ()
    if vendor:
        sql += " AND vendor_id = ?"
        params = (vendor,)
    brand_ids = sorted(r[0] for r in db.execute(sql, params).fetchall())
    marks = ",".join("?" * len(brand_ids))
    rows = db.execute(f"SELECT vendor_id, brand_id, start_date, end_date, scope, share, evidence_url FROM engagements "
                      f"WHERE brand_id IN ({marks}) ORDER BY brand_id, start_date, vendor_id", brand_ids).fetchall()
    engagements = [Engagement(r[0], r[1], date.fromisoformat(r[2]), date.fromisoformat(r[3]) if r[3] else None,
                              r[4], r[5], r[6]) for r in rows]
    vendor_ids = sorted({e.vendor_id for e in engagements})
    vendors = db.execute(f"SELECT id, name, website FROM vendors WHERE id IN ({','.join('?' * len(vendor_ids))}) "
                         "ORDER BY id", vendor_ids).fetchall()
    brands = db.execute(f"SELECT id, name, website FROM brands WHERE id IN ({marks}) ORDER BY id", brand_ids).fetchall()

    def entry(row: tuple[Any, ...]) -> dict[str, Any]:
        return {k: v for k, v in zip(("id", "name", "website"), row, strict=True) if v}

    return {"vendors": [entry(v) for v in vendors], "brands": [entry(b) for b in brands],
            "engagements": [registry_line(e) for e in engagements]}


def export_accepted(db: sqlite_utils.Database, path: Path, *, vendor: str | None = None) -> int:
    """Write the fragment to ``path``; returns the number of engagements written."""
    fragment = export_fragment(db, vendor=vendor)
    text = yaml.safe_dump(fragment, sort_keys=False, allow_unicode=True)
    Path(path).write_text("# Engagements accepted from discovery candidates (reputation vendors candidates --export).\n"
                          "# Load with: reputation vendors load FILE\n" + text, encoding="utf-8")
    return len(fragment["engagements"])
