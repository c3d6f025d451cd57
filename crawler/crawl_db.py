"""The one SQLite connection of a crawl process, shared by the spider and the item pipelines.

Reached through the crawler with ``CrawlDatabase.of(crawler)``: the first component that
asks (the spider, when it selects its own sources, or a pipeline's ``open_spider``) opens
it; it is closed on ``engine_stopped``, which Scrapy sends after ``spider_closed``, so the
store pipeline's last write and the run-log row still have it.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import sqlite_utils
from scrapy import signals

from storage.database import DB_ENV, connect
from storage.errors import ReputationError

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

DB_SETTING = "REPUTATION_DB"
MISSING_DB = (
    f"no database: set {DB_ENV}=path/to/reputation.db in the environment "
    f"or pass -s {DB_SETTING}=path/to/reputation.db"
)

_by_crawler: weakref.WeakKeyDictionary[Crawler, CrawlDatabase] = weakref.WeakKeyDictionary()


class CrawlDatabase:
    """Opens the crawl's database once, hands the same connection to every caller, closes it at the end."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._db: sqlite_utils.Database | None = None

    @classmethod
    def of(cls, crawler: Crawler) -> CrawlDatabase:
        """The crawler's one instance, created (and its closing hooked up) on first use."""
        holder = _by_crawler.get(crawler)
        if holder is None:
            holder = cls(crawler.settings.get(DB_SETTING) or None)
            crawler.signals.connect(holder.close, signal=signals.engine_stopped)
            _by_crawler[crawler] = holder
        return holder

    def open(self) -> sqlite_utils.Database:
        """The connection, opened (and the schema upgraded) on the first call."""
        if self._db is None:
            if not self.path:
                raise ReputationError(MISSING_DB)
            self._db = connect(self.path)
        return self._db

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
