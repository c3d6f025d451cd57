"""Phase 2: check each entry of each section on its own (types, required fields, known keys).

References between entries (an engagement's vendor, duplicate ids) are phase 3's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from crawler.extractors.platforms.urls import normalise_domain
from reputation.registry.entries import Brand, Entry, Vendor, source_id
from reputation.registry.field_checks import Fields, entries
from reputation.registry.problems import Problems
from reputation.registry.tree import Located
from storage.records import FULL_CRAWL_INTERVAL_HOURS, RENDER_HTTP, RENDERS, Engagement, Source

T = TypeVar("T")

SECTIONS = ("vendors", "brands", "engagements")
VENDOR_KEYS = ("id", "name", "website", "notes")
BRAND_KEYS = ("id", "name", "website", "sources")
SOURCE_KEYS = ("url", "layout", "crawl_interval_hours", "full_crawl_interval_hours", "render")
ENGAGEMENT_KEYS = ("vendor", "brand", "start", "end", "scope", "share", "evidence")

DEFAULT_LAYOUT = "auto"
DEFAULT_INTERVAL_HOURS = 24.0
MAX_INTERVAL_HOURS = 24.0 * 366
SCOPE_ALL = "all"  # the whole of the brand's customer service; other scopes name a channel
SUGGEST = "suggest"  # ``sources: suggest``: load no source, print suggested review pages instead


@dataclass
class Sections:
    """Entries that passed their own checks, in file order."""

    vendors: list[Entry[Vendor]] = field(default_factory=list)
    brands: list[Entry[Brand]] = field(default_factory=list)
    sources: list[Entry[Source]] = field(default_factory=list)
    engagements: list[Entry[Engagement]] = field(default_factory=list)
    suggest_sources: set[str] = field(default_factory=set)  # ids of brands with ``sources: suggest``


def check_sections(root: Located, layouts: list[str], problems: Problems) -> Sections:
    """Check every entry of the document; mistakes go to ``problems``, good entries are returned."""
    for key, got in root.mapping.items():
        if key not in SECTIONS:
            problems.add(got.key_line, key, f"unknown section (expected one of: {', '.join(SECTIONS)})")
    found = Sections()
    for where, item in entries(root, "vendors", "", problems):
        vendor = _vendor(Fields(item, where, problems))
        if vendor is not None:
            found.vendors.append(vendor)
    for where, item in entries(root, "brands", "", problems):
        fields = Fields(item, where, problems)
        brand = _brand(fields)
        given = item.mapping.get("sources")
        if given is not None and isinstance(given.value, str):
            if _wants_suggestions(fields, given.value, given.line, brand) and brand is not None:
                found.suggest_sources.add(brand.value.id)
            listed = []
        else:
            listed = entries(item, "sources", where, problems)
        for s_where, s_item in listed:
            source = _source(Fields(s_item, s_where, problems), brand.value.id if brand else None, layouts)
            if source is not None:
                found.sources.append(source)
        if brand is not None:
            found.brands.append(brand)
    for where, item in entries(root, "engagements", "", problems):
        engagement = _engagement(Fields(item, where, problems))
        if engagement is not None:
            found.engagements.append(engagement)
    return found


def _entry(fields: Fields, value: T) -> Entry[T]:
    return Entry(value, fields.where, fields.item.line, fields.field_lines())


def _vendor(fields: Fields) -> Entry[Vendor] | None:
    fields.only(VENDOR_KEYS)
    vid = fields.slug("id")
    name = fields.text("name")
    website = fields.url("website", required=False)
    notes = fields.text("notes", required=False)
    if vid is None or name is None:
        return None
    return _entry(fields, Vendor(vid, name, website, notes))


def _brand(fields: Fields) -> Entry[Brand] | None:
    fields.only(BRAND_KEYS)
    bid = fields.slug("id")
    name = fields.text("name")
    website = fields.url("website", required=False)
    if bid is None or name is None:
        return None
    return _entry(fields, Brand(bid, name, website))


def _wants_suggestions(fields: Fields, value: str, line: int, brand: Entry[Brand] | None) -> bool:
    """``sources: suggest`` on a brand whose website gives a domain to derive review pages from."""
    where = f"{fields.where}.sources"
    if value.strip() != SUGGEST:
        fields.problems.add(line, where, f"must be a list of sources or {SUGGEST!r}, not {value!r}")
        return False
    website = fields.item.mapping.get("website")
    if website is None or website.value in (None, ""):
        fields.problems.add(line, where, f"{SUGGEST} needs the brand's website")
        return False
    if brand is None or brand.value.website is None:
        return False  # the brand's own mistake (a bad website, a missing name) is already named
    try:
        normalise_domain(brand.value.website)
    except ValueError as exc:
        fields.problems.add(line, where, f"{SUGGEST} needs a website with a domain name: {exc}")
        return False
    return True


def _source(fields: Fields, brand_id: str | None, layouts: list[str]) -> Entry[Source] | None:
    fields.only(SOURCE_KEYS)
    url = fields.url("url", required=True)
    layout = fields.choice("layout", layouts, DEFAULT_LAYOUT)
    interval = fields.number("crawl_interval_hours", DEFAULT_INTERVAL_HOURS, 0.0, MAX_INTERVAL_HOURS)
    render = fields.choice("render", list(RENDERS), RENDER_HTTP)  # browser: a page a script fills
    full_interval = _full_interval(fields, interval)
    if url is None or brand_id is None:
        return None
    source = Source(
        source_id(url),
        brand_id,
        url,
        layout,
        interval,
        None,
        render=render,
        full_crawl_interval_hours=full_interval,
    )
    return _entry(fields, source)


def _full_interval(fields: Fields, interval: float) -> float:
    """Hours between full walks of the listing: given, else 7 days (never less than the crawl interval).

    A full interval shorter than the crawl interval could never be kept (a source is crawled at
    most every ``crawl_interval_hours``), so it is an error rather than silently every crawl.
    """
    key = "full_crawl_interval_hours"
    given = fields.item.mapping.get(key)
    if given is None or given.value is None:
        return max(FULL_CRAWL_INTERVAL_HOURS, interval)
    full = fields.number(key, max(FULL_CRAWL_INTERVAL_HOURS, interval), 0.0, MAX_INTERVAL_HOURS)
    if full < interval:
        fields.problems.add(
            fields.line_of(key),
            f"{fields.where}.{key}",
            f"{full:g} must be at least crawl_interval_hours ({interval:g}): a source is crawled at most that often",
        )
        return interval
    return full


def _engagement(fields: Fields) -> Entry[Engagement] | None:
    fields.only(ENGAGEMENT_KEYS)
    vendor = fields.slug("vendor")
    brand = fields.slug("brand")
    start = fields.day("start", required=True)
    end = fields.day("end", required=False)
    scope = (fields.text("scope", required=False) or SCOPE_ALL).lower()
    share = fields.number("share", 1.0, 0.0, 1.0)
    evidence = fields.url("evidence", required=False)
    given_end = fields.item.mapping.get("end")
    if given_end is not None and given_end.value is not None and end is None:
        return None  # a mistyped end must not be checked as an open window
    if vendor is None or brand is None or start is None:
        return None
    return _entry(fields, Engagement(vendor, brand, start, end, scope, share, evidence))
