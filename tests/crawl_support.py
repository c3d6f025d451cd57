"""Setup shared by the crawl tests: a registry of brands and sources loaded into a real database,
schema.org Review nodes for the pages the test sites serve, rows read back, and the modules a
fresh crawl interpreter imports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reputation.registry.loader import load_registry
from storage.database import connect

# A user's layout file with one HTML layout: a review is a div.review, its text the p inside.
SITE_LAYOUT = """\
layouts:
  site-x:
    kind: html
    container: "css:div.review"
    fields: {body: "css:p"}
"""


def load_sources(
    tmp_path: Path,
    db_path: Path,
    sources: Mapping[str, Sequence[str | Mapping[str, str]]],
    *,
    vendor_brands: Iterable[str] | None = None,
) -> None:
    """Register brands (brand -> sources) and one vendor serving *vendor_brands* (default: all).

    A source is its URL, or a mapping of its registry keys (``{"url": ..., "render": "browser"}``).
    """
    lines = ["vendors:", "  - id: acme-contact", "    name: Acme Contact", "brands:"]
    for brand, entries in sources.items():
        lines += [f"  - id: {brand}", f"    name: {brand.title()}", "    sources:"]
        for entry in entries:
            keys = {"url": entry} if isinstance(entry, str) else entry
            for n, (key, value) in enumerate(keys.items()):
                lines.append(f"{'      - ' if n == 0 else '        '}{key}: {value}")
    lines.append("engagements:")
    for brand in vendor_brands if vendor_brands is not None else list(sources):
        lines += ["  - vendor: acme-contact", f"    brand: {brand}", "    start: 2023-01-01"]
    registry = tmp_path / "vendors.yaml"
    registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = connect(db_path)
    try:
        load_registry(db, registry)
    finally:
        db.close()


def review_node(r: Mapping[str, Any], node_id: str, **extra: Any) -> dict[str, Any]:
    """A schema.org Review for review *r* (id, body, rating, author, date); *extra* keys follow ``@id``."""
    return {
        "@type": "Review",
        "@id": node_id,
        **extra,
        "reviewBody": r["body"],
        "reviewRating": {
            "@type": "Rating",
            "ratingValue": r["rating"],
            "bestRating": 5,
            "worstRating": 1,
        },
        "author": {"@type": "Person", "name": r["author"]},
        "datePublished": r["date"],
    }


def rows(db_path: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """The rows a query returns, as dicts keyed by column name."""
    db = connect(db_path)
    try:
        cursor = db.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        db.close()


def modules_loaded_after(code: str, pattern: str) -> list[str]:
    """The modules whose whole name matches ``pattern`` (a regex) that a fresh interpreter has
    imported once it has run ``code`` with the project's Scrapy settings, sorted."""
    script = f"import re, sys\n{code}\nprint(' '.join(sorted(m for m in sys.modules if re.fullmatch({pattern!r}, m))))\n"
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=600, check=True)  # fmt: skip
    return done.stdout.split()
