"""`reputation init` and `reputation vendors load`."""

from __future__ import annotations

import click

from crawler.extractors.platforms.urls import normalise_domain, suggest_sources
from reputation.commands.common import open_db
from reputation.commands.sources import suggestions_yaml
from reputation.registry.entries import Brand
from reputation.registry.loader import read_registry, summarize, write_registry
from storage.database import schema_version
from storage.lock import writer_lock


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the database (or upgrade it to the current schema)."""
    db = open_db(ctx)
    click.echo(f"{ctx.find_root().obj['db_path']}: schema version {schema_version(db)}")


@click.group()
def vendors() -> None:
    """Manage the registry of vendors, brands, engagements and sources."""


@vendors.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def load(ctx: click.Context, file: str) -> None:
    """Validate FILE and upsert it; a file with any mistake changes nothing.

    A brand with ``sources: suggest`` gets no source: its suggested review pages are printed
    instead, as registry YAML to check and paste (nothing is fetched).
    """
    registry = read_registry(file)  # before opening the database: a bad file must not even create it
    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation vendors load"):
        db = open_db(ctx)
        write_registry(db, registry)
    summary = summarize(registry)
    click.echo(
        f"loaded {summary.vendors} vendors, {summary.brands} brands, "
        f"{summary.engagements} engagements, {summary.sources} sources from {file}"
    )
    for brand in registry.suggest_sources:
        click.echo()
        click.echo(_suggestions(brand))


def _suggestions(brand: Brand) -> str:
    """The review pages that follow from the brand's website (the registry checked it has a domain)."""
    assert brand.website is not None
    domain = normalise_domain(brand.website)
    found, needs = suggest_sources(domain)
    note = f"# brand {brand.id}: 'sources: suggest' loaded no source; replace it with the lines you keep below."
    return note + "\n" + suggestions_yaml(found, needs, brand.id, domain)


@vendors.command("list")
@click.pass_context
def list_vendors(ctx: click.Context) -> None:
    """Show the vendors and the brands they serve."""
    db = open_db(ctx)
    rows = db.execute(
        "SELECT v.id, v.name, e.brand_id, e.start_date, COALESCE(e.end_date, 'open'), e.scope "
        "FROM vendors v LEFT JOIN engagements e ON e.vendor_id = v.id ORDER BY v.id, e.start_date"
    ).fetchall()
    for vid, name, brand, start, end, scope in rows:
        click.echo(f"{vid}\t{name}\t{brand or '-'}\t{start or ''}..{end if brand else ''}\t{scope or ''}")
