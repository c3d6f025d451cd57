"""`reputation crawl`: fetch new reviews for the selected brands and print what changed."""

from __future__ import annotations

from typing import Any

import click

from crawler.launcher import CrawlError, run_crawl


def parse_settings(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("KEY=VALUE", ...)`` -> ``{"KEY": "VALUE"}``; a pair without "=" is a usage error."""
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-s/--set")
        settings[key.strip()] = value
    return settings


def _names(values: tuple[str, ...]) -> list[str]:
    """``--brand a,b --brand c`` -> ``["a", "b", "c"]``."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())) or "none"


def summary(run: dict[str, Any]) -> str:
    """A few lines a person (or a cron mail) can read at a glance."""
    detail = run.get("detail") or {}
    lines = [
        f"crawl run {run['id']}: {run['status']}",
        f"  pages {run['pages']}; reviews new {run['items_new']}, updated {run['items_updated']}, "
        f"unchanged {run['items_unchanged']}",
        f"  dropped {run['items_dropped']}: {_counts(run['dropped_by_reason'])}",
        f"  errors {run['errors']}: {_counts(run['errors_by_reason'])}",
    ]
    skipped = detail.get("skipped") or {}
    if skipped:
        lines.append(f"  skipped: {_counts(skipped)}")
    return "\n".join(lines)


@click.command()
@click.option(
    "--vendor", "vendors", multiple=True, metavar="VENDOR", help="Crawl the brands this vendor serves."
)
@click.option("--brand", "brands", multiple=True, metavar="BRAND", help="Crawl this brand's sources.")
@click.option("--due-only", is_flag=True, help="Skip sources crawled within their crawl interval.")
@click.option(
    "-s",
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Scrapy setting, e.g. -s DOWNLOAD_TIMEOUT=10.",
)
@click.pass_context
def crawl(
    ctx: click.Context,
    vendors: tuple[str, ...],
    brands: tuple[str, ...],
    due_only: bool,
    settings: tuple[str, ...],
) -> None:
    """Crawl review sources (all of them unless --vendor / --brand pick some)."""
    overrides = parse_settings(settings)
    db_path = ctx.find_root().obj["db_path"]
    try:
        run = run_crawl(
            db_path, vendors=_names(vendors), brands=_names(brands), due_only=due_only, settings=overrides
        )
    except CrawlError as exc:
        if exc.run is not None and exc.run.get("finished_at") and exc.run.get("status") != "running":
            click.echo(summary(exc.run), err=True)
        raise
    click.echo(summary(run))
