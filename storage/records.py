"""Rows that cross layers: one type each, shared by the registry, the crawler and the roll-ups."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One row of ``sources``: a listing page of a brand's reviews."""

    id: str
    brand_id: str
    url: str
    layout: str
    crawl_interval_hours: float
    last_crawl_at: str | None
