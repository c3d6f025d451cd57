"""Each demo vendor's own small website: the public evidence of whom it serves, and since when.

Written from the same world data that makes the review sites' engagements, so the answer key of
a discovery crawl is the world's own engagements (``vendor_site_truth``). Every vendor site has a
home page with a client logo wall (and a technology-partner wall beside it), case studies, dated
press releases for each engagement's start (and end, renewal or channel expansion where the world
has one), a news page, an about page with distractors (awards lists, technology suppliers, a
competitor's name, "unlike Brand X"), sitemap.xml, and a robots.txt that hides a drafts folder
(linked from the news page) holding an announcement that must never be read.

Each site gets its own loopback server (``serve_vendor_sites``) so it has its own robots.txt.
The sitemap names absolute URLs, so pages are written once the servers' ports are known.
"""

from __future__ import annotations

import html
import json
import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from demo_world.server import serve_directory
from demo_world.world import Brand, Vendor, World, load_world
from storage.records import Engagement

# Renewal announced this long after a start when the engagement is still open then.
RENEWAL_AFTER_YEARS = 3
# Technology suppliers and awards: organisations that are not clients, named on every site.
TECH_SUPPLIERS = ("Nimbus CRM", "Voxel Telephony", "Cirrus Workforce Analytics")
AWARDS = ("Contact Centre Excellence Awards", "CX Leaders Forum")
CHANNEL_WORDS = {"chat": "live chat", "voice": "phone", "email": "email", "social": "social media"}
EXPANSION_CHANNEL = "chat"
# A draft announcement of a client that is not one, linked from the news page; robots.txt hides its folder.
DRAFT_PATH = "/news/drafts/upcoming.html"

START_HEADLINES = (
    "{brand} selects {vendor} for its customer care",
    "{brand} chooses {vendor} to run its contact centre",
    "{vendor} wins {brand} customer service contract",
    "{brand} appoints {vendor} as its customer support partner",
)
START_BODIES = (
    "{brand} has selected {vendor} to handle {what} from {month}.",
    "From {month}, {vendor} will run {what} for {brand}.",
    "{vendor} has been awarded a contract to provide {what} for {brand}, starting {month}.",
)
SCOPED_HEADLINE = "{brand} selects {vendor} for its {channel} customer service"
RENEW_HEADLINE = "{brand} renews its customer care contract with {vendor}"
RENEW_BODY = "{brand} has renewed its contract with {vendor} for a further three years."
EXPAND_HEADLINE = "{brand} expands its partnership with {vendor} to live chat"
EXPAND_BODY = "{brand} has extended its engagement with {vendor} to cover live chat as well as phone and email."
END_HEADLINE = "{brand} and {vendor} conclude their customer care partnership"
END_BODY = "{brand} has ended its contract with {vendor}; the service transitions to a new provider in {month}."


@dataclass(frozen=True)
class PressRelease:
    path: str
    day: date
    headline: str
    body: list[str]


def vendor_site_truth(world: World | None = None) -> list[Engagement]:
    """The engagements a discovery crawl of the vendor sites should find: the world's own."""
    return list((world or load_world()).engagements)


@contextmanager
def serve_vendor_sites(out_dir: Path, vendor_ids: list[str]) -> Iterator[dict[str, str]]:
    """One loopback server per vendor folder under out_dir; yields {vendor id: base URL}."""
    with ExitStack() as stack:
        urls = {}
        for vid in vendor_ids:
            folder = Path(out_dir) / vid
            folder.mkdir(parents=True, exist_ok=True)
            urls[vid] = stack.enter_context(serve_directory(folder))
        yield urls


def write_vendor_sites(out_dir: Path, base_urls: dict[str, str], *, seed: int = 7,
                       world: World | None = None) -> dict[str, int]:
    """Write every vendor's site into out_dir/VENDOR_ID/ for the base URL it is served at.

    Returns pages written per vendor. Deterministic for a seed and the same base URLs.
    """
    world = world or load_world()
    rng = random.Random(seed)
    written = {}
    for vendor in world.vendors:
        base = base_urls.get(vendor.id)
        if base is None:
            continue
        files = vendor_site_files(world, vendor, base.rstrip("/"), rng)
        for path, content in files.items():
            target = Path(out_dir) / vendor.id / path.lstrip("/")
            if path.endswith("/"):
                target = target / "index.html"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        written[vendor.id] = sum(1 for p in files if not p.endswith((".txt", ".xml")))
    return written


