"""The charts of the reports: a vendor's quarterly trend and the overview's ranking chart.

The trend is drawn with matplotlib's object API on the Agg canvas (no pyplot state, no
display), so it is safe in scheduled jobs. Only numbers and quarter labels reach it; names
and review text never do, so its inline SVG carries no user text.

The overview chart is hand-built SVG: one row per vendor (point, interval, n), so its marks
can be counted and linked; names are XML-escaped here, where the markup is written.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reputation.scorecards.content import QuarterPoint

QUARTER = re.compile(r"^\d{4}-Q[1-4]$")
LINE_COLOUR = "#1f5f99"
GAP_COLOUR = "#eeeeee"
TEXT_COLOUR = "#222222"
MUTED = "#666666"
TIE_COLOUR = "#b7791f"
FONT_PT = 11  # at the width the page shows it, about 14-15 px: readable at 100% zoom


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _trend_figure(quarters: Sequence[QuarterPoint], min_n: int) -> Figure | None:
    """Quarterly CS score with its 95% interval; None when no quarter has enough reviews.

    A quarter below ``min_n`` customer-service reviews is a gap (shaded, no point), so a
    handful of reviews never draws a swing. n sits under each quarter's label, not on a
    second axis over the line.
    """
    rows = [q for q in quarters if QUARTER.match(str(q.get("quarter", "")))]
    if not any(q.get("enough") and q.get("cs_score") is not None for q in rows):
        return None
    xs = list(range(len(rows)))
    shown = [bool(q.get("enough")) and q.get("cs_score") is not None for q in rows]
    score = [_nan(q.get("cs_score")) if ok else math.nan for q, ok in zip(rows, shown, strict=True)]
    low = [_nan(q.get("cs_score_low")) if ok else math.nan for q, ok in zip(rows, shown, strict=True)]
    high = [_nan(q.get("cs_score_high")) if ok else math.nan for q, ok in zip(rows, shown, strict=True)]

    fig = Figure(figsize=(9.2, 3.9), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for x, ok in zip(xs, shown, strict=True):
        if not ok:
            ax.axvspan(x - 0.45, x + 0.45, color=GAP_COLOUR, linewidth=0, zorder=0)
    if not all(shown):
        ax.fill_between([], [], [], color=GAP_COLOUR, label=f"fewer than {min_n} reviews: not drawn")
    ax.axhline(0.0, color="#999999", linewidth=0.9, linestyle=":", zorder=1)
    # The line is broken by NaN at every gap, so it never bridges a quarter without evidence.
    ax.plot(xs, score, color=LINE_COLOUR, linewidth=1.6, zorder=2)
    errors = [[s - lo if ok else 0.0 for s, lo, ok in zip(score, low, shown, strict=True)],
              [hi - s if ok else 0.0 for s, hi, ok in zip(score, high, shown, strict=True)]]
    errors = [[0.0 if math.isnan(e) else e for e in side] for side in errors]
    ax.errorbar(xs, score, yerr=errors, fmt="o", color=LINE_COLOUR, ecolor=LINE_COLOUR, elinewidth=1.4,
                capsize=4, markersize=6, zorder=3, label="customer-service score, 95% interval")
    ax.set_ylim(-1.05, 1.05)
    ax.set_yticks([-1.0, -0.5, 0.0, 0.5, 1.0])
    ax.set_ylabel("score (−1 … +1)", fontsize=FONT_PT)
    step = max(1, math.ceil(len(rows) / 12))
    labels = [f"{str(q['quarter']).replace('-', ' ')}\nn={int(q.get('n_cs') or 0)}" for q in rows]
    ax.set_xticks(xs[::step], labels[::step], fontsize=FONT_PT - 1)
    ax.tick_params(axis="y", labelsize=FONT_PT)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=FONT_PT, frameon=False, ncol=2,
              borderaxespad=0.2, handlelength=1.6)
    fig.tight_layout()
    return fig


def trend_svg(quarters: Sequence[QuarterPoint], min_n: int) -> str | None:
    """Inline SVG markup (no XML prolog) of the trend chart; None when there is nothing to draw."""
    fig = _trend_figure(quarters, min_n)
    if fig is None:
        return None
    buffer = io.StringIO()
    # The same bytes for the same numbers: a fixed hash salt and no date.
    with matplotlib.rc_context({"svg.hashsalt": "scorecard", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def trend_png(quarters: Sequence[QuarterPoint], min_n: int) -> bytes | None:
    """The chart as PNG bytes (the writer sets the file's mode); None when there is nothing to draw."""
    fig = _trend_figure(quarters, min_n)
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# Overview chart geometry, in CSS px at 100% zoom (the SVG scales down on narrow screens).
_W, _ROW, _TOP, _BOTTOM = 900, 40, 34, 44
_LABEL_W, _N_W = 250, 90
_PLOT_X0, _PLOT_X1 = _LABEL_W + 10, _W - _N_W - 10


def _x(value: float) -> float:
    return _PLOT_X0 + (max(-1.0, min(1.0, value)) + 1.0) / 2.0 * (_PLOT_X1 - _PLOT_X0)


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def overview_svg(rows: Sequence[dict[str, Any]]) -> str:
    """Every vendor on one axis (−1…+1): name and rank left, point and 95% interval, n right.

    ``rows``: dicts with name, rank (None: not ranked), tied_next (cannot be told apart from the
    next row: drawn as a bracket), score, low, high, n, href.
    A vendor without enough evidence gets a row that says so and no mark, so no position is
    suggested. Each drawn vendor has exactly one ``<circle class="vendor-mark">``.
    """
    height = _TOP + _ROW * max(len(rows), 1) + _BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="overview-chart" role="img" '
        f'viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'font-family="system-ui, sans-serif" font-size="15" aria-labelledby="overview-chart-title">',
        '<title id="overview-chart-title">Customer-service score of every vendor with its 95% interval</title>',
    ]
    base = _TOP + _ROW * len(rows)
    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        x = _x(tick)
        dash = "" if tick == 0 else ' stroke-dasharray="3 4"'
        parts.append(f'<line x1="{x:.1f}" y1="{_TOP - 8}" x2="{x:.1f}" y2="{base}" stroke="#bbbbbb"{dash}/>')
        parts.append(f'<text x="{x:.1f}" y="{base + 20}" text-anchor="middle" fill="{MUTED}">{tick:+.1f}</text>')
    parts.append(f'<text x="{(_PLOT_X0 + _PLOT_X1) / 2:.1f}" y="{base + 40}" text-anchor="middle" '
                 f'fill="{MUTED}">customer-service score (−1 … +1)</text>')
    parts.append(f'<text x="{_W - 4}" y="{_TOP - 14}" text-anchor="end" fill="{MUTED}">n service reviews</text>')
    for i, row in enumerate(rows):
        y = _TOP + _ROW * i + _ROW / 2
        if i % 2 == 0:
            parts.append(f'<rect x="0" y="{y - _ROW / 2:.1f}" width="{_W}" height="{_ROW}" fill="#f6f8fa"/>')
        rank = row.get("rank")
        prefix = "–" if rank is None else str(rank)
        if rank is not None and row.get("tied_next") and i + 1 < len(rows):
            # a bracket joins two neighbours that cannot be told apart: a tie, whatever the order of the dots
            parts.append(f'<path class="tie" d="M 30 {y - 8:.1f} h 6 V {y + _ROW + 8:.1f} h -6" fill="none" '
                         f'stroke="{TIE_COLOUR}" stroke-width="2"><title>cannot be told apart</title></path>')
        name = escape(_shorten(str(row.get("name") or "")))
        label = f'<text x="8" y="{y + 5:.1f}" fill="{TEXT_COLOUR}"><tspan font-weight="600">{escape(prefix)}</tspan>' \
                f'<tspan x="44">{name}</tspan></text>'
        href = row.get("href")
        parts.append(f"<a href={quoteattr(str(href))}>{label}</a>" if href else label)
        parts.append(f'<text x="{_W - 4}" y="{y + 5:.1f}" text-anchor="end" fill="{TEXT_COLOUR}">'
                     f'{int(row.get("n") or 0)}</text>')
        score, low, high = row.get("score"), row.get("low"), row.get("high")
        if rank is None or score is None:
            parts.append(f'<text x="{_x(0.0):.1f}" y="{y + 5:.1f}" text-anchor="middle" fill="{MUTED}" '
                         f'font-style="italic">not enough evidence</text>')
            continue
        if low is not None and high is not None:
            parts.append(f'<line class="vendor-interval" x1="{_x(low):.1f}" y1="{y:.1f}" x2="{_x(high):.1f}" '
                         f'y2="{y:.1f}" stroke="{LINE_COLOUR}" stroke-width="3" stroke-linecap="round"/>')
        parts.append(f'<circle class="vendor-mark" cx="{_x(score):.1f}" cy="{y:.1f}" r="6.5" '
                     f'fill="{LINE_COLOUR}" stroke="#ffffff" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "\n".join(parts)
