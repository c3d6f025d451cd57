"""Scrapy settings for the review crawl: polite by default, overridable with ``-s KEY=VALUE``.

Found through ``SCRAPY_SETTINGS_MODULE=crawler.settings`` (or scrapy.cfg in a checkout), so a
crawl runs from any folder once the packages are installed.

Tests and schedulers override timing settings (DOWNLOAD_TIMEOUT, AUTOTHROTTLE_ENABLED...)
on the command line; everything else here is the production default.
"""

from __future__ import annotations

import os

from storage.version import __version__

BOT_NAME = "reputation"

SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"
# Imports only the module of the spider a crawl runs (spiders/<name>.py), not all of them.
SPIDER_LOADER_CLASS = "crawler.spider_loader.OnDemandSpiderLoader"

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
# The reviews spider yields one item per listing page (crawler.items.ReviewPage).
CONCURRENT_ITEMS = 1

# Transient failures are retried; 429/503 are first slowed down by BackoffMiddleware.
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"  # failures are counted per reason in crawl_runs
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
DOWNLOAD_TIMEOUT = 30

# Response size: a review listing is well under 2 MB; a larger body is a wrong URL, a dump or a
# trap. Past DOWNLOAD_WARNSIZE Scrapy logs a warning; past DOWNLOAD_MAXSIZE it drops the download
# (counted as the error ``too_large``, and a listing that is too large marks its source failed).
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024

# Redirects: in scope only (crawler.middlewares.RedirectScopeMiddleware), and a short chain.
REDIRECT_MAX_TIMES = 5

# Retry-After handling (crawler.middlewares.BackoffMiddleware).
BACKOFF_MAX_DELAY = 300.0  # never wait longer than this for one Retry-After
BACKOFF_DEFAULT_DELAY = 5.0  # wait on 429/503 without Retry-After (doubles per retry)

COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # no listening port for an unattended crawl

DOWNLOADER_MIDDLEWARES = {
    # Above RetryMiddleware (550) so it sees 429/503 first on the way back.
    "crawler.middlewares.BackoffMiddleware": 560,
    # Above RedirectMiddleware (600): sees a 3xx before it is followed.
    "crawler.middlewares.RedirectScopeMiddleware": 610,
    # Below every built-in one, so it sees the final, decompressed 200 response: listing pages are
    # extracted in a worker process while the crawl goes on (crawler.extraction_pool).
    "crawler.extraction_pool.ExtractionPoolMiddleware": 50,
}
# Worker processes for extraction; unset: one when the machine has a second CPU, 0: none.
REPUTATION_EXTRACT_PROCESSES = None

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

# The SQLite file the spider reads sources from and the store pipeline writes to: $REPUTATION_DB
# or -s REPUTATION_DB=PATH. No default: `scrapy crawl` without one stops with one line
# (crawler.commands.crawl) rather than creating ./reputation.db wherever it was started.
REPUTATION_DB = os.environ.get("REPUTATION_DB") or None
REPUTATION_BATCH_SIZE = 2000  # reviews per write transaction...
REPUTATION_FLUSH_SECONDS = 10.0  # ...or fewer, once this long has passed since the last write (a timer)
# Pagination guards (spiders.reviews), each stop counted under reputation/stopped/ in crawl_runs.detail:
REPUTATION_MAX_PAGES_PER_SOURCE = 1000  # page_budget: pages fetched per source and crawl, at most
REPUTATION_MAX_EMPTY_PAGES = 3  # stopped_empty: this many pages in a row without a review end a chain
# stopped_repeating (no setting): a page whose reviews were all seen before in this crawl ends its chain.
# Set by crawler.launcher: the file where the crawl writes the id of the crawl_runs row it opens.
REPUTATION_RUN_ID_FILE = None

# Pages rendered in a headless browser, for sources registered with `render: browser` (crawler.browser).
# The add-on turns scrapy-playwright on only in a crawl that has such a source; other crawls never
# load it. Politeness settings above apply to rendered pages as to plain ones.
ADDONS = {"crawler.browser.BrowserRendering": 0}
REPUTATION_BROWSER_PATH = "/usr/bin/chromium"  # the machine's Chromium (`make browser`); nothing is downloaded
REPUTATION_BROWSER_WAIT_UNTIL = "networkidle"  # read the page once its scripts' requests have settled

# `crawl` checks REPUTATION_DB before starting; Scrapy's other commands are unchanged.
COMMANDS_MODULE = "crawler.commands"

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
