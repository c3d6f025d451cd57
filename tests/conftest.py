"""Shared fixtures: a fresh database path, a database builder and a local HTTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import HealthCheck, settings
from redis_server import redis_server, redis_url  # noqa: F401  (fixtures for the distributed-mode tests)
from servers import LocalServer

from storage.database import connect

# Property tests are checked for what they compute, never for how fast: a loaded machine (the
# suite's CI has two cores) must not turn a slow example into a failure. Tests' own settings
# start from this profile.
settings.register_profile("load-proof", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("load-proof")

_ids = count(1)


class Builder:
    """Registry rows, reviews and their sentiment written straight into a real database.

    Defaults keep a test short (title-case names, one source per brand, model m@1); every
    column a test cares about can be given. ``review(..., model=None)`` stores a review
    that has not been scored yet.
    """

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    @classmethod
    def open(cls, path: str | Path) -> Builder:
        return cls(connect(path))

    def vendor(self, *ids: str, name: str | None = None, website: str | None = None) -> Builder:
        """Vendors named after their ids, or ``name`` (for one id)."""
        if name is not None and len(ids) != 1:
            raise ValueError("name= goes with exactly one vendor id")
        self.db.table("vendors").insert_all(
            [{"id": v, "name": name or v.title(), "website": website} for v in ids]
        )
        return self

    def brand(self, *ids: str, name: str | None = None, url: str | None = None) -> Builder:
        """Brands with one source each (id ``src-<brand>``, at ``url`` or a loopback default)."""
        if (name is not None or url is not None) and len(ids) != 1:
            raise ValueError("name= and url= go with exactly one brand id")
        self.db.table("brands").insert_all([{"id": b, "name": name or b.title()} for b in ids])
        self.db.table("sources").insert_all(
            [{"id": f"src-{b}", "brand_id": b, "url": url or f"http://127.0.0.1/{b}"} for b in ids]
        )
        return self

    def engage(
        self, vendor: str, brand: str, start: str, end: str | None = None, share: float = 1.0
    ) -> Builder:
        self.db.table("engagements").insert(
            {"vendor_id": vendor, "brand_id": brand, "start_date": start, "end_date": end, "share": share}
        )
        return self

    def review(
        self,
        brand: str,
        day: str | None,
        *,
        score: float = 0.0,
        label: str = "neutral",
        cs: float | None = None,
        relevance: float | None = None,
        language: str | None = "en",
        precision: str = "exact",
        author: str | None = None,
        body: str | None = None,
        seen: str | None = None,
        model: tuple[str, str] | None = ("m", "1"),
        review_id: str | None = None,
        url: str | None = None,
        title: str | None = "",
        sentiment: dict[str, Any] | None = None,
    ) -> str:
        """One review (and, unless ``model`` is None, its sentiment row); returns its id.

        ``title=""`` means a generated title; ``sentiment`` sets or overrides sentiment columns.
        """
        rid = review_id or f"r{next(_ids)}"
        self.db.table("reviews").insert(
            {
                "id": rid,
                "source_id": f"src-{brand}",
                "brand_id": brand,
                "url": url,
                "author_hash": author or f"author-{rid}",
                "title": f"title {rid}" if title == "" else title,
                "body": body or f"review body {rid}",
                "body_hash": rid,
                "published_at": None if precision == "missing" else day,
                "date_precision": precision,
                "language": language,
                "first_seen": (seen or day or "2024-01-01") + "T08:00:00+00:00",
                "last_seen": "2025-01-01T00:00:00+00:00",
            }
        )
        if model is None:
            return rid
        relevance = relevance if relevance is not None else (0.9 if cs is not None else 0.1)
        self.db.table("review_sentiment").insert(
            {
                "review_id": rid,
                "model_id": model[0],
                "model_revision": model[1],
                "body_hash": rid,
                "label": label,
                "score": score,
                "cs_relevance": relevance,
                "cs_score": cs,
                # a review with no customer-service sentence is all "other" text
                "other_score": score if cs is None else None,
                "language": language,
                "scored_at": "2025-01-01T00:00:00+00:00",
                **(sentiment or {}),
            }
        )
        return rid


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a not-yet-created SQLite file in the test's own directory."""
    return tmp_path / "reputation.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite_utils.Database]:
    """The database at ``db_path``, created and migrated."""
    database = connect(db_path)
    yield database
    database.conn.close()


@pytest.fixture
def make(db: sqlite_utils.Database) -> Builder:
    """A Builder writing into ``db``."""
    return Builder(db)


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A started LocalServer on an ephemeral 127.0.0.1 port, stopped after the test."""
    with LocalServer() as server:
        yield server
