"""The `discovery` spider: walks a vendor's own site for evidence of whom it serves.

Navigation only: /sitemap.xml and robots.txt's Sitemap lines, the home page and the
case-study, clients, news and press sections linked from them, on the start URL's own host.
Each page goes to crawler.discovery.pages.extract_page; the evidence is the item. The same
settings as review crawls apply (robots.txt obeyed, AutoThrottle, one request per site at a
time), with no review pipelines: the launcher reads the items from a feed file.

    scrapy crawl discovery -a targets_file=targets.json -a status_file=status.json -O evidence.jsonl

``targets.json`` is ``[{"vendor_id": ..., "urls": [...]}]``: a site's home page is walked, any other
URL (a news article the user names) is read alone. The status file counts, per vendor,
pages read, pages refused by robots.txt and failures by reason, so an empty or blocked site is
reported as such (crawler.discovery.launch).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.utils.sitemap import Sitemap, sitemap_urls_from_robots
from twisted.python.failure import Failure

from crawler.discovery.pages import extract_page
from spiders.reviews import error_reason

# Sections worth reading: where vendors list clients and announce contracts.
SECTIONS = re.compile(r"/(case[-_]?stud\w*|clients?|customers?|our-work|work|success[-_]stor\w*|news\w*|press\w*|"
                      r"media|insights|about\w*|stories)(/|\.html?$|$)", re.I)
SKIP = re.compile(r"\.(?:png|jpe?g|gif|svg|webp|pdf|zip|css|js|ico|mp4|xml)$", re.I)


class DiscoverySpider(scrapy.Spider):
    """Read a vendor's site map and client/news sections; yield one evidence item per page."""

    name = "discovery"
    custom_settings = {"ITEM_PIPELINES": {}, "DEPTH_LIMIT": 3}

    def __init__(self, targets_file: str | None = None, status_file: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not targets_file:
            raise ValueError("the discovery spider needs -a targets_file=PATH")
        self.targets: list[dict[str, Any]] = json.loads(Path(targets_file).read_text(encoding="utf-8"))
        self.status_file = status_file
        self.max_pages = 300
        self.status: dict[str, Counter[str]] = defaultdict(Counter)
        self.fetched: Counter[str] = Counter()
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> DiscoverySpider:
        spider: DiscoverySpider = super().from_crawler(crawler, *args, **kwargs)
        spider.max_pages = max(1, crawler.settings.getint("DISCOVERY_MAX_PAGES_PER_VENDOR", 300))
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for target in self.targets:
            vendor = target["vendor_id"]
            for url in target["urls"]:
                parts = urlsplit(url)
                root = f"{parts.scheme}://{parts.netloc}/"
                if parts.path in ("", "/"):
                    first = self._request(urljoin(root, "/sitemap.xml"), vendor, root, self.parse_sitemap)
                    if first is not None:
                        yield first
                # a site's home page is walked; any other page the user names (a news article) is read alone
                request = self._request(url, vendor, root, self.parse_page, follow=parts.path in ("", "/"))
                if request is not None:
                    yield request

    def _request(self, url: str, vendor: str, root: str, callback: Any, *, follow: bool = True) -> scrapy.Request | None:
        url = urldefrag(url).url
        if url in self.seen or self.fetched[vendor] >= self.max_pages:
            if url not in self.seen:
                self.status[vendor]["page_budget"] += 1
            return None
        self.seen.add(url)
        self.fetched[vendor] += 1
        return scrapy.Request(url, callback=callback, errback=self.failed,
                              meta={"vendor": vendor, "root": root, "follow": follow}, dont_filter=True)

    def parse_robots(self, response: Response) -> Iterator[scrapy.Request]:
        vendor, root = response.meta["vendor"], response.meta["root"]
        for url in sitemap_urls_from_robots(response.body, base_url=response.url):
            request = self._request(url, vendor, root, self.parse_sitemap)
            if request is not None:
                yield request

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        vendor, root = response.meta["vendor"], response.meta["root"]
        try:
            sitemap = Sitemap(response.body)
        except Exception:  # noqa: BLE001 - lxml's errors on a page that is not XML
            self.status[vendor]["sitemap_unreadable"] += 1
            return
        for entry in sitemap:
            loc = entry.get("loc", "")
            callback = self.parse_sitemap if sitemap.type == "sitemapindex" else self.parse_page
            if self._wanted(loc, root) or sitemap.type == "sitemapindex":
                request = self._request(loc, vendor, root, callback)
                if request is not None:
                    yield request

    def _wanted(self, url: str, root: str) -> bool:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}/" != root or SKIP.search(parts.path):
            return False
        return parts.path in ("", "/") or bool(SECTIONS.search(parts.path))

    def parse_page(self, response: Response) -> Iterator[dict[str, Any] | scrapy.Request]:
        vendor, root = response.meta["vendor"], response.meta["root"]
        if not isinstance(response, TextResponse):
            self.status[vendor]["not_html"] += 1
            return
        self.status[vendor]["pages"] += 1
        evidence = extract_page(response.url, response.text)
        yield {"vendor_id": vendor, **evidence.to_item()}
        if not response.meta["follow"]:
            return
        if urlsplit(response.url).path in ("", "/"):
            # robots.txt's Sitemap lines, read once the home page got past robots.txt: asked for any
            # earlier, beside the robots middleware's own fetch, it raced that fetch
            robots = self._request(urljoin(root, "/robots.txt"), vendor, root, self.parse_robots)
            if robots is not None:
                yield robots
        for href in response.xpath("//a/@href").getall():
            url = response.urljoin(href)
            if self._wanted(url, root):
                request = self._request(url, vendor, root, self.parse_page)
                if request is not None:
                    yield request

    def failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        vendor = request.meta["vendor"]
        path = urlsplit(request.url).path
        if path in ("/robots.txt", "/sitemap.xml") and not failure.check(IgnoreRequest):
            self.status[vendor][f"optional_{path.strip('/').replace('.', '_')}_missing"] += 1
            return
        if failure.check(IgnoreRequest) and "robots.txt" in str(failure.value):
            self.status[vendor]["robots_forbidden"] += 1
        else:
            self.status[vendor][error_reason(failure)] += 1

    def closed(self, reason: str) -> None:
        if self.status_file:
            data = {"finish_reason": reason,
                    "vendors": {t["vendor_id"]: dict(self.status.get(t["vendor_id"], {})) for t in self.targets}}
            Path(self.status_file).write_text(json.dumps(data), encoding="utf-8")
