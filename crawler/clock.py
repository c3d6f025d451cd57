"""The crawl's clock: the moment relative review dates ("3 weeks ago") are read against."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.errors import ReputationError

CLOCK_SETTING = "REPUTATION_CRAWL_CLOCK"


def crawl_clock(value: str | None) -> str | None:
    """REPUTATION_CRAWL_CLOCK as an ISO time in UTC (a bare date means its noon); None when unset."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ReputationError(f"{CLOCK_SETTING}: {value!r} is not an ISO date or time") from None
    if len(str(value)) == 10:
        moment = moment.replace(hour=12)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=UTC, microsecond=0).isoformat()


def crawled_at(clock: str | None) -> str:
    """When a page counts as fetched: the fixed clock when one is set, else now (UTC, seconds)."""
    return clock or datetime.now(UTC).replace(microsecond=0).isoformat()
