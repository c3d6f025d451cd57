"""Which sources a crawl covers, and the file that carries that choice from the launcher to the spider.

The launcher resolves and validates the selection once, in the parent process, and writes
the resolved sources to a JSON file; the spider reads that file instead of selecting again,
so both agree on exactly which sources one crawl covers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from storage.errors import NotFoundError, ReputationError
from storage.records import Source

SOURCES_FILE_VERSION = 1


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# A source whose last crawl was not ``ok`` (partial, empty, failed, interrupted) is tried again
# this soon, or at its own interval when that is shorter.
RETRY_NOT_OK_HOURS = 1.0


def is_due(source: Source, now: datetime) -> bool:
    """Never crawled, or its interval has passed since it last brought reviews.

    ``last_crawl_at`` moves only when a crawl found reviews (ok or partial). A source whose last
    crawl was not ``ok`` waits min(interval, RETRY_NOT_OK_HOURS) instead: a partial one is
    retried within the hour, and an empty or failed one is due again at once, at every
    ``--due-only`` run, unless it brought reviews within that hour.
    """
    if not source.last_crawl_at:
        return True
    hours = source.crawl_interval_hours
    if source.last_crawl_status not in (None, "ok"):
        hours = min(hours, RETRY_NOT_OK_HOURS)
    return _parse_time(source.last_crawl_at) + timedelta(hours=hours) <= now


CrawlKind = Literal["full", "incremental"]
FULL: CrawlKind = "full"
INCREMENTAL: CrawlKind = "incremental"
CRAWL_KINDS: tuple[CrawlKind, ...] = (FULL, INCREMENTAL)


def crawl_kind(source: Source, now: datetime, *, full: bool = False) -> CrawlKind:
    """``full`` (walk the listing to its end) or ``incremental`` (newest first, up to known reviews).

    Full when asked for, when the source has had no full crawl that ended ok, and when its
    ``full_crawl_interval_hours`` have passed since that crawl; incremental otherwise. A full crawl
    is what notices reviews the site took down and edits to older reviews.
    """
    if full or not source.last_full_crawl_at:
        return FULL
    due = _parse_time(source.last_full_crawl_at) + timedelta(hours=source.full_crawl_interval_hours)
    return FULL if due <= now else INCREMENTAL


# Every column of ``sources`` that Source holds, in the dataclass's field order.
SOURCE_COLUMNS = tuple(field.name for field in dataclasses.fields(Source))


def select_sources(
    db: sqlite_utils.Database,
    *,
    vendors: Iterable[str] | None = None,
    brands: Iterable[str] | None = None,
    due_only: bool = False,
    now: datetime | None = None,
) -> list[Source]:
    """Sources of the named brands plus the brands the named vendors serve; all when none named.

    Raises NotFoundError naming every vendor or brand that is not in the registry.
    """
    vendor_ids = sorted(set(vendors or ()))
    brand_ids = set(brands or ())
    missing = [f"vendor '{v}'" for v in vendor_ids if db["vendors"].count_where("id = ?", [v]) == 0]
    missing += [f"brand '{b}'" for b in sorted(brand_ids) if db["brands"].count_where("id = ?", [b]) == 0]
    if missing:
        raise NotFoundError(
            f"not in the registry: {', '.join(missing)} (load it with `reputation vendors load`)"
        )
    sql = f"SELECT {', '.join(SOURCE_COLUMNS)} FROM sources"
    params: list[str] = []
    if vendor_ids or brand_ids:
        for vendor in vendor_ids:
            rows = db.execute("SELECT DISTINCT brand_id FROM engagements WHERE vendor_id = ?", [vendor])
            brand_ids.update(row[0] for row in rows)
        if not brand_ids:
            return []
        params = sorted(brand_ids)
        sql += f" WHERE brand_id IN ({', '.join('?' for _ in params)})"
    sql += " ORDER BY brand_id, url"
    sources = [Source(*row) for row in db.execute(sql, params).fetchall()]  # columns in field order
    if due_only:
        moment = now or datetime.now(UTC)
        sources = [s for s in sources if is_due(s, moment)]
    return sources


def write_sources_file(path: str | os.PathLike[str], selection: Mapping[str, Any], sources: list[Source]) -> None:
    """The resolved crawl for the spider: what was asked for (recorded in the run log) and the sources."""
    payload = {
        "version": SOURCES_FILE_VERSION,
        "selection": dict(selection),
        "sources": [dataclasses.asdict(source) for source in sources],
    }
    Path(path).write_text(json.dumps(payload, sort_keys=True), encoding="utf-8")


def read_sources_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Source]]:
    """(selection, sources) from a file ``write_sources_file`` wrote; a bad file is a ReputationError."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if payload.get("version") != SOURCES_FILE_VERSION:
            raise ValueError(f"version {payload.get('version')!r}, expected {SOURCES_FILE_VERSION}")
        selection = dict(payload["selection"])
        sources = [Source(**fields) for fields in payload["sources"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReputationError(f"{path}: not a sources file of this version ({exc})") from exc
    return selection, sources
