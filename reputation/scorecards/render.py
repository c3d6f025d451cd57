"""Writers for the reports: per vendor an HTML page and a JSON document, one CSV for all, and the
overview (index.html, overview.json, overview.csv) beside them.

Every file is written to a temporary name, made 0644 and moved into place, so a reader (or a
web server publishing the folder) never sees half a report and can always read it. HTML is rendered with
Jinja2 autoescaping: review text and names are always shown as text.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from reputation.scorecards.charts import overview_svg, trend_png, trend_svg
from reputation.scorecards.content import Scorecard, file_stem
from reputation.scorecards.overview import Overview
from storage.errors import ReputationError

FORMATS = ("html", "csv", "json")
CSV_NAME = "scorecards.csv"
OVERVIEW_STEM = "overview"  # overview.json, overview.csv; the page itself is index.html
INDEX_NAME = "index.html"
FILE_MODE = 0o644  # reports are published by web servers: readable by all, whatever the umask
SHARE_KEYS = {"share_positive", "share_negative", "share"}
# A negative difference is good news for these metrics.
LOWER_IS_BETTER = {"share_negative"}
# Cells starting like a formula are neutralised so spreadsheets show them as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The card CSV leads with identity, the rank and the score it is decided on, then the rest.
CSV_METRIC_ORDER = ("shrunk_score", "cs_sentiment", "recency_score", "overall_sentiment", "share_positive",
                    "share_negative")


class OutputError(ReputationError):
    """The output folder cannot be created or written."""


def _fmt(value: float | None, key: str = "", signed: bool = False) -> str:
    if value is None:
        return "–"
    if key in SHARE_KEYS:
        text = f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"
        return text + (" pts" if signed else "%")
    if key == "p":
        return "< 1%" if value < 0.01 else "> 99%" if value > 0.99 else f"{value * 100:.0f}%"
    return f"{value:+.2f}" if signed or value != 0 else f"{value:.2f}"


def _tone(value: float | None, key: str = "") -> str:
    if value is None or value == 0:
        return ""
    good = value < 0 if key in LOWER_IS_BETTER else value > 0
    return "pos" if good else "neg"


def safe_url(url: Any) -> str:
    """Only absolute http(s) links become clickable; javascript: and friends never do."""
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else ""


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reputation.scorecards", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=_fmt, tone=_tone, safe_url=safe_url)
    return env


def render_html(card: Scorecard, *, with_index: bool = False) -> str:
    """The scorecard page; the chart is matplotlib's SVG of numbers only, so it is inlined as is.

    ``with_index``: link back to the overview (when index.html is written beside the card)."""
    svg = trend_svg(card["quarterly"], card["min_period_n"])
    template = _environment().get_template("scorecard.html")
    return template.render(card=card, chart_svg=Markup(svg) if svg else None, min_period_n=card["min_period_n"],
                           index_name=INDEX_NAME, with_index=with_index)


# <, > and & as JSON escapes: the same data, and review text stays inert if a page ever inlines the document.
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def render_json(document: Scorecard | Overview) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False).translate(_JSON_ESCAPES) + "\n"


def csv_columns() -> list[str]:
    columns = ["vendor_id", "vendor_name", "status", "rank", "rank_of", "tied", "p_best", "min_n"]
    for k in CSV_METRIC_ORDER:
        columns += [k, f"{k}_low", f"{k}_high", f"{k}_n", f"{k}_median_all_vendors", f"{k}_vs_median"]
    return columns + ["n_reviews", "n_brands", "first_review", "last_review",
                      "rollup_as_of", "model_id", "model_revision", "generated_at"]


def _cell(value: Any) -> Any:
    """A CSV cell: text that a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else value


