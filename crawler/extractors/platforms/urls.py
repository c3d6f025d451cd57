"""Review-page addresses of the built-in platforms: where to start, and how to list newest first.

Pure functions, nothing is fetched. ``suggest_sources`` proposes the listing URLs that follow
from a brand's website domain and app ids (only Trustpilot, Google Play and the App Store key
their pages on those; Yelp, Amazon, TripAdvisor and ConsumerAffairs use their own slugs and ids,
so the user must find those pages). ``newest_first`` and ``first_page`` rewrite a listing URL
so that an incremental re-crawl reads the newest reviews first and can stop at known ones;
query parameters other than the sort and page ones are kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from w3lib.url import add_or_replace_parameter, url_query_cleaner

from crawler.extractors import platforms
from crawler.extractors.platforms import PLATFORMS

__all__ = [
    "RULES",
    "ListingRules",
    "NeedsPage",
    "Suggestion",
    "apple_reviews_url",
    "first_page",
    "newest_first",
    "normalise_apple_id",
    "normalise_country",
    "normalise_domain",
    "normalise_play_id",
    "platform_of",
    "play_reviews_url",
    "suggest_sources",
    "trustpilot_url",
]

# --------------------------------------------------------------------------- input checks

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
# Android application ids: two or more dot-separated Java identifiers.
_PLAY_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+$")
_APPLE_ID = re.compile(r"^(?:id)?(\d{1,15})$", re.IGNORECASE)
_COUNTRY = re.compile(r"^[a-z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?$")


def normalise_domain(text: str) -> str:
    """The host name in ``text`` ("https://www.Acme.com/about" -> "acme.com"), lower case, no "www.".

    Raises ``ValueError`` naming the input when it is not a public host name (no dot, an IP
    address, a label with bad characters).
    """
    raw = text.strip()
    candidate = raw if "//" in raw else f"//{raw}"
    try:
        host = urlsplit(candidate).hostname or ""
    except ValueError:
        host = ""
    host = host.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        host = ""
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        raise ValueError(f"{raw!r} is not a domain name (expected something like example.com)")
    if labels[0] == "www" and len(labels) > 2:
        labels = labels[1:]
    return ".".join(labels)


def normalise_play_id(text: str) -> str:
    """A Google Play application id ("com.example.app"); ``ValueError`` otherwise."""
    value = text.strip()
    if not _PLAY_ID.match(value):
        raise ValueError(f"{text!r} is not a Google Play app id (expected something like com.example.app)")
    return value


def normalise_apple_id(text: str) -> str:
    """The digits of an App Store app id ("284882215" or "id284882215"); ``ValueError`` otherwise."""
    match = _APPLE_ID.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an App Store app id (expected digits, like 284882215)")
    return match.group(1)


def normalise_country(text: str) -> str:
    """A two-letter store country code, lower case ("US" -> "us"); ``ValueError`` otherwise."""
    value = text.strip().lower()
    if not _COUNTRY.match(value):
        raise ValueError(f"{text!r} is not a two-letter country code (like us, gb, fr)")
    return value


def _language(text: str) -> str:
    value = text.strip()
    if not _LANGUAGE.match(value):
        raise ValueError(f"{text!r} is not a language code (like en, de, pt-BR)")
    return value


# --------------------------------------------------------------------------- URL builders


def trustpilot_url(domain: str) -> str:
    """Trustpilot keys a company page on the company's website domain."""
    return f"https://www.trustpilot.com/review/{domain}"


def play_reviews_url(app_id: str, language: str = "en") -> str:
    """The app's Play Store page; ``showAllReviews`` opens the review list, ``hl`` its language."""
    query = urlencode({"id": app_id, "hl": language, "showAllReviews": "true"})
    return f"https://play.google.com/store/apps/details?{query}"


def apple_reviews_url(app_id: str, country: str = "us") -> str:
    """Apple's customer-review RSS feed in JSON, one store country per feed, newest first."""
    return f"https://itunes.apple.com/{country}/rss/customerreviews/page=1/id={app_id}/sortby=mostrecent/json"


@dataclass(frozen=True)
class Suggestion:
    """A review-page URL that follows from the brand's domain or app id, with its layout name."""

    platform: str
    url: str
    layout: str
    derived_from: str


