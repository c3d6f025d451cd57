"""Writers for scorecards: one HTML page and one JSON document per vendor, one CSV for all.

Every file is written to a temporary name and moved into place, so a reader (or a
scheduler publishing the folder) never sees half a report. HTML is rendered with
Jinja2 autoescaping: review text and names are always shown as text.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from reputation.scorecards.charts import trend_png, trend_svg
from reputation.scorecards.content import METRICS, Scorecard
from storage.errors import ReputationError

FORMATS = ("html", "csv", "json")
CSV_NAME = "scorecards.csv"
SHARE_KEYS = {"share_positive", "share_negative", "share"}
# A negative difference is good news for these metrics.
LOWER_IS_BETTER = {"share_negative"}
# Cells starting like a formula are neutralised so spreadsheets show them as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class OutputError(ReputationError):
    """The output folder cannot be created or written."""


def _fmt(value: float | None, key: str = "", signed: bool = False) -> str:
    if value is None:
        return "–"
    if key in SHARE_KEYS:
        text = f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"
        return text + (" pts" if signed else "%")
    return f"{value:+.3f}" if signed or value != 0 else f"{value:.3f}"


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


def render_html(card: Scorecard) -> str:
    """The scorecard page; the chart is matplotlib's SVG of numbers only, so it is inlined as is."""
    svg = trend_svg(card["monthly"])
    template = _environment().get_template("scorecard.html")
    return template.render(card=card, chart_svg=Markup(svg) if svg else None)


def render_json(card: Scorecard) -> str:
    return json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def csv_columns() -> list[str]:
    columns = ["vendor_id", "vendor_name", "status", "rank", "rank_of", "n_reviews", "n_brands"]
    for spec in METRICS:
        k = spec.key
        columns += [k, f"{k}_low", f"{k}_high", f"{k}_n", f"{k}_median_all_vendors", f"{k}_vs_median"]
    return columns + ["rollup_as_of", "model_id", "model_revision", "generated_at"]


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def render_csv(cards: Iterable[Scorecard]) -> str:
    """One row per vendor with the headline metrics; empty cells where a vendor has no score."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(), lineterminator="\n")
    writer.writeheader()
    for card in cards:
        row: dict[str, Any] = {
            "vendor_id": card["vendor"]["id"],
            "vendor_name": card["vendor"]["name"],
            "status": card["status"],
            "rank": card["rank"]["position"],
            "rank_of": card["rank"]["of"],
            "n_reviews": card["n_reviews"],
            "n_brands": card["n_brands"],
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
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def file_stem(vendor_id: str) -> str:
    """A file name from a vendor id: registry slugs pass unchanged, anything else is made safe."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", vendor_id).strip("_")
    return stem or "vendor"


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


def _write(path: Path, text: str) -> Path:
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         delete=False, newline="") as handle:
            handle.write(text)
        os.replace(handle.name, path)
    except OSError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    return path


def write_scorecards(
    cards: Sequence[Scorecard],
    out_dir: str | os.PathLike[str],
    formats: Iterable[str] = ("html",),
    *,
    png: bool = False,
) -> list[Path]:
    """Write the chosen formats for every card; returns the files written."""
    chosen = list(dict.fromkeys(formats))
    bad = [f for f in chosen if f not in FORMATS]
    if bad:
        raise ReputationError(f"unknown format {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    out = prepare_out_dir(out_dir)
    written: list[Path] = []
    for card in cards:
        stem = file_stem(card["vendor"]["id"])
        if "html" in chosen:
            written.append(_write(out / f"{stem}.html", render_html(card)))
        if "json" in chosen:
            written.append(_write(out / f"{stem}.json", render_json(card)))
        if png and trend_png(card["monthly"], out / f"{stem}-trend.png"):
            written.append(out / f"{stem}-trend.png")
    if "csv" in chosen:
        written.append(_write(out / CSV_NAME, render_csv(cards)))
    return written
