"""HTML for the four demo review sites, one per markup style a crawler meets in the wild.

trust: JSON-LD @graph; shop: microdata; forum: plain HTML with relative dates; app: embedded JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from html import escape
from typing import Any

from demo_world.corpus import Review
from demo_world.world import Brand

SITE_NAMES = {"trust": "TrustPlace", "shop": "ShopBoard", "forum": "Complaints Corner", "app": "Reviewly"}


def listing_path(site: str, brand_id: str, page: int = 1) -> str:
    """URL path of a listing page; page 1 is the brand's root."""
    root = f"/{site}/{brand_id}/"
    if page == 1:
        return root
    return root + {"trust": f"page/{page}/", "forum": f"p/{page}/"}.get(site, f"{page}/")


def draft_path(brand_id: str) -> str:
    return f"/forum/drafts/{brand_id}/"


def pages_of(reviews: list[Review], size: int) -> list[list[Review]]:
    """Newest first, like every review site."""
    ordered = sorted(reviews, key=lambda r: (r.day, r.time, r.site_review_id or "", r.author), reverse=True)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)] or [[]]


def relative_date(day: date, today: date) -> str:
    """How a forum shows a date; a crawler turns it back into one relative to its crawl time."""
    delta = (today - day).days
    if delta <= 0:
        return "today"
    if delta == 1:
        return "yesterday"
    if delta < 14:
        return f"{delta} days ago"
    if delta < 60:
        weeks = round(delta / 7)
        return "a week ago" if weeks == 1 else f"{weeks} weeks ago"
    # the month count whose calendar subtraction lands nearest the real day
    months = min(range(max(1, round(delta / 30.44) - 1), round(delta / 30.44) + 2),
                 key=lambda m: abs((_months_before(today, m) - day).days))
    return "a month ago" if months == 1 else f"{months} months ago"


def _months_before(day: date, months: int) -> date:
    """The same day of the month `months` calendar months earlier (clamped to the month's end)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = (date(year + (month == 11), (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month + 1, min(day.day, last))


def _script_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _stars(n: int) -> str:
    return "★" * n + "☆" * (5 - n)


def _page(title: str, body: str, head: str = "") -> str:
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n{head}</head>\n<body>\n"
            f'<header class="site"><a href="/">Demo review sites</a></header>\n{body}\n</body>\n</html>\n')


def _average(reviews: list[Review]) -> float:
    return round(sum(r.stars for r in reviews) / len(reviews), 1) if reviews else 0.0


def render_listing(site: str, brand: Brand, reviews: list[Review], page_size: int,
                   today: date) -> Iterator[tuple[str, str]]:
    """Yield (url path, html) for every page of one brand's listing on one site."""
    pages = pages_of(reviews, page_size)
    for number, chunk in enumerate(pages, start=1):
        nxt = listing_path(site, brand.id, number + 1) if number < len(pages) else None
        prev = listing_path(site, brand.id, number - 1) if number > 1 else None
        args = (brand, chunk, number, len(pages), prev, nxt)
        if site == "trust":
            html = _trust(*args, all_reviews=reviews)
        elif site == "shop":
            html = _shop(*args, all_reviews=reviews)
        elif site == "forum":
            html = _forum(*args, today=today)
        else:
            html = _app(*args)
        yield listing_path(site, brand.id, number), html