@dataclass(frozen=True)
class NeedsPage:
    """A platform whose page cannot be derived: what the user should look for, and its shape."""

    platform: str
    why: str
    example: str


# Pages keyed on the platform's own slugs or ids, never on the company's domain.
_NEEDS_PAGE: dict[str, tuple[str, str]] = {
    platforms.yelp.NAME: (
        "Yelp pages are keyed on a business alias (name and city), one per location",
        "https://www.yelp.com/biz/<business-alias>",
    ),
    platforms.amazon.NAME: (
        "Amazon reviews belong to a product (its ASIN), not to a company",
        "https://www.amazon.com/product-reviews/<ASIN>",
    ),
    platforms.tripadvisor.NAME: (
        "TripAdvisor pages are keyed on its own geo and place ids",
        "https://www.tripadvisor.com/Hotel_Review-g<geo>-d<place>-Reviews-<Name>-<Town>.html",
    ),
    platforms.consumeraffairs.NAME: (
        "ConsumerAffairs pages are keyed on its own category and company slug",
        "https://www.consumeraffairs.com/<category>/<company>.html",
    ),
}


def suggest_sources(
    domain: str | None,
    play_ids: Iterable[str] = (),
    apple_ids: Iterable[str] = (),
    *,
    country: str = "us",
    language: str = "en",
) -> tuple[list[Suggestion], list[NeedsPage]]:
    """Listing URLs that follow from a brand's domain and app ids, and the platforms that need a page URL.

    Inputs are checked (``ValueError`` names the bad one); repeated ids give one suggestion.
    """
    country, language = normalise_country(country), _language(language)
    plays = list(dict.fromkeys(normalise_play_id(p) for p in play_ids))
    apples = list(dict.fromkeys(normalise_apple_id(a) for a in apple_ids))
    found: list[Suggestion] = []
    needs: list[NeedsPage] = []
    if domain is not None:
        domain = normalise_domain(domain)
        trustpilot = platforms.trustpilot.NAME
        found.append(Suggestion(trustpilot, trustpilot_url(domain), trustpilot, f"domain {domain}"))
    else:
        needs.append(NeedsPage(platforms.trustpilot.NAME,
                               "Trustpilot pages are keyed on the website domain: pass --domain",
                               trustpilot_url("<domain>")))
    play = platforms.google_play.NAME
    found += [Suggestion(play, play_reviews_url(p, language), play, f"app id {p}") for p in plays]
    if not plays:
        needs.append(NeedsPage(play, "Google Play pages are keyed on the app id: pass --app-id",
                               play_reviews_url("<app.id>", language)))
    apple = platforms.app_store.NAME
    found += [Suggestion(apple, apple_reviews_url(a, country), apple, f"apple id {a} ({country})")
              for a in apples]
    if not apples:
        needs.append(NeedsPage(apple, "App Store feeds are keyed on the numeric app id: pass --apple-id",
                               apple_reviews_url("<digits>", country)))
    needs += [NeedsPage(name, why, example) for name, (why, example) in _NEEDS_PAGE.items()]
    return found, needs


# --------------------------------------------------------------------------- listing order and paging


def _set_param(url: str, name: str, value: str) -> str:
    return add_or_replace_parameter(url, name, value)


def _drop_params(url: str, *names: str) -> str:
    return url_query_cleaner(url, names, remove=True, unique=False, keep_fragments=True)


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


def trustpilot_newest_first(url: str) -> str:
    return _set_param(url, "sort", "recency")


def trustpilot_first_page(url: str) -> str:
    return _drop_params(url, "page")


def yelp_newest_first(url: str) -> str:
    return _set_param(url, "sort_by", "date_desc")


def yelp_first_page(url: str) -> str:
    return _drop_params(url, "start")


def amazon_newest_first(url: str) -> str:
    return _set_param(url, "sortBy", "recent")


def amazon_first_page(url: str) -> str:
    return _drop_params(url, "pageNumber")


def unchanged(url: str) -> str:
    """For a platform with no URL way to do it (its note says why)."""
    return url


_APPLE_SORT = re.compile(r"^sortby=", re.IGNORECASE)
_APPLE_PAGE = re.compile(r"^page=\d*$", re.IGNORECASE)


