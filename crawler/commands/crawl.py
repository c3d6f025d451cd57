"""``scrapy crawl``, refusing to start without a database instead of creating ./reputation.db silently."""

from __future__ import annotations

import argparse
import sys

from scrapy.commands.crawl import Command as ScrapyCrawlCommand

from crawler.crawl_db import DB_SETTING, MISSING_DB


class Command(ScrapyCrawlCommand):
    """Scrapy's own ``crawl``, with the database checked before the crawl process is built."""

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        if not self.settings.get(DB_SETTING):
            # One line and exit 1, before Scrapy logs its banner or installs a reactor.
            print(f"error: {MISSING_DB}", file=sys.stderr)
            sys.exit(1)
