"""The crawl baseline: fetch the same listing pages, parse their links, yield nothing else.

Run by bench.crawling with ``scrapy runspider``; start URLs come from ``-a urls=FILE`` (one per
line) and the page count is written to the JSON file named by ``-a stats=FILE`` at close.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import scrapy
from scrapy.http import Response

NEXT_URL = re.compile(r'"nextUrl"\s*:\s*"([^"]+)"')


class BareSpider(scrapy.Spider):
    """Follows every link under each start URL (listing pages only link to more of the listing)."""

    name = "bare"

    def __init__(self, urls: str = "", stats: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_list = [u.strip() for u in Path(urls).read_text().splitlines() if u.strip()]
        self.stats_path = stats
        self.seen: set[str] = set(self.start_list)
        self.pages = 0

    async def start(self) -> Any:
        for url in self.start_list:
            yield scrapy.Request(url, callback=self.parse, cb_kwargs={"root": url})

    def parse(self, response: Response, root: str) -> Iterator[scrapy.Request]:
        self.pages += 1
        links = response.css("a::attr(href), link[rel~=next]::attr(href)").getall()
        links += NEXT_URL.findall(response.text)  # the app site paginates in embedded JSON
        for href in links:
            url = urldefrag(response.urljoin(href.strip())).url
            if url.startswith(root) and url not in self.seen:
                self.seen.add(url)
                yield scrapy.Request(url, callback=self.parse, cb_kwargs={"root": root})

    def closed(self, reason: str) -> None:
        if self.stats_path:
            Path(self.stats_path).write_text(json.dumps({"pages": self.pages, "reason": reason}))