def _apple_segments(url: str) -> list[str] | None:
    segments = urlsplit(url).path.split("/")
    return segments if any(s.lower() == "customerreviews" for s in segments) else None


def app_store_newest_first(url: str) -> str:
    """The feed's ``sortby=`` path segment set to ``mostrecent`` (added after ``id=`` when missing)."""
    segments = _apple_segments(url)
    if segments is None:
        return url
    sorts = [i for i, s in enumerate(segments) if _APPLE_SORT.match(s)]
    if sorts:
        segments[sorts[0]] = "sortby=mostrecent"
        segments = [s for i, s in enumerate(segments) if i not in sorts[1:]]
    else:
        ids = [i for i, s in enumerate(segments) if s.lower().startswith("id=")]
        at = ids[0] + 1 if ids else len(segments) - (1 if segments[-1].lower() in ("json", "xml") else 0)
        segments.insert(at, "sortby=mostrecent")
    return _with_path(url, "/".join(segments))


def app_store_first_page(url: str) -> str:
    """The feed's ``page=N`` path segment set to 1: the extractor reads the page number from the URL."""
    segments = _apple_segments(url)
    if segments is None:
        return url
    return _with_path(url, "/".join("page=1" if _APPLE_PAGE.match(s) else s for s in segments))


_TRIPADVISOR_OFFSET = re.compile(r"(-Reviews|-d\d+)-or\d+(?=-)")


def tripadvisor_first_page(url: str) -> str:
    """Without the ``-orNN-`` offset in the page name (``...-Reviews-or10-Name.html``)."""
    parts = urlsplit(url)
    head, slash, last = parts.path.rpartition("/")
    return _with_path(url, head + slash + _TRIPADVISOR_OFFSET.sub(r"\1", last))


def consumeraffairs_first_page(url: str) -> str:
    return _drop_params(url, "page")


@dataclass(frozen=True)
class ListingRules:
    """How one platform's listing URL is put in newest-first order and back to its first page."""

    newest_first: Callable[[str], str]
    first_page: Callable[[str], str]
    how: str


RULES: dict[str, ListingRules] = {
    platforms.trustpilot.NAME: ListingRules(
        trustpilot_newest_first, trustpilot_first_page, "query sort=recency"
    ),
    platforms.yelp.NAME: ListingRules(yelp_newest_first, yelp_first_page, "query sort_by=date_desc"),
    platforms.amazon.NAME: ListingRules(amazon_newest_first, amazon_first_page, "query sortBy=recent"),
    platforms.google_play.NAME: ListingRules(
        unchanged,
        unchanged,
        "none: the page takes no sort parameter (the order is chosen in the page's own review requests)",
    ),
    platforms.app_store.NAME: ListingRules(
        app_store_newest_first, app_store_first_page, "path segment sortby=mostrecent"
    ),
    platforms.tripadvisor.NAME: ListingRules(
        unchanged, tripadvisor_first_page, "none: no sort parameter; the listing is newest first by default"
    ),
    platforms.consumeraffairs.NAME: ListingRules(
        unchanged,
        consumeraffairs_first_page,
        "none applied: the listing's default sort is Recent (a pinned featured review may come first)",
    ),
}


def platform_of(url: str) -> str | None:
    """The built-in platform whose host serves ``url``, if any."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return None
    return next((p.name for p in PLATFORMS.values() if host and p.owns_host(host)), None)


def _rules(url: str, platform: str | None) -> ListingRules | None:
    name = platform or platform_of(url)
    if name is None:
        return None
    if name not in RULES:
        raise KeyError(f"no built-in platform named {name!r} (known: {', '.join(RULES)})")
    return RULES[name]


def newest_first(url: str, platform: str | None = None) -> str:
    """``url`` rewritten so the platform lists newest reviews first (by host unless ``platform`` names it).

    A URL of no known platform, or of one without a URL way to sort, comes back unchanged.
    """
    rules = _rules(url, platform)
    return rules.newest_first(url) if rules else url


def first_page(url: str, platform: str | None = None) -> str:
    """``url`` without its page parameter (the App Store feed goes to page 1), other parameters kept."""
    rules = _rules(url, platform)
    return rules.first_page(url) if rules else url
