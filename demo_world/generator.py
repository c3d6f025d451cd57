"""Write the demo review sites to disk and describe what a correct crawl must find.

The manifest is the answer key: how many review rows a crawler should store and the
ground truth (vendor quality order, contract switches) the roll-ups should recover.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from demo_world.corpus import Review, build_corpus
from demo_world.markup import (
    ROBOTS_TXT,
    draft_path,
    listing_path,
    render_drafts,
    render_index,
    render_listing,
)
from demo_world.text import NEGATIVE, POSITIVE, Composer, stars_for
from demo_world.world import DATA, SITES, World, load_world
from storage.errors import ReputationError

MANIFEST_NAME = "manifest.json"
TRUTH_NAME = "ground_truth.jsonl"
DRAFTS_PER_BRAND = 3


@dataclass
class DemoManifest:
    """Counts and ground truth of one generated demo site (also saved as manifest.json)."""

    seed: int
    today: str
    period: dict[str, str]
    total_reviews: int                    # rows a correct crawler stores: public reviews incl. copies, no drafts
    per_site: dict[str, int]
    per_brand: dict[str, int]
    per_brand_site: dict[str, dict[str, int]]
    syndicated_copies: int
    non_english: int
    pages: int                            # public listing pages (drafts and index not counted)
    pages_per_site: dict[str, int]
    draft_pages: int
    draft_reviews: int
    vendor_quality_order: list[str]       # best first
    vendor_quality: dict[str, float]
    brand_quality: dict[str, float]
    switches: list[dict[str, str]]        # brand, from_vendor, to_vendor, date
    vendors: list[dict[str, Any]] = field(default_factory=list)
    brands: list[dict[str, Any]] = field(default_factory=list)
    engagements: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, str]] = field(default_factory=list)   # brand, site, path

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DemoManifest:
        return cls(**json.loads(text))


def load_manifest(out_dir: Path) -> DemoManifest:
    """The manifest of a site generated earlier into out_dir."""
    return DemoManifest.from_json((Path(out_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))


def generate_site(out_dir: Path, *, seed: int = 7, today: date | None = None,
                  data_dir: Path | None = None) -> DemoManifest:
    """Write the four sites, robots.txt, an index, drafts, manifest.json and ground_truth.jsonl.

    Deterministic for a given seed and today; `today` anchors the forum's relative dates.
    """
    today = today or date.today()
    out_dir = Path(out_dir)
    _clear_previous(out_dir)
    rng = random.Random(seed)
    world = load_world(data_dir)
    composer = Composer.load(data_dir)
    reviews = build_corpus(world, composer, rng, today)

    files: dict[str, str] = {"/robots.txt": ROBOTS_TXT, "/": render_index(world.brands)}
    pages_per_site: Counter[str] = Counter()
    sources = []
    for brand in world.brands:
        for site in brand.sites:
            listing = [r for r in reviews if r.brand == brand.id and r.site == site]
            sources.append({"brand": brand.id, "site": site, "path": listing_path(site, brand.id)})
            for path, html in render_listing(site, brand, listing, world.page_size[site], today):
                files[path] = html
                pages_per_site[site] += 1
        if "forum" in brand.sites:
            files[draft_path(brand.id)] = render_drafts(brand, _drafts(composer, rng, world, brand.id, today))
    _write_files(out_dir, files)

    manifest = _manifest(world, reviews, seed, today, dict(pages_per_site), sources)
    (out_dir / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    _write_truth(out_dir / TRUTH_NAME, reviews)
    return manifest


def generate_scaled_site(
    workdir: Path, *, reviews_min: int, reviews_max: int, page_size: int
) -> tuple[Path, DemoManifest]:
    """The demo site from a copy of its data with other review counts and page sizes (tests, benchmarks).

    The copy and the site go under ``workdir`` (``demo-data/``, ``site/``); the packaged data is untouched.
    """
    data = workdir / "demo-data"
    data.mkdir(parents=True, exist_ok=True)
    for entry in DATA.iterdir():
        (data / entry.name).write_bytes(entry.read_bytes())
    world = yaml.safe_load((data / "world.yaml").read_text(encoding="utf-8"))
    world["reviews_per_brand"] = {"min": reviews_min, "max": reviews_max}
    world["page_size"] = {site: page_size for site in world["page_size"]}
    (data / "world.yaml").write_text(yaml.safe_dump(world, sort_keys=False), encoding="utf-8")
    site = workdir / "site"
    return site, generate_site(site, data_dir=data)


def _clear_previous(out_dir: Path) -> None:
    """Remove an earlier demo site (so no stale pages survive) but never someone else's files."""
    ours = [out_dir / site for site in SITES] + [out_dir / name for name in (MANIFEST_NAME, TRUTH_NAME)]
    if not any(p.exists() for p in ours):
        return
    if not (out_dir / MANIFEST_NAME).is_file():
        raise ReputationError(f"{out_dir} holds site folders but no {MANIFEST_NAME}; "
                              "refusing to overwrite files the demo did not write")
    for path in ours:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _drafts(composer: Composer, rng: random.Random, world: World, brand_id: str, today: date) -> list[Review]:
    brand = next(b for b in world.brands if b.id == brand_id)
    drafts = []
    for _ in range(DRAFTS_PER_BRAND):
        polarity = rng.choice([POSITIVE, NEGATIVE])
        text = composer.compose(rng, brand=brand.name, sector=brand.sector, service=polarity,
                                product=None, channel="any")
        stars = stars_for(rng, text.sentiment)
        drafts.append(Review(brand=brand.id, site="forum", day=today, time="12:00:00",
                             author=composer.author(rng, "handle"), title=composer.title(rng, stars),
                             paragraphs=text.paragraphs, stars=stars, app_score=0, language="en", vendor=None,
                             channel="any", service=polarity, product=None))
    return drafts


