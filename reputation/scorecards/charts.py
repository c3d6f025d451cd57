"""The monthly trend chart of a scorecard: customer-service score, its 95% interval, and n.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display),
so it is safe in scheduled jobs. Only numbers and 'YYYY-MM' month labels reach the
chart; names and review text never do, so the inline SVG carries no user text.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reputation.scorecards.content import MonthlyPoint

MONTH = re.compile(r"^\d{4}-\d{2}$")
LINE_COLOUR = "#1f5f99"
BAND_COLOUR = "#9ec3e6"
BAR_COLOUR = "#c8c8c8"


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _figure(monthly: Sequence[MonthlyPoint]) -> Figure | None:
    """The chart, or None when no month has a customer-service score to draw."""
    months = [m for m in monthly if MONTH.match(str(m.get("month", "")))]
    if not any(m.get("cs_score") is not None for m in months):
        return None
    xs = list(range(len(months)))
    score = [_nan(m.get("cs_score")) for m in months]
    low = [_nan(m.get("cs_score_low", m.get("cs_score"))) for m in months]
    high = [_nan(m.get("cs_score_high", m.get("cs_score"))) for m in months]
    n_cs = [int(m.get("n_cs") or 0) for m in months]

    fig = Figure(figsize=(8, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax_n = fig.add_subplot(1, 1, 1)
    ax = ax_n.twinx()
    # n per month as light bars behind the score line, on their own axis.
    ax_n.bar(xs, n_cs, color=BAR_COLOUR, width=0.6, label="n (customer-service reviews)")
    ax_n.set_ylabel("n per month")
    ax_n.set_ylim(0, max(max(n_cs), 1) * 2.2)
    ax.fill_between(xs, low, high, color=BAND_COLOUR, alpha=0.55, linewidth=0, label="95% interval")
    ax.plot(xs, score, color=LINE_COLOUR, marker="o", markersize=3.5, linewidth=1.8, label="customer-service score")
    ax.axhline(0.0, color="#888888", linewidth=0.8, linestyle=":")
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("score (-1 … 1)")
    # Score axis on the left where readers look first; n on the right.
    ax.yaxis.tick_left()
    ax.yaxis.set_label_position("left")
    ax_n.yaxis.tick_right()
    ax_n.yaxis.set_label_position("right")
    step = max(1, math.ceil(len(months) / 12))
    ax_n.set_xticks(xs[::step], [str(m["month"]) for m in months][::step], rotation=45, ha="right", fontsize=8)
    ax_n.set_xlim(-0.6, len(months) - 0.4)
    handles = ax.get_legend_handles_labels()
    bars = ax_n.get_legend_handles_labels()
    ax.legend(handles[0] + bars[0], handles[1] + bars[1], loc="lower left", bbox_to_anchor=(0.0, 1.0),
              fontsize=7, frameon=False, ncol=3, borderaxespad=0.2)
    fig.tight_layout()
    return fig


def trend_svg(monthly: Sequence[MonthlyPoint]) -> str | None:
    """Inline SVG markup (no XML prolog) of the trend chart; None when there is nothing to draw."""
    fig = _figure(monthly)
    if fig is None:
        return None
    buffer = io.StringIO()
    # A fixed hash salt and no date keep the output byte-stable between runs.
    with matplotlib.rc_context({"svg.hashsalt": "scorecard", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def trend_png(monthly: Sequence[MonthlyPoint], path: Path) -> bool:
    """Write the chart as PNG; False (nothing written) when there is nothing to draw."""
    fig = _figure(monthly)
    if fig is None:
        return False
    fig.savefig(path, format="png", metadata={"Software": None})
    return True
