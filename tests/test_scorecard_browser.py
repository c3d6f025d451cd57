"""A real browser opens a scorecard: the chart renders and hostile review text stays text."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_scorecard import build_db

from reputation.scorecards.content import build_scorecards
from reputation.scorecards.render import write_scorecards

CHROMIUM = "/usr/bin/chromium"
MARKER = "document.body.appendChild(Object.assign(document.createElement('div'),{id:'%s'}))"
SCRIPT_PAYLOAD = f"<script>window.__xss=1;document.title='pwned';{MARKER % 'xss-script'}</script>"
IMG_PAYLOAD = f'<img src=x onerror="document.title=\'pwned\';{MARKER % "xss-img"}">'
HOSTILE = [
    {"brand": "contoso", "day": "2023-07-03", "cs": -0.999, "score": -0.95, "url": "https://reviews.example/c/1",
     "body": f"Support was awful {SCRIPT_PAYLOAD} truly."},
    {"brand": "contoso", "day": "2023-07-04", "cs": -0.997, "score": -0.95, "url": "https://reviews.example/c/2",
     "body": f"Nobody answered {IMG_PAYLOAD} at all."},
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} not installed (run `make browser`)"),
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[str]:
    """An HTML scorecard for 'acme' (whose worst excerpts are the hostile reviews) on 127.0.0.1."""
    db = build_db(tmp_path / "rep.db", extra=HOSTILE)
    out = tmp_path / "site"
    write_scorecards(build_scorecards(db, ["acme"]), out, ["html"])
    handler = functools.partial(QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/acme.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dump_dom(url: str, profile: Path) -> str:
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_chart_renders_and_injected_markup_stays_inert(served: str, tmp_path: Path) -> None:
    dom = dump_dom(served, tmp_path / "profile")
    # The trend chart is there as inline SVG with drawn paths.
    svg = re.search(r"<svg\b.*?</svg>", dom, re.S)
    assert svg is not None
    assert len(re.findall(r"<path\b", svg.group(0))) > 10
    # The hostile excerpts are shown literally, as text...
    assert "Support was awful &lt;script&gt;window.__xss=1;document.title='pwned';" in dom
    assert "Nobody answered &lt;img src=x onerror=" in dom
    # ...and nothing in them ran or became an element.
    assert "<title>Scorecard: Acme Contact Centres</title>" in dom
    assert "pwned</title>" not in dom
    assert 'id="xss-script"' not in dom and 'id="xss-img"' not in dom
    assert "<img" not in dom
