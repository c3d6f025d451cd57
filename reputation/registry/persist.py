"""Phase 4: write a validated registry in one transaction, so that all of it lands or none."""

from __future__ import annotations

from dataclasses import asdict

import sqlite_utils

from reputation.registry.entries import Registry
from storage.database import transaction


def write_registry(db: sqlite_utils.Database, registry: Registry) -> None:
    """Upsert vendors, brands and sources; replace the engagements of the brands listed.

    Engagements are replaced per brand (not merged) so that a window corrected in the
    file is corrected in the database. Plain SQL keeps the whole write in one transaction;
    a source's ``last_crawl_at`` is left as the crawler wrote it.
    """
    with transaction(db) as conn:
        conn.executemany(
            "INSERT INTO vendors (id, name, website, notes) VALUES (:id, :name, :website, :notes) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, website=excluded.website, notes=excluded.notes",
            [asdict(v) for v in registry.vendors],
        )
        conn.executemany(
            "INSERT INTO brands (id, name, website) VALUES (:id, :name, :website) "
            "ON CONFLICT(id) DO UPDATE SET name=excluded.name, website=excluded.website",
            [asdict(b) for b in registry.brands],
        )
        conn.executemany(
            "INSERT INTO sources (id, brand_id, url, layout, crawl_interval_hours, render, full_crawl_interval_hours) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET brand_id=excluded.brand_id, layout=excluded.layout, "
            "crawl_interval_hours=excluded.crawl_interval_hours, render=excluded.render, "
            "full_crawl_interval_hours=excluded.full_crawl_interval_hours",
            [
                (
                    s.id,
                    s.brand_id,
                    s.url,
                    s.layout,
                    s.crawl_interval_hours,
                    s.render,
                    s.full_crawl_interval_hours,
                )
                for s in registry.sources
            ],
        )
        brands = sorted({e.brand_id for e in registry.engagements} | {b.id for b in registry.brands})
        conn.executemany("DELETE FROM engagements WHERE brand_id = ?", [(b,) for b in brands])
        conn.executemany(
            "INSERT INTO engagements (vendor_id, brand_id, start_date, end_date, scope, share, evidence_url) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (e.vendor_id, e.brand_id, e.start.isoformat(), e.end.isoformat() if e.end else None,
                 e.scope, e.share, e.evidence_url)
                for e in registry.engagements
            ],
        )
