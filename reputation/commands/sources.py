"""`reputation sources suggest`: propose a brand's review-page URLs on the built-in platforms.

Nothing is fetched: the URLs follow from the brand's website domain and app ids, and are
printed as registry ``sources:`` lines for the analyst to open, check and paste.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from crawler.extractors.platforms.urls import NeedsPage, Suggestion, normalise_domain, suggest_sources
from reputation.commands.common import open_db
from storage.errors import BadValueError, NotFoundError


@click.group()
def sources() -> None:
    """Where brands' reviews live.

    \b
    Examples:
      reputation sources suggest northwind-air
      reputation sources suggest example.com --app-id com.example.app --json
    """


def _brand_website(ctx: click.Context, brand: str) -> tuple[bool, str | None]:
    """(is a brand id in the database, its website); a missing database file knows no brands."""
    path = ctx.find_root().obj["db_path"]
    if path != ":memory:" and not Path(path).exists():
        return False, None
    db = open_db(ctx, create=False)
    try:
        row = db.execute("SELECT website FROM brands WHERE id = ?", [brand]).fetchone()
    finally:
        db.close()
    return (row is not None, row[0] if row else None)


def _resolve(ctx: click.Context, brand: str, domain: str | None, needs_domain: bool) -> tuple[str | None, str | None]:
    """(brand id or None, domain or None) for BRAND_OR_DOMAIN and --domain."""
    try:
        is_brand, website = _brand_website(ctx, brand)
        if is_brand:
            chosen = domain or website
            if chosen is None and needs_domain:
                raise BadValueError(f"brand {brand!r} has no website in the database; pass --domain or an app id")
            if chosen is None:
                return brand, None
            try:
                return brand, normalise_domain(chosen)
            except ValueError as exc:
                source = "--domain" if domain else f"brand {brand!r}'s website"
                raise BadValueError(f"{source}: {exc}") from None
        try:
            own = normalise_domain(brand)
        except ValueError:
            db_path = ctx.find_root().obj["db_path"]
            raise NotFoundError(f"{brand!r} is neither a brand id in {db_path} nor a domain name") from None
        if domain is not None and normalise_domain(domain) != own:
            raise BadValueError(f"--domain {domain} differs from {brand}: give the domain once")
        return None, own
    except ValueError as exc:
        raise BadValueError(str(exc)) from exc


def suggestions_yaml(found: list[Suggestion], needs: list[NeedsPage], brand: str | None, domain: str | None) -> str:
    """Suggestions as registry ``sources:`` YAML to paste (also printed by ``vendors load`` for ``sources: suggest``)."""
    subject = f"brand {brand}" if brand else f"domain {domain}"
    lines = [
        f"# Review pages for {subject}. Nothing was fetched: open each URL and keep only those",
        "# that show this company's own reviews, then paste them under the brand in the registry.",
    ]
    if found:
        entries = [{"url": s.url, "layout": s.layout} for s in found]
        body = yaml.safe_dump(entries, sort_keys=False, default_flow_style=False, width=10_000, allow_unicode=True)
        lines += ["sources:", *("  " + line for line in body.splitlines())]
    else:
        lines.append("sources: []")
    if needs:
        lines.append("# Not derivable from a domain or app id; find the page and add it yourself:")
        lines += [f"#   {n.platform}: {n.why}; e.g. {n.example}" for n in needs]
    return "\n".join(lines)


def _json(found: list[Suggestion], needs: list[NeedsPage], brand: str | None, domain: str | None) -> str:
    data: dict[str, Any] = {
        "brand": brand,
        "domain": domain,
        "sources": [
            {"platform": s.platform, "url": s.url, "layout": s.layout, "derived_from": s.derived_from} for s in found
        ],
        "needs_page_url": [{"platform": n.platform, "why": n.why, "example": n.example} for n in needs],
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


@sources.command()
@click.argument("brand_or_domain")
@click.option("--domain", default=None, help="The brand's website domain (default: the brand's website).")
@click.option("--app-id", "app_ids", multiple=True, metavar="ID", help="Google Play app id, e.g. com.example.app; repeatable.")
@click.option("--apple-id", "apple_ids", multiple=True, metavar="DIGITS", help="App Store app id; repeatable.")
@click.option("--country", default="us", show_default=True, help="App Store country whose reviews to read.")
@click.option("--lang", "language", default="en", show_default=True, help="Google Play interface language (hl).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of registry YAML.")
@click.pass_context
def suggest(
    ctx: click.Context,
    brand_or_domain: str,
    domain: str | None,
    app_ids: tuple[str, ...],
    apple_ids: tuple[str, ...],
    country: str,
    language: str,
    as_json: bool,
) -> None:
    """Review-page URLs for BRAND_OR_DOMAIN (a brand id in the database, or a website domain).

    Trustpilot follows from the domain, Google Play and the App Store from app ids; Yelp,
    Amazon, TripAdvisor and ConsumerAffairs pages must be found by hand and are listed as such.

    \b
    Examples:
      reputation sources suggest northwind-air
      reputation sources suggest example.com --app-id com.example.app --apple-id 123456789
      reputation sources suggest example.com --json
    """
    brand, found_domain = _resolve(ctx, brand_or_domain, domain, needs_domain=not (app_ids or apple_ids))
    try:
        found, needs = suggest_sources(found_domain, app_ids, apple_ids, country=country, language=language)
    except ValueError as exc:
        raise BadValueError(str(exc)) from exc
    render = _json if as_json else suggestions_yaml
    click.echo(render(found, needs, brand, found_domain))
