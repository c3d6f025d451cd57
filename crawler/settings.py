"""Scrapy settings for the review crawl: polite by default, overridable with ``-s KEY=VALUE``.

Tests and schedulers override timing settings (DOWNLOAD_TIMEOUT, AUTOTHROTTLE_ENABLED...)
on the command line; everything else here is the production default.
"""

from __future__ import annotations

import os

from storage.version import __version__

BOT_NAME = "reputation"

SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

# Crawl responsibly by identifying ourselves.
USER_AGENT = f"reputation-bot/{__version__} (+https://github.com/reputation-project/reputation)"

ROBOTSTXT_OBEY = True

# Concurrency and throttling: a handful of requests in flight overall, one per site.
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# Items processed in parallel per response. The pipelines are synchronous, so parallel workers
# only add scheduling: Scrapy starts this many asyncio tasks for every page, items or not.
# A listing page holds 10-20 reviews.
CONCURRENT_ITEMS = 16

# Transient failures are retried; 429/503 are first slowed down by BackoffMiddleware.
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"  # failures are counted per reason in crawl_runs
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
DOWNLOAD_TIMEOUT = 30

# Retry-After handling (crawler.middlewares.BackoffMiddleware).
BACKOFF_MAX_DELAY = 300.0  # never wait longer than this for one Retry-After
BACKOFF_DEFAULT_DELAY = 5.0  # wait on 429/503 without Retry-After (doubles per retry)

COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # no listening port for an unattended crawl

DOWNLOADER_MIDDLEWARES = {
    # Above RetryMiddleware (550) so it sees 429/503 first on the way back.
    "crawler.middlewares.BackoffMiddleware": 560,
}

# validate -> normalise -> dedupe -> store
ITEM_PIPELINES = {
    "crawler.pipelines.ValidatePipeline": 100,
    "crawler.pipelines.NormalizePipeline": 200,
    "crawler.pipelines.DedupePipeline": 300,
    "crawler.pipelines.StorePipeline": 900,
}

# Dropped items are counted by reason in stats; one log line each would drown the log.
DEFAULT_DROPITEM_LOG_LEVEL = "DEBUG"
# No per-item "Scraped from" record unless LOG_LEVEL is DEBUG (building it costs even when hidden).
LOG_FORMATTER = "crawler.middlewares.QuietItemLogFormatter"

# The SQLite file the spider reads sources from and the store pipeline writes to.
REPUTATION_DB = os.environ.get("REPUTATION_DB") or "reputation.db"
REPUTATION_BATCH_SIZE = 2000  # reviews per write transaction...
REPUTATION_FLUSH_SECONDS = 10.0  # ...or fewer, once this long has passed since the last write
# Set by crawler.launcher to the crawl_runs row it created; plain `scrapy crawl` creates one.
REPUTATION_CRAWL_RUN_ID = None

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
