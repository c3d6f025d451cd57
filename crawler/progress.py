"""Crawl progress out of the Scrapy child: a JSON line of counts every second, for the parent to show.

The crawl runs in a child process (crawler.launcher); the person who started it would see
nothing for minutes. This extension, enabled only when ``REPUTATION_PROGRESS_FILE`` is set
(the launcher sets it), appends one line per ``REPUTATION_PROGRESS_INTERVAL`` seconds and a
last one when the spider closes: pages, reviews and errors in all and per source, read from
the same crawl statistics the run log is built from (crawler.stat_keys). Lines are appended
whole and flushed, so the parent can read the file while it grows.
"""

from __future__ import annotations

import json
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler import stat_keys as keys

PROGRESS_FILE_SETTING = "REPUTATION_PROGRESS_FILE"
PROGRESS_INTERVAL_SETTING = "REPUTATION_PROGRESS_INTERVAL"
EXTENSION_PATH = "crawler.progress.ProgressFile"


def progress_snapshot(stats: dict[str, Any], *, final: bool = False) -> dict[str, Any]:
    """Totals and per-source counts from the crawl statistics (the sources the crawl covers, in order)."""
    sources: dict[str, dict[str, int]] = {}
    for source in stats.get(keys.SOURCES) or []:
        sources[str(source)] = {
            "pages": int(stats.get(keys.SOURCE_PAGES + source, 0)),
            "reviews": int(stats.get(keys.SOURCE_REVIEWS + source, 0)),
            "errors": int(stats.get(keys.SOURCE_ERRORS + source, 0)),
        }
    return {
        "pages": int(stats.get(keys.PAGES, 0)),
        "reviews": sum(s["reviews"] for s in sources.values()),
        "errors": sum(keys.by_prefix(stats, keys.ERRORS).values()),
        "sources": sources,
        "final": final,
    }


class ProgressFile:
    """Appends progress snapshots to the file the launcher named."""

    def __init__(self, crawler: Crawler, path: str, interval: float) -> None:
        self.crawler = crawler
        self.path = path
        self.interval = interval
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressFile:
        path = crawler.settings.get(PROGRESS_FILE_SETTING)
        if not path:
            raise NotConfigured("no progress file")
        extension = cls(crawler, str(path), crawler.settings.getfloat(PROGRESS_INTERVAL_SETTING, 1.0))
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Spider) -> None:
        self.loop = task.LoopingCall(self.write)
        self.loop.start(self.interval, now=True)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self.write(final=True)

    def write(self, final: bool = False) -> None:
        stats = self.crawler.stats.get_stats() if self.crawler.stats is not None else {}
        line = json.dumps(progress_snapshot(dict(stats), final=final))
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
