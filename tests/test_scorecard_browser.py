"""A real browser opens the overview and every scorecard: charts drawn, nothing overflows, hostile text inert.

The machine's Chromium (``make browser``) is driven through Playwright (the ``test`` extra ships its
driver; no browser is downloaded). The reports are written as the demo writes them, from the
hand-built database of test_scorecard.py with hostile review text and a hostile vendor name; the
screenshots are kept under the output folder (``<out>/screenshots/``) so a person can look.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_scorecard import build_db

from reputation.scorecards.content import build_scorecards, file_stem
from reputation.scorecards.overview import build_overview
from reputation.scorecards.render import write_scorecards

CHROMIUM = "/usr/bin/chromium"
WIDTH = 1280
MARKER = "document.body.appendChild(Object.assign(document.createElement('div'),{id:'%s'}))"
SCRIPT_PAYLOAD = f"<script>window.__pwned=1;document.title='pwned';{MARKER % 'xss-script'}</script>"
IMG_PAYLOAD = f'<img src=x onerror="window.__pwned=1;document.title=\'pwned\';{MARKER % "xss-img"}">'
HOSTILE = [
    {"brand": "contoso", "day": "2023-07-03", "cs": -0.999, "score": -0.95, "url": "https://reviews.example/c/1",
     "body": f"Support was awful {SCRIPT_PAYLOAD} truly."},
    {"brand": "northwind", "day": "2023-07-04", "cs": -0.997, "score": -0.95, "url": "https://reviews.example/c/2",
     "body": f"Nobody answered {IMG_PAYLOAD} at all."},
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} not installed (run `make browser`)"),
]

# Every element whose box is wider than its parent allows, or that sticks out of the viewport.
# Inline boxes and the insides of SVG drawings have no client width of their own and are skipped.
OVERFLOW_JS = """
() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
      ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -1 || r.right > vw + 1) out.push(name(el) + ' outside the viewport (' + r.left + '..' + r.right + ')');
    if (el.clientWidth > 0 && getComputedStyle(el).overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1)
      out.push(name(el) + ' overflows its box (' + el.scrollWidth + ' > ' + el.clientWidth + ')');
  }
  if (document.documentElement.scrollWidth > vw) out.push('the page scrolls sideways');
  return out;
}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """index.html and every card, as `make demo` writes them, in <out>/scorecards."""
    root = tmp_path_factory.mktemp("demo-output")
    db = build_db(root / "reputation.db", extra=HOSTILE)
    overview = build_overview(db)
    write_scorecards(build_scorecards(db), root / "scorecards", ["html", "json", "csv"], overview=overview)
    return root, dict(overview)


BROWSER_WAIT_MS = 180_000


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # the driver starts a process: only for this module

    with sync_playwright() as playwright:
        # Playwright's 30 s defaults are short for Chromium starting and drawing on a loaded machine;
        # each wait still ends as soon as its condition holds.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"], timeout=BROWSER_WAIT_MS
        )
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            page.set_default_timeout(BROWSER_WAIT_MS)
            page.set_default_navigation_timeout(BROWSER_WAIT_MS)
            yield page
        finally:
            browser.close()


def open_report(page: Any, path: Path, shots: Path) -> list[str]:
    """Load one report, open its folded parts, keep a full-page screenshot; returns its overflow problems."""
    assert path.is_file(), path
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{path.stem}.png"), full_page=True)
    problems: list[str] = page.evaluate(OVERFLOW_JS)
    return problems


def assert_inert(page: Any) -> None:
    """Hostile text was shown as text: no script ran, no element was made from it."""
    assert page.evaluate("window.__pwned") is None
    assert page.title() != "pwned"
    assert page.evaluate("document.querySelectorAll('script, img, #xss-script, #xss-img').length") == 0


def test_overview_chart_drawn_readable_and_inert(site: tuple[Path, dict[str, Any]], browser_page: Any) -> None:
    root, overview = site
    page = browser_page
    problems = open_report(page, root / "scorecards" / "index.html", root / "screenshots")
    assert problems == []
    ranked = [v for v in overview["vendors"] if v["rank"] is not None]
    assert len(ranked) == 3
    chart = page.locator("svg.overview-chart")
    assert chart.count() == 1
    box = chart.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 150
    # one mark per ranked vendor, in rank order from the top; none for vendors without enough evidence
    marks = page.locator("svg.overview-chart circle.vendor-mark")
    assert marks.count() == len(ranked)
    ys = [float(marks.nth(i).get_attribute("cy") or 0) for i in range(marks.count())]
    assert ys == sorted(ys)
    assert page.locator("tr.vendor").count() == len(overview["vendors"])
    assert page.locator("tr.vendor.not_enough_evidence").count() == 2
    body = page.inner_text("body")
    assert "cannot be told apart on this evidence" in body and "intervals do not overlap" in body
    assert "<script>window.__pwned=1</script>" in body  # the hostile vendor name, shown as text
    # the text drawn in the SVG is legible at 100% zoom
    sizes = page.evaluate(
        "[...document.querySelectorAll('svg.overview-chart text')].map(t => t.getBoundingClientRect().height)"
    )
    assert sizes and min(sizes) >= 12
    assert_inert(page)


def test_every_card_drawn_readable_and_inert(site: tuple[Path, dict[str, Any]], browser_page: Any) -> None:
    root, overview = site
    page = browser_page
    for vendor in overview["vendors"]:
        path = root / "scorecards" / f"{file_stem(vendor['vendor_id'])}.html"
        problems = open_report(page, path, root / "screenshots")
        assert problems == [], (path.name, problems)
        assert_inert(page)
        assert page.locator('nav a[href="index.html"]').count() == 1
        charts = page.locator("figure.chart svg")
        card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if vendor["rank"] is None:
            assert "Not enough evidence" in page.inner_text("#not-enough-evidence")
        if not any(q["enough"] for q in card["quarterly"]):
            assert charts.count() == 0  # no trend drawn from quarters with too few reviews
            assert "no trend to draw" in page.inner_text("#trend")
            continue
        assert charts.count() == 1
        box = charts.first.bounding_box()
        assert box is not None and box["width"] > 600
        assert charts.first.locator("path").count() > 10
    acme = root / "scorecards" / "acme.html"
    open_report(page, acme, root / "screenshots")
    text = page.inner_text("#excerpts")
    assert "Support was awful <script>window.__pwned=1;" in text
    assert 'Nobody answered <img src=x onerror="window.__pwned=1;' in text
    assert_inert(page)
    shots = sorted(p.name for p in (root / "screenshots").iterdir())
    assert "index.png" in shots and "acme.png" in shots
