"""`reputation init` and `reputation vendors load`."""

from __future__ import annotations

from typing import Any

import click

from crawler.extractors.platforms.urls import normalise_domain, suggest_sources
from reputation.commands.common import echo_csv, echo_json, is_quiet, one_format, open_db, output_options, say
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
    say(ctx, f"{ctx.find_root().obj['db_path']}: schema version {schema_version(db)}")


@click.group()
def vendors() -> None:
    """Manage the registry of vendors, brands, engagements and sources."""


@vendors.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def load(ctx: click.Context, file: str) -> None:
    """Validate FILE and upsert it; a file with any mistake changes nothing.

    A brand with ``sources: suggest`` gets no source: its suggested review pages are printed
    instead, as registry YAML to check and paste (nothing is fetched). Those are data the file
    asked for, so -q prints them too; it silences only the summary line.
    """
    registry = read_registry(file)  # before opening the database: a bad file must not even create it
    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation vendors load"):
        db = open_db(ctx)
        write_registry(db, registry)
    summary = summarize(registry)
    say(
        ctx,
        f"loaded {summary.vendors} vendors, {summary.brands} brands, "
        f"{summary.engagements} engagements, {summary.sources} sources from {file}",
    )
    for index, brand in enumerate(registry.suggest_sources):
        if index or not is_quiet(ctx):  # a blank line between blocks, and after the summary when shown
            click.echo()
        click.echo(_suggestions(brand))


def _suggestions(brand: Brand) -> str:
    """The review pages that follow from the brand's website (the registry checked it has a domain)."""
    assert brand.website is not None
    domain = normalise_domain(brand.website)
    found, needs = suggest_sources(domain)
    note = f"# brand {brand.id}: 'sources: suggest' loaded no source; replace it with the lines you keep below."
    return note + "\n" + suggestions_yaml(found, needs, brand.id, domain)


LIST_COLUMNS = ("vendor_id", "vendor_name", "brand_id", "start_date", "end_date", "scope")


@vendors.command("list")
@output_options(csv=True)
@click.pass_context
def list_vendors(ctx: click.Context, as_json: bool, as_csv: bool) -> None:
    """Show the vendors and the brands they serve (one row per engagement; tab-separated, with a header).

    --json gives one object per vendor with its engagements (end_date null: still open);
    --csv one row per engagement.

    \b
    Examples:
      reputation vendors list
      reputation vendors list --json | jq '.[].id'
      reputation vendors list --csv > engagements.csv
    """
    one_format(as_json, as_csv)
    db = open_db(ctx)
    rows = [
        dict(zip(LIST_COLUMNS, row, strict=True))
        for row in db.execute(
            "SELECT v.id, v.name, e.brand_id, e.start_date, e.end_date, e.scope "
            "FROM vendors v LEFT JOIN engagements e ON e.vendor_id = v.id ORDER BY v.id, e.start_date, e.brand_id"
        ).fetchall()
    ]
    if as_csv:
        echo_csv(rows, LIST_COLUMNS)
        return
    if as_json:
        by_vendor: dict[str, dict[str, Any]] = {}
        for row in rows:
            vendor = by_vendor.setdefault(row["vendor_id"], {"id": row["vendor_id"], "name": row["vendor_name"],
                                                             "engagements": []})
            if row["brand_id"] is not None:
                vendor["engagements"].append({k: row[k] for k in ("brand_id", "start_date", "end_date", "scope")})
        echo_json(list(by_vendor.values()))
        return
    click.echo("vendor\tname\tbrand\tperiod\tscope")
    for row in rows:
        brand = row["brand_id"]
        period = f"{row['start_date'] or ''}..{row['end_date'] or 'open'}" if brand else ""
        click.echo(f"{row['vendor_id']}\t{row['vendor_name']}\t{brand or '-'}\t{period}\t{row['scope'] or ''}")


# Discovery: engagement candidates proposed from vendors' own pages, decided by an analyst.
from reputation.commands import discover as _discover  # noqa: E402 - attached after the group exists

for _command in (_discover.discover, _discover.candidates, _discover.accept, _discover.reject):
    vendors.add_command(_command)
