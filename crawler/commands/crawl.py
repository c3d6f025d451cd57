"""``scrapy crawl``, refusing to start without a database instead of creating ./reputation.db silently."""

from __future__ import annotations

import argparse
import sys

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.settings import BaseSettings

from crawler.crawl_db import DB_SETTING, MISSING_DB


def require_database(settings: BaseSettings | None) -> None:
    """One line and exit 1 when no database is configured, before Scrapy logs its banner or
    installs a reactor (the spider would otherwise fail later with a traceback)."""
    if settings is None or not settings.get(DB_SETTING):
        print(f"error: {MISSING_DB}", file=sys.stderr)
        sys.exit(1)


class Command(ScrapyCrawlCommand):
    """Scrapy's own ``crawl``, with the database checked before the crawl process is built."""

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        require_database(self.settings)