def _trust(brand: Brand, chunk: list[Review], number: int, total: int, prev: str | None, nxt: str | None,
           *, all_reviews: list[Review]) -> str:
    root = listing_path("trust", brand.id)
    org = f"{root}#org"
    nodes: list[dict[str, Any]] = [{
        "@type": "Organization", "@id": org, "name": brand.name, "url": brand.website,
        "aggregateRating": {"@type": "AggregateRating", "ratingValue": _average(all_reviews),
                            "bestRating": 5, "worstRating": 1, "reviewCount": len(all_reviews)},
        "review": [{"@id": f"{root}#r-{r.site_review_id}"} for r in chunk],
    }]
    for r in chunk:
        nodes.append({
            "@type": "Review", "@id": f"{root}#r-{r.site_review_id}", "itemReviewed": {"@id": org},
            "headline": r.title, "reviewBody": r.body, "inLanguage": r.language,
            "reviewRating": {"@type": "Rating", "ratingValue": r.stars, "bestRating": 5, "worstRating": 1},
            "author": {"@type": "Person", "name": r.author}, "datePublished": r.day.isoformat(),
        })
    head = f'<link rel="canonical" href="{listing_path("trust", brand.id, number)}">\n'
    head += f'<link rel="prev" href="{prev}">\n' if prev else ""
    head += f'<link rel="next" href="{nxt}">\n' if nxt else ""
    head += ('<script type="application/ld+json">\n'
             + _script_json({"@context": "https://schema.org", "@graph": nodes}) + "\n</script>\n")
    cards = "\n".join(
        f'<div class="card" id="r-{r.site_review_id}">\n<h2>{escape(r.title)}</h2>\n'
        f'<p class="who">{escape(r.author)} · {r.day:%d %b %Y}</p>\n'
        f'<p class="rating" title="{r.stars} out of 5">{_stars(r.stars)}</p>\n'
        + "".join(f"<p>{escape(p)}</p>\n" for p in r.paragraphs) + "</div>"
        for r in chunk)
    nav = (f'<a href="{prev}">Previous</a> ' if prev else "") + (f'<a href="{nxt}">Next page</a>' if nxt else "")
    body = (f'<main class="trust">\n<h1>{escape(brand.name)}</h1>\n'
            f'<p class="summary">TrustScore {_average(all_reviews)} out of 5 · {len(all_reviews)} reviews · '
            f"page {number} of {total}</p>\n{cards}\n<nav>{nav}</nav>\n</main>")
    return _page(f"{brand.name} reviews | {SITE_NAMES['trust']}", body, head)


def _shop(brand: Brand, chunk: list[Review], number: int, total: int, prev: str | None, nxt: str | None,
          *, all_reviews: list[Review]) -> str:
    items = []
    for r in chunk:
        items.append(
            '<div class="review" itemprop="review" itemscope itemtype="https://schema.org/Review">\n'
            f'<h3 itemprop="name">{escape(r.title)}</h3>\n'
            '<p class="by">by <span itemprop="author" itemscope itemtype="https://schema.org/Person">'
            f'<span itemprop="name">{escape(r.author)}</span></span>, '
            f'<meta itemprop="datePublished" content="{r.day.isoformat()}">{r.day:%B %d, %Y}</p>\n'
            '<div class="rating" itemprop="reviewRating" itemscope itemtype="https://schema.org/Rating">'
            f'<meta itemprop="worstRating" content="1"><span itemprop="ratingValue">{r.stars}</span>'
            ' out of <span itemprop="bestRating">5</span></div>\n'
            f'<div itemprop="reviewBody">{escape(r.body)}</div>\n</div>')
    links = " ".join(f'<span class="current">{n}</span>' if n == number
                     else f'<a href="{listing_path("shop", brand.id, n)}">{n}</a>' for n in range(1, total + 1))
    body = (f'<main class="shop">\n<div itemscope itemtype="https://schema.org/Product">\n'
            f'<h1 itemprop="name">{escape(brand.name)}</h1>\n'
            '<div itemprop="aggregateRating" itemscope itemtype="https://schema.org/AggregateRating">'
            f'<span itemprop="ratingValue">{_average(all_reviews)}</span> / <span itemprop="bestRating">5</span> '
            f'from <span itemprop="reviewCount">{len(all_reviews)}</span> reviews</div>\n'
            + "\n".join(items) + f'\n</div>\n<nav class="pages">{links}</nav>\n</main>')
    return _page(f"{brand.name} customer reviews | {SITE_NAMES['shop']}", body)


def _forum_article(r: Review, posted: str, review_id: str) -> str:
    paras = "".join(f"<p>{escape(p)}</p>" for p in _forum_paragraphs(r))
    return (f'<article class="review" data-review-id="{review_id}">\n'
            f'<h2 class="review-title">{escape(r.title)}</h2>\n'
            f'<div class="byline"><span class="author">{escape(r.author)}</span> · '
            f'<span class="posted">{posted}</span> · '
            f'<span class="stars" data-score="{r.stars}" aria-label="{r.stars} out of 5">{_stars(r.stars)}</span></div>\n'
            f'<div class="review-text">{paras}</div>\n</article>')


