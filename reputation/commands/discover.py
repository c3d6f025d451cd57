"""`reputation vendors discover | candidates | accept | reject`: proposed engagements, decided by an analyst."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from reputation.commands.common import is_quiet, open_db, say
from storage.errors import BadValueError
from storage.lock import writer_lock


@click.command("discover")
@click.argument("vendor", required=False)
@click.option("--all", "all_vendors", is_flag=True, help="Every vendor in the registry.")
@click.option("--url", "urls", multiple=True, metavar="URL", help="A news or press page to read too (repeatable).")
@click.option("--sentence-model", default=None, metavar="NAME",
              help="'keyword' for the interim cue matcher; default: the project's relation model.")
@click.option("--timeout", type=float, default=None, help="Stop the crawl after this many seconds.")
@click.pass_context
def discover(ctx: click.Context, vendor: str | None, all_vendors: bool, urls: tuple[str, ...],
             sentence_model: str | None, timeout: float | None) -> None:
    """Crawl VENDOR's site (or --all vendors') and store engagement candidates to review."""
    from reputation.engagements.discover import discover as run  # Scrapy, torch: on use
    from reputation.engagements.discover import load_sentence_model

    if bool(vendor) == all_vendors:
        raise BadValueError("name one VENDOR or give --all")
    db_path = ctx.find_root().obj["db_path"]
    open_db(ctx)  # creates or upgrades the file before the crawl reads it
    model, name = load_sentence_model(sentence_model)
    say(ctx, f"sentence model: {name}")
    with writer_lock(db_path, purpose="reputation vendors discover"):
        results = run(db_path, [vendor] if vendor else None, urls=urls, model=model, timeout=timeout)
    for result in results:
        if result.status == "ok":
            say(ctx, result.line())
        else:  # a site that failed is worth a line even with -q (on stderr then)
            click.echo(result.line(), err=is_quiet(ctx))
    if results and all(r.status != "ok" for r in results):
        ctx.exit(1)


@click.command("candidates")
@click.option("--vendor", default=None, help="Only this vendor's candidates.")
@click.option("--status", type=click.Choice(["proposed", "accepted", "rejected"]), default=None)
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@click.option("--export", "export_file", type=click.Path(dir_okay=False), default=None,
              help="Write the accepted engagements as a registry YAML fragment to this file.")
@click.pass_context
def candidates(ctx: click.Context, vendor: str | None, status: str | None, min_confidence: float, as_json: bool,
               export_file: str | None) -> None:
    """List engagement candidates (id, vendor, brand, relation, date, scope, confidence, evidence, URL)."""
    from reputation.engagements.export import export_accepted
    from reputation.engagements.store import list_candidates

    db = open_db(ctx)
    if export_file:
        count = export_accepted(db, Path(export_file), vendor=vendor)
        say(ctx, f"wrote {count} engagements to {export_file}")
        return
    rows = list_candidates(db, vendor=vendor, status=status, min_confidence=min_confidence)
    hidden = len(list_candidates(db, vendor=vendor, status=status)) - len(rows)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False))
        return
    for r in rows:
        brand = r.brand_id or f"{r.brand_name} (unknown brand)"
        click.echo(f"{r.id}\t{r.status}\t{r.vendor_id}\t{brand}\t{r.relation}\t{r.event_date or '-'}\t{r.scope}\t"
                   f"{r.confidence:.2f}\t{r.evidence}\t{r.url}")
    if hidden:
        say(ctx, f"({hidden} below confidence {min_confidence} not shown; --min-confidence 0 lists them)")


@click.command("accept")
@click.argument("candidate_id", type=int)
@click.option("--brand-name", default=None, help="For a brand not in the registry: add it under this name.")
@click.option("--brand-id", default=None, help="Id of the new brand (default: a slug of --brand-name).")
@click.option("--brand-website", default=None, help="Website of the new brand.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The date to use when the candidate has none (an undated client logo).")
@click.pass_context
def accept(ctx: click.Context, candidate_id: int, brand_name: str | None, brand_id: str | None,
           brand_website: str | None, start: datetime | None) -> None:
    """Accept a candidate: write its engagement (validated like a registry line) with the evidence URL."""
    from reputation.engagements.decide import accept as do_accept

    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation vendors accept"):
        decision = do_accept(open_db(ctx), candidate_id, brand_name=brand_name, brand_id=brand_id,
                             brand_website=brand_website, start=start.date() if start else None)
    say(ctx, decision.message)


@click.command("reject")
@click.argument("candidate_id", type=int)
@click.pass_context
def reject(ctx: click.Context, candidate_id: int) -> None:
    """Reject a candidate; discovery will not propose it again."""
    from reputation.engagements.decide import reject as do_reject

    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation vendors reject"):
        decision = do_reject(open_db(ctx), candidate_id)
    say(ctx, decision.message)
