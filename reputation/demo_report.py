"""The per-vendor table printed at the end of `reputation demo` (and handy in a terminal)."""

from __future__ import annotations

import os

from rich.console import Console
from rich.table import Table

from reputation.api import vendor_table


def _fmt(value: object, low: object = None, high: object = None, digits: int = 2) -> str:
    if value is None or value != value:  # None or NaN: no evidence, not zero
        return "—"
    text = f"{float(value):+.{digits}f}"  # type: ignore[arg-type]
    if low is not None and high is not None and low == low and high == high:
        text += f" [{float(low):+.{digits}f}, {float(high):+.{digits}f}]"  # type: ignore[arg-type]
    return text


def print_vendor_table(db_path: str | os.PathLike[str], console: Console | None = None) -> None:
    """Rank, n, customer-service score with its 95% interval, shrunk and recency scores."""
    frame = vendor_table(db_path)
    table = Table(title="Vendor reputation (customer service, signed -1..1, 95% intervals)")
    for column in ("rank", "vendor", "n reviews", "n CS", "CS score", "shrunk", "recency", "overall", "brands"):
        table.add_column(column, justify="right" if column not in ("vendor",) else "left")
    for row in frame.to_dict("records"):
        rank = row.get("rank")
        table.add_row(
            "—" if rank is None or rank != rank or row.get("shrunk_score") is None else str(int(rank)),
            str(row["vendor_name"]),
            str(int(row["n_reviews"])),
            str(int(row["n_cs"])),
            _fmt(row.get("cs_score"), row.get("cs_score_low"), row.get("cs_score_high")),
            _fmt(row.get("shrunk_score")),
            _fmt(row.get("recency_score")),
            _fmt(row.get("mean_score"), row.get("mean_score_low"), row.get("mean_score_high")),
            str(len(row["brands"])),
        )
    if console is None:
        console = Console()
        # piped output (cron logs, CI) defaults to 80 columns, too narrow for the intervals
        console.width = max(console.width, 132)
    console.print(table)