def _brands(world: World) -> dict[str, Brand]:
    return {b.id: b for b in world.brands}


def _month(day: date) -> str:
    return day.strftime("%B %Y")


def _long(day: date) -> str:
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def press_releases(world: World, vendor: Vendor, rng: random.Random) -> list[PressRelease]:
    """The vendor's dated press releases: one per start, end, renewal and expansion the world implies."""
    brands = _brands(world)
    out: list[PressRelease] = []
    mine = sorted((e for e in world.engagements if e.vendor_id == vendor.id), key=lambda e: e.start)
    expanded = False
    for e in mine:
        brand = brands[e.brand_id]
        names = {"brand": brand.name, "vendor": vendor.name, "month": _month(e.start)}
        if e.scope != "all":
            channel = CHANNEL_WORDS.get(e.scope, e.scope)
            headline = SCOPED_HEADLINE.format(channel=channel, **names)
            body = f"{brand.name} has selected {vendor.name} to run its {channel} customer service from {_month(e.start)}."
        else:
            headline = rng.choice(START_HEADLINES).format(**names)
            body = rng.choice(START_BODIES).format(what="its customer service", **names)
        out.append(PressRelease(f"/press/{e.start:%Y-%m}-{brand.id}-{vendor.id}.html", e.start, headline,
                                [body, _boilerplate(vendor, rng)]))
        if e.end is not None:
            day = e.end - timedelta(days=20)
            out.append(PressRelease(f"/press/{day:%Y-%m}-{brand.id}-ends.html", day,
                                    END_HEADLINE.format(**names),
                                    [END_BODY.format(**{**names, "month": _month(e.end + timedelta(days=1))}),
                                     _boilerplate(vendor, rng)]))
        renew = date(e.start.year + RENEWAL_AFTER_YEARS, e.start.month, 1)
        if e.end is None and renew < world.period_end and e.scope == "all":
            if not expanded:  # the vendor's first long client widens to chat instead of a plain renewal
                expanded = True
                out.append(PressRelease(f"/press/{renew:%Y-%m}-{brand.id}-chat.html", renew,
                                        EXPAND_HEADLINE.format(**names), [EXPAND_BODY.format(**names)]))
            else:
                out.append(PressRelease(f"/press/{renew:%Y-%m}-{brand.id}-renewal.html", renew,
                                        RENEW_HEADLINE.format(**names), [RENEW_BODY.format(**names)]))
    return sorted(out, key=lambda p: (p.day, p.path))


def _boilerplate(vendor: Vendor, rng: random.Random) -> str:
    supplier = rng.choice(TECH_SUPPLIERS)
    return (f"{vendor.name} runs its contact centres on {supplier}, its technology supplier, "
            "and employs agents in four countries.")


def _page(title: str, body: str, *, day: date | None = None, jsonld: list[dict[str, Any]] | None = None) -> str:
    meta = f'<meta property="article:published_time" content="{day.isoformat()}">' if day else ""
    scripts = "".join(f'<script type="application/ld+json">{json.dumps(d)}</script>' for d in jsonld or [])
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"{meta}{scripts}</head><body><nav><a href=\"/\">Home</a> <a href=\"/clients/\">Clients</a> "
            "<a href=\"/case-studies/\">Case studies</a> <a href=\"/news/\">News</a> <a href=\"/about/\">About</a></nav>"
            f"<main>{body}</main></body></html>\n")


