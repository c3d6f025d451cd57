"""Run the `discovery` spider in a child Scrapy process, as review crawls run (crawler.launcher).

The parent writes the targets, the child writes one evidence item per page to a JSON-lines feed
and its per-vendor counts to a status file; the parent reads both back and names each vendor's
outcome: ``ok``, ``empty: ...`` (pages read but no client evidence, or nothing to read), or
``blocked: ...`` (robots.txt refuses the site, or it answers 401/403).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.discovery.pages import PageEvidence
from crawler.launcher import CHILD_MODULE, LOG_TAIL_CHARS, CrawlError, _run_child

BLOCKING_STATUSES = ("http_401", "http_403")


@dataclass(frozen=True)
class Target:
    vendor_id: str
    urls: tuple[str, ...]


@dataclass
class VendorCrawl:
    """What the crawl read for one vendor, and how it went."""

    vendor_id: str
    pages: list[PageEvidence] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        read = self.counts.get("pages", 0)
        robots = self.counts.get("robots_forbidden", 0)
        refused = sum(self.counts.get(k, 0) for k in BLOCKING_STATUSES)
        if read == 0 and robots:
            return "blocked: robots.txt disallows the site's pages"
        if read == 0 and refused:
            codes = ", ".join(k.removeprefix("http_") for k in BLOCKING_STATUSES if self.counts.get(k))
            return f"blocked: the site refused access (HTTP {codes})"
        if read == 0:
            failures = {k: v for k, v in self.counts.items() if not k.startswith("optional_")}
            why = ", ".join(f"{k} {v}" for k, v in sorted(failures.items())) or "no page could be read"
            return f"empty: no page read ({why})"
        if not any(p.mentions or p.sentences for p in self.pages):
            return f"empty: {read} pages read, no text or client logos on them"
        return "ok"


def discovery_command(targets_file: Path, status_file: Path, feed: Path, db_path: str,
                      settings: Mapping[str, Any]) -> list[str]:
    argv = [sys.executable, "-P", "-m", CHILD_MODULE, "crawl", "discovery", "-a", f"targets_file={targets_file}",
            "-a", f"status_file={status_file}", "-O", f"{feed}:jsonlines"]
    for key, value in {**settings, "REPUTATION_DB": db_path}.items():
        argv += ["-s", f"{key}={value}"]
    return argv


def run_discovery_crawl(targets: Sequence[Target], *, db_path: str, settings: Mapping[str, Any] | None = None,
                        timeout: float | None = None) -> dict[str, VendorCrawl]:
    """Crawl every target's URLs in one child process; {vendor id: what was read}."""
    with tempfile.TemporaryDirectory(prefix="reputation-discovery-") as handoff:
        targets_file, status_file, feed = (Path(handoff, n) for n in ("targets.json", "status.json", "evidence.jsonl"))
        targets_file.write_text(json.dumps([{"vendor_id": t.vendor_id, "urls": list(t.urls)} for t in targets]),
                                encoding="utf-8")
        returncode, log = _run_child(discovery_command(targets_file, status_file, feed, db_path, settings or {}),
                                     timeout)
        tail = log[-LOG_TAIL_CHARS:]
        if returncode != 0 or not status_file.is_file():
            what = "timed out" if returncode is None else f"exited with status {returncode}"
            raise CrawlError(f"the discovery crawl {what}; end of its log:\n{tail}")
        status = json.loads(status_file.read_text(encoding="utf-8"))
        out = {t.vendor_id: VendorCrawl(t.vendor_id, counts=dict(status["vendors"].get(t.vendor_id, {})))
               for t in targets}
        if feed.is_file():
            with feed.open(encoding="utf-8") as lines:
                for line in lines:
                    item = json.loads(line)
                    out[item["vendor_id"]].pages.append(PageEvidence.from_item(item))
    return out