def _forum_paragraphs(r: Review) -> list[str]:
    """Forum posts break long single blocks into several paragraphs."""
    if len(r.paragraphs) > 1:
        return r.paragraphs
    sentences = r.paragraphs[0].split(". ")
    if len(sentences) < 3:
        return r.paragraphs
    half = len(sentences) // 2
    return [". ".join(sentences[:half]) + ".", ". ".join(sentences[half:])]


def _forum(brand: Brand, chunk: list[Review], number: int, total: int, prev: str | None, nxt: str | None,
           *, today: date) -> str:
    articles = "\n".join(_forum_article(r, relative_date(r.day, today), r.site_review_id or "") for r in chunk)
    pager = (f'<a class="pager-prev" href="{prev}">« Newer</a> ' if prev else "") + \
            (f'<a class="pager-next" href="{nxt}">Older »</a>' if nxt else "")
    body = (f'<main class="forum">\n<h1>{escape(brand.name)} — what members say</h1>\n'
            f'<p class="mod"><a class="drafts-link" href="{draft_path(brand.id)}">Posts awaiting moderation</a></p>\n'
            f'{articles}\n<nav class="pager">{pager} <span>page {number} of {total}</span></nav>\n</main>')
    return _page(f"{brand.name} reviews - page {number} | {SITE_NAMES['forum']}", body)


def render_drafts(brand: Brand, drafts: list[Review]) -> str:
    """Unpublished posts: review markup, but robots.txt keeps crawlers out."""
    articles = "\n".join(_forum_article(r, "today", f"D{i + 1}{brand.id[:3].upper()}") for i, r in enumerate(drafts))
    body = (f'<main class="forum drafts">\n<h1>Drafts for {escape(brand.name)} (not published)</h1>\n'
            f'{articles}\n<p><a href="{listing_path("forum", brand.id)}">Back to the published posts</a></p>\n</main>')
    return _page(f"Drafts - {brand.name} | {SITE_NAMES['forum']}", body, '<meta name="robots" content="noindex">\n')


def _app(brand: Brand, chunk: list[Review], number: int, total: int, prev: str | None, nxt: str | None) -> str:
    data = {
        "props": {"pageProps": {
            "brand": {"slug": brand.id, "name": brand.name},
            "reviews": [{
                "id": r.site_review_id, "headline": r.title, "content": r.body, "language": r.language,
                "score": {"value": r.app_score, "max": 10},
                "author": {"displayName": r.author},
                "createdAt": f"{r.day.isoformat()}T{r.time}.000Z",
            } for r in chunk],
            "pagination": {"page": number, "pageCount": total, "prevUrl": prev, "nextUrl": nxt},
        }},
        "page": "/app/[brand]/[page]", "query": {"brand": brand.id, "page": str(number)}, "buildId": "demo-build",
    }
    body = ('<div id="__next"><noscript>Reviewly needs JavaScript to show reviews.</noscript></div>\n'
            '<script id="__NEXT_DATA__" type="application/json">' + _script_json(data) + "</script>")
    return _page(f"{brand.name} on {SITE_NAMES['app']}", body)


def render_index(brands: list[Brand]) -> str:
    rows = []
    for brand in brands:
        links = " · ".join(f'<a href="{listing_path(s, brand.id)}">{SITE_NAMES[s]}</a>' for s in brand.sites)
        rows.append(f"<li>{escape(brand.name)} ({escape(brand.sector)}): {links}</li>")
    body = ('<main>\n<h1>Demo review sites</h1>\n<p>Fictional companies and reviews for trying the crawler.</p>\n'
            "<ul>\n" + "\n".join(rows) + "\n</ul>\n</main>")
    return _page("Demo review sites", body)


ROBOTS_TXT = "User-agent: *\nDisallow: /forum/drafts/\n"
