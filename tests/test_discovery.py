"""Discovery on project-written pages: each relation type, each distractor, blocked and empty sites.

Extraction is tested as pure functions over pages written here; the crawl runs the real
`discovery` spider in its child process against loopback servers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_server import FaultServer, status

from crawler.discovery.candidates import PROPOSE_CONFIDENCE, Candidate, propose
from crawler.discovery.names import Company, NameIndex, normalise_name
from crawler.discovery.pages import extract_page
from crawler.discovery.sentences import KeywordRelationModel
from demo_world.server import serve_directory
from reputation.engagements.discover import discover
from storage.database import connect

VENDOR = Company("harbor-finch", "Harbor & Finch Customer Care", "https://harbor-finch.example")
RIVAL = Company("quillstone", "Quillstone Outsourcing", "https://quillstone.example")
BRANDS = [Company("northwind-air", "Northwind Air", "https://northwind-air.example"),
          Company("fennel-bank", "Fennel Bank", "https://fennel-bank.example"),
          Company("parcelwing", "Parcelwing", "https://parcelwing.example"),
          Company("skylark-airways", "Skylark Airways", "https://skylark-airways.example"),
          Company("corvid-telecom", "Corvid Telecom", "https://corvid-telecom.example")]
SITE = "https://harbor-finch.example"
FAST = {"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0, "CONCURRENT_REQUESTS_PER_DOMAIN": 8}


def press(headline: str, day: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<html><head><title>{headline}</title><meta property="article:published_time" content="{day}">'
            f'</head><body><article><h1>{headline}</h1><p><time datetime="{day}">{day}</time></p>{body}'
            "</article></body></html>")


def run(pages: dict[str, str]) -> list[Candidate]:
    evidence = [extract_page(SITE + path, html) for path, html in pages.items()]
    return propose(VENDOR, evidence, brands=BRANDS, vendors=[VENDOR, RIVAL], model=KeywordRelationModel()).candidates


def proposed(candidates: list[Candidate]) -> set[tuple[str | None, str, str | None, str]]:
    return {(c.brand_id, c.relation, c.event_date, c.scope) for c in candidates if c.confidence >= PROPOSE_CONFIDENCE}


def test_each_relation_type_from_press_releases() -> None:
    found = run({
        "/press/start.html": press("Northwind Air selects Harbor & Finch Customer Care for its phone customer service",
                                   "2022-03-01"),
        "/press/renew.html": press("Fennel Bank renews its customer care contract with Harbor & Finch Customer Care",
                                   "2024-06-10"),
        "/press/chat.html": press("Parcelwing expands its partnership with Harbor & Finch to live chat", "2023-02-01"),
        "/press/end.html": press("Corvid Telecom and Harbor & Finch Customer Care conclude their partnership",
                                 "2025-03-11"),
    })
    assert proposed(found) == {
        ("northwind-air", "started", "2022-03-01", "voice"),
        ("fennel-bank", "renewed", "2024-06-10", "all"),
        ("parcelwing", "expanded", "2023-02-01", "chat"),
        ("corvid-telecom", "ended", "2025-03-11", "all"),
    }
    start = next(c for c in found if c.relation == "started")
    assert start.url == SITE + "/press/start.html" and "selects" in start.evidence


def test_client_from_logo_wall_case_study_and_schema_org() -> None:
    wall = ('<html><body><section class="clients"><h2>Trusted by</h2><img alt="Fennel Bank" src="a.svg">'
            '<img alt="Acme Rail" src="b.svg"></section></body></html>')
    study = ('<html><head><title>Case study: how Parcelwing cut wait times</title>'
             '<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Article", '
             '"about": {"@type": "Organization", "name": "PW Logistics", "sameAs": "https://parcelwing.example"}}'
             "</script></head><body><h1>Results</h1></body></html>")
    found = run({"/": wall, "/case-studies/parcelwing.html": study})
    clients = {(c.brand_id, c.brand_name) for c in found if c.relation == "client"}
    assert ("fennel-bank", "Fennel Bank") in clients
    assert (None, "Acme Rail") in clients  # an unknown brand stays a name, to be added on accept
    assert ("parcelwing", "Parcelwing") in clients  # schema.org sameAs matched the brand's website
    assert all(c.event_date is None for c in found if c.relation == "client")


@pytest.mark.parametrize("html", [
    # partner and award logo walls
    '<section class="partners"><h2>Technology partners</h2><img alt="Northwind Air" src="x.svg"></section>',
    '<div id="awards"><h3>Awards</h3><img alt="Fennel Bank" src="x.svg"></div>',
    # awards lists, technology suppliers, a competitor's name, "unlike Brand X"
    "<p>Shortlisted at the CX Awards alongside Skylark Airways and Fennel Bank.</p>",
    "<p>Harbor &amp; Finch Customer Care works with Nimbus CRM, its technology supplier.</p>",
    "<p>Harbor &amp; Finch Customer Care wins the service contract that Quillstone Outsourcing lost.</p>",
    "<p>Unlike Skylark Airways, our agents answer every chat in under a minute.</p>",
    "<p>Northwind Air is a wonderful airline.</p>",  # a brand with no vendor in the sentence
])
def test_distractors_are_not_proposed(html: str) -> None:
    found = run({"/about/": f"<html><body>{html}</body></html>"})
    assert proposed(found) == set(), found


def test_the_vendor_and_its_competitors_are_never_clients() -> None:
    page = ('<section class="clients"><h2>Our clients</h2><img alt="Quillstone Outsourcing" src="q.svg">'
            '<img alt="Harbor &amp; Finch" src="h.svg"></section>')
    evidence = [extract_page(SITE + "/", f"<html><body>{page}</body></html>")]
    proposal = propose(VENDOR, evidence, brands=BRANDS, vendors=[VENDOR, RIVAL], model=KeywordRelationModel())
    assert proposal.candidates == []
    assert proposal.dropped["vendor_name"] == 2


def test_a_release_and_its_news_line_are_one_candidate() -> None:
    news = ('<html><body><ul><li><time datetime="2022-03-01">1 March</time> <a href="/p">Northwind Air selects '
            "Harbor &amp; Finch Customer Care for its phone customer service</a></li></ul></body></html>")
    release = press("Northwind Air selects Harbor & Finch Customer Care for its phone customer service", "2022-03-01")
    evidence = [extract_page(SITE + "/news/", news), extract_page(SITE + "/press/p.html", release)]
    proposal = propose(VENDOR, evidence, brands=BRANDS, vendors=[VENDOR], model=KeywordRelationModel())
    assert [(c.relation, c.event_date) for c in proposal.candidates] == [("started", "2022-03-01")]
    assert proposal.dropped["duplicate_evidence"] == 1


def test_company_names_match_across_legal_forms_and_ampersands() -> None:
    index = NameIndex(BRANDS)
    assert normalise_name("Harbor & Finch Customer Care Ltd.") == "harbor and finch customer care"
    found = index.match("Fennel Bank plc")
    assert found is not None and found.id == "fennel-bank"
    assert index.match("Fennel Banking Group") is None
    matched = index.match("anything", ["https://www.northwind-air.example/about"])
    assert matched is not None and matched.id == "northwind-air"


def _site(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def test_blocked_and_empty_sites_get_a_clear_status(tmp_path: Path) -> None:
    db_path = tmp_path / "r.db"
    db = connect(db_path)
    for vid in ("robots-blocked", "forbidden", "empty", "working"):
        db.execute("INSERT INTO vendors (id, name) VALUES (?, ?)", (vid, vid.title() + " Contact"))
    db.execute("INSERT INTO brands (id, name) VALUES ('fennel-bank', 'Fennel Bank')")
    db.conn.commit()
    db.close()
    blocked = _site(tmp_path / "blocked", {"/robots.txt": "User-agent: *\nDisallow: /\n",
                                           "/index.html": press("Fennel Bank selects Robots-Blocked Contact", "2022-01-01")})
    empty = _site(tmp_path / "empty", {"/index.html": "<html><body></body></html>"})
    working = _site(tmp_path / "working", {
        "/index.html": '<html><body><a href="/news/">News</a><a href="/careers/">Jobs</a></body></html>',
        "/news/index.html": press("Fennel Bank selects Working Contact for its customer care", "2023-05-02"),
        "/careers/index.html": press("Fennel Bank selects Working Contact for its careers", "2023-05-02"),
    })
    with FaultServer() as refusing, serve_directory(blocked) as b, serve_directory(empty) as e, \
            serve_directory(working) as w:
        refusing.add("/", status(403))
        results = discover(db_path, None, sites={"robots-blocked": b, "forbidden": refusing.url("/"), "empty": e,
                                                 "working": w},
                           model=KeywordRelationModel(), settings=FAST, timeout=600)
    by_id = {r.vendor_id: r for r in results}
    assert by_id["robots-blocked"].status == "blocked: robots.txt disallows the site's pages"
    assert by_id["forbidden"].status == "blocked: the site refused access (HTTP 403)"
    assert by_id["empty"].status.startswith("empty: 1 pages read")
    assert by_id["working"].status == "ok" and by_id["working"].pages == 2  # careers is not a section we read
    db = connect(db_path)
    rows = db.execute("SELECT vendor_id, brand_id, relation, event_date, status FROM engagement_candidates").fetchall()
    assert rows == [("working", "fennel-bank", "started", "2023-05-02", "proposed")]


def test_cli_discovers_from_the_vendor_site_and_a_named_news_page(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from reputation.cli import cli

    vendor_site = _site(tmp_path / "vendor", {
        "/index.html": '<section class="clients"><h2>Our clients</h2><img alt="Fennel Bank" src="f.svg"></section>',
    })
    news_site = _site(tmp_path / "news", {
        "/2024/parcelwing.html": press("Parcelwing picks Harbor & Finch Customer Care for its email support",
                                       "2024-04-09") + '<a href="/2024/other.html">more</a>',
        "/2024/other.html": press("Skylark Airways selects Harbor & Finch Customer Care", "2024-05-01"),
    })
    db_path = tmp_path / "r.db"
    with serve_directory(vendor_site) as site, serve_directory(news_site) as news:
        db = connect(db_path)
        db.execute("INSERT INTO vendors (id, name, website) VALUES ('harbor-finch', ?, ?)", (VENDOR.name, site))
        db.conn.executemany("INSERT INTO brands (id, name) VALUES (?, ?)", [(b.id, b.name) for b in BRANDS])
        db.conn.commit()
        db.close()
        result = CliRunner().invoke(cli, ["--db", str(db_path), "vendors", "discover", "harbor-finch",
                                          "--url", news + "/2024/parcelwing.html", "--sentence-model", "keyword"],
                                    obj={})
    assert result.exit_code == 0, result.output
    assert "sentence model: keyword-interim" in result.output
    assert "harbor-finch: ok, 2 pages" in result.output
    listed = CliRunner().invoke(cli, ["--db", str(db_path), "vendors", "candidates", "--json"], obj={})
    rows = {(r["brand_id"], r["relation"], r["event_date"], r["scope"]) for r in json.loads(listed.output)}
    # the named article is read, the article it links to is not (only a vendor's own site is walked)
    assert rows == {("fennel-bank", "client", None, "all"), ("parcelwing", "started", "2024-04-09", "email")}


def test_a_clients_page_counts_as_a_wall_and_a_plain_image_elsewhere_does_not() -> None:
    logos = '<img alt="Fennel Bank" src="f.svg"><img alt="logo" src="l.svg">'
    on_clients = extract_page(SITE + "/our-clients/", f"<html><body>{logos}</body></html>")
    on_blog = extract_page(SITE + "/blog/post.html", f"<html><body>{logos}</body></html>")
    assert [m.name for m in on_clients.mentions] == ["Fennel Bank"]
    assert on_blog.mentions == []
