"""`reputation table`: the vendor ranking from the roll-ups, for a terminal or a script."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from reputation.commands.common import echo_csv, echo_json, is_quiet, one_format, open_db, output_options
from reputation.rollups.ranking import ranking, ranking_meta

CSV_COLUMNS = (
    "rank", "vendor_id", "vendor_name", "status", "n", "n_reviews", "cs_shrunk", "cs_shrunk_low", "cs_shrunk_high",
    "cs_score", "cs_low", "cs_high", "p_best", "p_ahead_next", "verdict_vs_next", "verdict_text",
)  # fmt: skip


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}"


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{low:+.2f}, {high:+.2f}]"


@click.command()
@output_options(csv=True)
@click.pass_context
def table(ctx: click.Context, as_json: bool, as_csv: bool) -> None:
    """The vendor ranking: rank, shrunk customer-service score with its 95% interval, n, P(best), verdict.

    Reads the roll-up tables (run `reputation rollup` first). Vendors with too few
    customer-service reviews are listed last as "not enough evidence", without a rank.

    \b
    Examples:
      reputation table
      reputation table --json | jq '.vendors[0].vendor_id'
      reputation table --csv > ranking.csv
    """
    one_format(as_json, as_csv)
    db = open_db(ctx, create=False)
    try:
        rows = ranking(db)
        meta = ranking_meta(db)
    finally:
        db.close()
    if as_json:
        echo_json({"meta": meta, "vendors": rows})
        return
    if as_csv:
        echo_csv([dict(r) for r in rows], CSV_COLUMNS)
        return
    _print_table(rows, meta, note=not is_quiet(ctx))  # -q: the rows asked for, without the note


def _print_table(rows: list[Any], meta: dict[str, Any], *, note: bool) -> None:
    console = Console()
    if not console.is_terminal:  # pipes and logs: wide enough for the verdicts
        console = Console(width=160)
    title = f"Vendor ranking as of {meta.get('as_of')} (model {meta.get('model_id')})"
    out = Table(title=title, title_justify="left")
    for column, justify in (("rank", "right"), ("vendor", "left"), ("CS score (shrunk)", "right"),
                            ("95% interval", "left"), ("n CS", "right"), ("P(best)", "right"),
                            ("vs next", "left")):
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        rank = str(row["rank"]) if row["rank"] is not None else "—"
        p_best = "" if row["p_best"] is None else f"{row['p_best']:.2f}"
        verdict = row["verdict_vs_next"] or ("not enough evidence" if row["rank"] is None else "")
        cells = (rank, row["vendor_name"] or row["vendor_id"], _score(row["cs_shrunk"]),
                 _interval(row["cs_shrunk_low"], row["cs_shrunk_high"]), f"{row['n']:,}", p_best, verdict)
        out.add_row(*(Text(cell) for cell in cells))  # Text: names are data, never rich markup
    console.print(out)
    min_n = meta.get("min_rank_n")
    if note and min_n is not None:
        console.print(Text(f"Ranked: vendors with at least {min_n} customer-service reviews; 'ahead' when the "
                      "95% intervals of the shrunk scores do not overlap, else 'tied'."))