def _write_files(out_dir: Path, files: dict[str, str]) -> None:
    for path, content in files.items():
        target = out_dir / path.lstrip("/")
        if path.endswith("/"):
            target = target / "index.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def _manifest(world: World, reviews: list[Review], seed: int, today: date, pages_per_site: dict[str, int],
              sources: list[dict[str, str]]) -> DemoManifest:
    per_brand_site: dict[str, dict[str, int]] = {b.id: {} for b in world.brands}
    for r in reviews:
        per_brand_site[r.brand][r.site] = per_brand_site[r.brand].get(r.site, 0) + 1
    forum_brands = sum(1 for b in world.brands if "forum" in b.sites)
    return DemoManifest(
        seed=seed, today=today.isoformat(),
        period={"start": world.period_start.isoformat(), "end": world.period_end.isoformat()},
        total_reviews=len(reviews),
        per_site={s: sum(1 for r in reviews if r.site == s) for s in SITES},
        per_brand={b: sum(c.values()) for b, c in per_brand_site.items()},
        per_brand_site=per_brand_site,
        syndicated_copies=sum(1 for r in reviews if r.syndicated_of is not None),
        non_english=sum(1 for r in reviews if r.language != "en"),
        pages=sum(pages_per_site.values()),
        pages_per_site={s: pages_per_site.get(s, 0) for s in SITES},
        draft_pages=forum_brands, draft_reviews=forum_brands * DRAFTS_PER_BRAND,
        vendor_quality_order=[v.id for v in sorted(world.vendors, key=lambda v: -v.quality)],
        vendor_quality={v.id: v.quality for v in world.vendors},
        brand_quality={b.id: b.quality for b in world.brands},
        switches=world.switches(),
        vendors=[{"id": v.id, "name": v.name, "website": v.website} for v in world.vendors],
        brands=[{"id": b.id, "name": b.name, "sector": b.sector, "website": b.website, "sites": list(b.sites)}
                for b in world.brands],
        engagements=[{"vendor": e.vendor_id, "brand": e.brand_id, "start": e.start.isoformat(),
                      "end": e.end.isoformat() if e.end else None, "scope": e.scope, "share": e.share,
                      "evidence": e.evidence_url} for e in world.engagements],
        sources=sources,
    )


def _write_truth(path: Path, reviews: list[Review]) -> None:
    """One line per public review with the labels behind it, for checking crawl and model.

    service/product: 1 positive, -1 negative, 0 mixed, null not mentioned; syndicated_of: line
    number (0-based) of the review this one copies.
    """
    with path.open("w", encoding="utf-8") as fh:
        for r in reviews:
            fh.write(json.dumps({
                "site": r.site, "brand": r.brand, "site_review_id": r.site_review_id, "author": r.author,
                "date": r.day.isoformat(), "title": r.title, "body": r.body, "stars": r.stars,
                "language": r.language, "vendor": r.vendor, "channel": r.channel, "service": r.service,
                "product": r.product, "syndicated_of": r.syndicated_of,
            }, ensure_ascii=False, sort_keys=True) + "\n")


def demo_registry(manifest: DemoManifest, base_url: str) -> dict[str, Any]:
    """The vendors registry (interfaces.md format) for a demo site served at base_url."""
    base = base_url.rstrip("/")
    sources: dict[str, list[dict[str, Any]]] = {}
    for s in manifest.sources:
        sources.setdefault(s["brand"], []).append({"url": base + s["path"], "layout": "auto"})
    engagements = []
    for e in manifest.engagements:
        entry: dict[str, Any] = {"vendor": e["vendor"], "brand": e["brand"], "start": date.fromisoformat(e["start"])}
        if e.get("end"):
            entry["end"] = date.fromisoformat(e["end"])
        entry["scope"] = e.get("scope") or "all"
        entry["share"] = float(e.get("share") or 1.0)
        if e.get("evidence"):
            entry["evidence"] = e["evidence"]
        engagements.append(entry)
    return {
        "vendors": [{k: v for k, v in vendor.items() if v} for vendor in manifest.vendors],
        "brands": [{"id": b["id"], "name": b["name"], "website": b["website"], "sources": sources.get(b["id"], [])}
                   for b in manifest.brands],
        "engagements": engagements,
    }


def write_demo_registry(manifest: DemoManifest, base_url: str, path: Path) -> Path:
    """Write demo_registry() as YAML; dates stay unquoted YAML dates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(demo_registry(manifest, base_url), sort_keys=False, allow_unicode=True)
    path.write_text("# Registry of the embedded demo site (fictional vendors and brands).\n" + text, encoding="utf-8")
    return path
