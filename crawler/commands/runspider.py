"""``scrapy runspider spiders/reviews.py`` inside the project: the same database check as ``crawl``."""

from __future__ import annotations

import argparse

from scrapy.commands.runspider import Command as ScrapyRunSpiderCommand

from crawler.commands.crawl import require_database


class Command(ScrapyRunSpiderCommand):
    """Scrapy's own ``runspider``, with the database checked before the crawl process is built."""

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        require_database(self.settings)
