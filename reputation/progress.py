"""The crawl's progress on stderr while the Scrapy child works (crawler.progress sends the counts).

Three ways to show it, chosen by the command from the terminal and the verbosity:

- ``live``: a table redrawn in place (rich), one row per source plus the total: for a person
  at a terminal, or anyone who asked for ``-v``;
- ``lines``: one plain timestamped line every ``interval`` seconds (and none when nothing
  changed): for cron mail and CI logs, which a redrawn table would fill with escape codes;
- ``off``: nothing (``-q``, or output meant for a machine).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, Literal

from rich.console import Console
from rich.live import Live
from rich.table import Table

from reputation.logs import utc_stamp

Mode = Literal["live", "lines", "off"]
LINE_INTERVAL_SECONDS = 30.0
MAX_ROWS = 15  # sources shown in the live table; the total row always counts them all


def choose_mode(*, quiet: bool, verbose: bool, machine_output: bool = False) -> Mode:
    """live at a terminal or with -v, plain lines otherwise, nothing with -q or --json/--csv to stdout."""
    if quiet:
        return "off"
    if verbose or sys.stderr.isatty():
        return "live"
    return "off" if machine_output else "lines"


def totals_line(snapshot: dict[str, Any]) -> str:
    """``3 sources, 1,585 pages, 3,109 reviews, 0 errors``."""
    return (
        f"{len(snapshot.get('sources') or {})} sources, {snapshot.get('pages', 0):,} pages, "
        f"{snapshot.get('reviews', 0):,} reviews, {snapshot.get('errors', 0):,} errors"
    )


def progress_table(snapshot: dict[str, Any], elapsed: float) -> Table:
    table = Table(title=f"crawling — {elapsed:.0f} s", title_justify="left", expand=False)
    table.add_column("source")
    for column in ("pages", "reviews", "errors"):
        table.add_column(column, justify="right")
    sources: dict[str, dict[str, int]] = snapshot.get("sources") or {}
    shown = list(sources.items())
    if len(shown) > MAX_ROWS:  # a terminal's height: sources with errors first, then the busiest
        shown = sorted(shown, key=lambda item: (-item[1].get("errors", 0), -item[1].get("pages", 0)))[:MAX_ROWS]
    for source, counts in shown:
        table.add_row(source, *(f"{counts.get(c, 0):,}" for c in ("pages", "reviews", "errors")))
    if len(sources) > len(shown):
        table.add_row(f"… {len(sources) - len(shown)} more", "", "", "")
    table.add_section()
    table.add_row(
        f"all {len(sources)} sources", *(f"{snapshot.get(c, 0):,}" for c in ("pages", "reviews", "errors"))
    )
    return table


class CrawlProgress:
    """A context manager; call it with each snapshot. Nothing is drawn until the first snapshot."""

    def __init__(self, mode: Mode, *, interval: float = LINE_INTERVAL_SECONDS, console: Console | None = None):
        self.mode = mode
        self.interval = interval
        self.console = console or Console(stderr=True)
        self.started = time.monotonic()
        self.live: Live | None = None
        self.last_line_at: float | None = None
        self.last_line = ""
        self.snapshot: dict[str, Any] = {}

    def __enter__(self) -> CrawlProgress:
        self.started = time.monotonic()
        self.last_line_at = self.started  # the first plain line after one interval: a short crawl prints none
        return self

    def __call__(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        elapsed = time.monotonic() - self.started
        if self.mode == "live":
            if self.live is None:
                self.live = Live(progress_table(snapshot, elapsed), console=self.console, refresh_per_second=4,
                                 transient=False)
                self.live.start()
            else:
                self.live.update(progress_table(snapshot, elapsed))
        elif self.mode == "lines":
            now = time.monotonic()
            line = totals_line(snapshot)
            if (self.last_line_at is None or now - self.last_line_at >= self.interval) and line != self.last_line:
                print(f"{utc_stamp()} crawl progress: {line}", file=sys.stderr, flush=True)
                self.last_line_at, self.last_line = now, line

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            if self.snapshot:
                self.live.update(progress_table(self.snapshot, time.monotonic() - self.started))
            self.live.stop()
            self.live = None