def _csv(columns: list[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return buffer.getvalue()


def render_csv(cards: Iterable[Scorecard]) -> str:
    """One row per vendor with the headline metrics; empty cells where a vendor has no score."""
    rows = []
    for card in cards:
        row: dict[str, Any] = {
            "vendor_id": card["vendor"]["id"],
            "vendor_name": card["vendor"]["name"],
            "status": card["status"],
            "rank": card["rank"]["position"],
            "rank_of": card["rank"]["of"],
            "tied": card["rank"]["tied"],
            "p_best": card["rank"]["p_best"],
            "min_n": card["rank"]["min_n"],
            "n_reviews": card["n_reviews"],
            "n_brands": card["n_brands"],
            "first_review": card["period"]["first"],
            "last_review": card["period"]["last"],
            "rollup_as_of": card["rollup"]["as_of"],
            "model_id": card["rollup"]["model_id"],
            "model_revision": card["rollup"]["model_revision"],
            "generated_at": card["generated_at"],
        }
        for key, m in card["metrics"].items():
            row.update({
                key: m["value"], f"{key}_low": m["low"], f"{key}_high": m["high"], f"{key}_n": m["n"],
                f"{key}_median_all_vendors": m["median_all_vendors"], f"{key}_vs_median": m["vs_median"],
            })
        rows.append(row)
    return _csv(csv_columns(), rows)


OVERVIEW_COLUMNS = [
    "rank", "tied", "vendor_id", "vendor_name", "status", "score", "score_low", "score_high", "n_cs",
    "p_best", "verdict_vs_next", "p_ahead_next", "verdict_text", "n_reviews", "n_brands", "brands",
    "first_review", "last_review", "card", "rollup_as_of", "model_id", "min_rank_n",
]


def render_overview_csv(overview: Overview) -> str:
    """overview.csv: one row per vendor in overview order (ranked first); the evidence flattened."""
    rows = []
    for v in overview["vendors"]:
        rows.append({
            **{k: v.get(k) for k in OVERVIEW_COLUMNS if k in v},
            "n_brands": len(v["brands"]),
            "brands": "; ".join(f"{b['brand_name']} ({b['n_cs']})" for b in v["brands"]),
            "rollup_as_of": overview["rollup"]["as_of"],
            "model_id": overview["rollup"]["model_id"],
            "min_rank_n": overview["min_rank_n"],
        })
    return _csv(OVERVIEW_COLUMNS, rows)


def render_overview_html(overview: Overview) -> str:
    """index.html: the ranking chart (hand-built SVG, names escaped there), verdicts, evidence, links."""
    chart = overview_svg([
        {"name": v["vendor_name"], "rank": v["rank"], "tied_next": v["verdict_vs_next"] == "tied", "score": v["score"],
         "low": v["score_low"], "high": v["score_high"], "n": v["n_cs"], "href": v["card"]}
        for v in overview["vendors"]
    ])
    template = _environment().get_template("overview.html")
    return template.render(overview=overview, chart_svg=Markup(chart))


def prepare_out_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Create the folder and prove it is writable before any report is built."""
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write scorecards to {str(path)!r}: {exc.strerror or exc}") from exc
    return path


def _write(path: Path, data: str | bytes) -> Path:
    """Write to a temporary name beside ``path``, make it 0644, move it into place."""
    temp: str | None = None
    try:
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
            temp = handle.name
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        # NamedTemporaryFile creates 0600 whatever the umask; reports are meant to be published.
        os.chmod(temp, FILE_MODE)
        os.replace(temp, path)
    except OSError as exc:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    return path


def write_scorecards(
    cards: Sequence[Scorecard],
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = ("html",),
    *,
    png: bool = False,
    overview: Overview | None = None,
) -> list[Path]:
    """Write the chosen formats for every card (and the overview, when given); returns the files."""
    chosen = list(dict.fromkeys(formats))
    bad = [f for f in chosen if f not in FORMATS]
    if bad:
        raise ReputationError(f"unknown format {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    out = prepare_out_dir(out_dir)
    written: list[Path] = []
    for card in cards:
        stem = file_stem(card["vendor"]["id"])
        if "html" in chosen:
            written.append(_write(out / f"{stem}.html", render_html(card, with_index=overview is not None)))
        if "json" in chosen:
            written.append(_write(out / f"{stem}.json", render_json(card)))
        if png:
            image = trend_png(card["quarterly"], card["min_period_n"])
            if image is not None:
                written.append(_write(out / f"{stem}-trend.png", image))
    if "csv" in chosen:
        written.append(_write(out / CSV_NAME, render_csv(cards)))
    if overview is not None:
        if "html" in chosen:
            written.append(_write(out / INDEX_NAME, render_overview_html(overview)))
        if "json" in chosen:
            written.append(_write(out / f"{OVERVIEW_STEM}.json", render_json(overview)))
        if "csv" in chosen:
            written.append(_write(out / f"{OVERVIEW_STEM}.csv", render_overview_csv(overview)))
    return written