def vendor_site_files(world: World, vendor: Vendor, base: str, rng: random.Random) -> dict[str, str]:
    """Every file of one vendor's site: path -> content."""
    brands = _brands(world)
    mine = sorted((e for e in world.engagements if e.vendor_id == vendor.id), key=lambda e: e.start)
    current = [brands[b] for b in dict.fromkeys(e.brand_id for e in mine if e.end is None)]
    others = [b for b in world.brands if b.id not in {e.brand_id for e in mine}]
    competitor = next(v for v in world.vendors if v.id != vendor.id)
    releases = press_releases(world, vendor, rng)
    e_ = html.escape
    files: dict[str, str] = {}

    logos = "".join(f'<li><img src="/logos/{b.id}.svg" alt="{e_(b.name)}"></li>' for b in current)
    partners = "".join(f'<li><img src="/logos/{s.lower().replace(" ", "-")}.svg" alt="{e_(s)}"></li>'
                       for s in TECH_SUPPLIERS)
    org = {"@context": "https://schema.org", "@type": "Organization", "name": vendor.name, "url": base + "/",
           "sameAs": [f"https://www.linkedin.example/company/{vendor.id}"]}
    files["/"] = _page(vendor.name, (
        f"<h1>{e_(vendor.name)}</h1><p>Customer care that brands trust.</p>"
        f'<section class="clients"><h2>Trusted by</h2><ul class="logo-wall">{logos}</ul></section>'
        f'<section class="partners"><h2>Technology partners</h2><ul class="logo-wall">{partners}</ul></section>'
    ), jsonld=[org])
    files["/clients/"] = _page(f"Our clients - {vendor.name}", (
        f'<h1>Our clients</h1><section id="clients"><ul class="logo-wall">{logos}</ul></section>'
        f"<p>{e_(vendor.name)} serves brands in {len({b.sector for b in current})} sectors.</p>"
    ))
    studies = []
    for b in current:
        path = f"/case-studies/{b.id}.html"
        title = f"Case study: how {b.name} cut wait times with {vendor.name}"
        about = {"@context": "https://schema.org", "@type": "Article", "headline": title,
                 "about": {"@type": "Organization", "name": b.name, "sameAs": b.website}}
        files[path] = _page(title, (
            f"<article><h1>{e_(title)}</h1><p>{e_(vendor.name)} answers {e_(b.name)}'s customers around the clock.</p>"
            f"<p>Average wait times fell by a third in the first year.</p></article>"
        ), jsonld=[about])
        studies.append(f'<li><a href="{path}">{e_(title)}</a></li>')
    files["/case-studies/"] = _page(f"Case studies - {vendor.name}", f"<h1>Case studies</h1><ul>{''.join(studies)}</ul>")

    for p in releases:
        paragraphs = "".join(f"<p>{e_(text)}</p>" for text in p.body)
        files[p.path] = _page(p.headline, (
            f'<article><h1>{e_(p.headline)}</h1><p class="dateline"><time datetime="{p.day.isoformat()}">'
            f"{_long(p.day)}</time></p>{paragraphs}</article>"
        ), day=p.day)
    items = "".join(
        f'<li><time datetime="{p.day.isoformat()}">{_long(p.day)}</time> <a href="{p.path}">{e_(p.headline)}</a></li>'
        for p in reversed(releases)
    )
    award_brand = others[rng.randrange(len(others))] if others else None
    news_extra = (f"<li><time datetime=\"{world.period_end.isoformat()}\">{_long(world.period_end)}</time> "
                  f"{e_(award_brand.name)} wins a mobile app award at the {AWARDS[1]}.</li>") if award_brand else ""
    draft_link = f'<p><a href="{DRAFT_PATH}">Upcoming announcements</a></p>' if others else ""
    files["/news/"] = _page(f"News - {vendor.name}",
                            f"<h1>News and press releases</h1><ul class=\"news\">{items}{news_extra}</ul>{draft_link}")

    shortlisted = ", ".join(b.name for b in others[:3])
    unlike = others[-1].name if others else "other brands"
    files["/about/"] = _page(f"About {vendor.name}", (
        f"<h1>About {e_(vendor.name)}</h1>"
        f"<p>Unlike {e_(competitor.name)}, we never offshore a contract without asking.</p>"
        f"<p>Unlike {e_(unlike)}, our agents answer every chat in under a minute.</p>"
        f"<h2>Awards</h2><p>Shortlisted at the {AWARDS[0]} alongside {e_(shortlisted)}.</p>"
        f"<h2>Technology</h2><p>We work with {e_(TECH_SUPPLIERS[0])} and {e_(TECH_SUPPLIERS[1])} as technology suppliers.</p>"
    ))
    if others:  # robots.txt hides this folder: a crawler that reads it proposes a client that is not one
        files[DRAFT_PATH] = _page("Draft", (
            f"<article><h1>{e_(others[0].name)} selects {e_(vendor.name)} for its customer care</h1>"
            f'<p><time datetime="{world.period_end.isoformat()}">draft</time></p></article>'
        ))
    pages = [p for p in files if p != DRAFT_PATH]
    files["/sitemap.xml"] = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
                             + "".join(f"  <url><loc>{base}{p}</loc></url>\n" for p in pages)
                             + "</urlset>\n")
    files["/robots.txt"] = f"User-agent: *\nDisallow: {DRAFT_PATH.rsplit('/', 1)[0]}/\nSitemap: {base}/sitemap.xml\n"
    return files
