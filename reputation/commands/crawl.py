"""`reputation crawl`: fetch new reviews for the selected brands and print what changed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from crawler.launcher import CrawlError, run_crawl
from reputation import logs
from reputation.commands.common import (
    crawl_progress,
    echo_json,
    is_quiet,
    output_options,
    resolve_settings,
)
from storage.errors import ReputationError
from storage.lock import writer_lock
from storage.runlog import RunRow


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


def summary(run: RunRow) -> str:
    """A few lines a person (or a cron mail) can read at a glance."""
    detail = run["detail"]
    lines = [
        f"crawl run {run['id']}: {run['status']}",
        f"  pages {run['pages']}; reviews new {run['items_new']}, updated {run['items_updated']}, "
        f"unchanged {run['items_unchanged']}",
        f"  dropped {run['items_dropped']}: {_counts(run['dropped_by_reason'])}",
        f"  errors {run['errors']}: {_counts(run['errors_by_reason'])}{_layout_reasons(detail)}",
    ]
    for key in ("skipped", "stopped", "counted"):
        counts = detail.get(key) or {}
        if counts:
            lines.append(f"  {key}: {_counts(counts)}")
    if detail.get("note"):
        lines.append(f"  {detail['note']}")
    lines += _source_lines(detail.get("sources") or {})
    lines += _crawl_lines(detail)
    return "\n".join(lines)


def _layout_reasons(detail: dict[str, Any]) -> str:
    """Why layouts failed (the crawl's run-log detail), so a layout_error count is not a riddle."""
    reasons: dict[str, str] = detail.get("layout_errors") or {}
    if not reasons:
        return ""
    return " (" + "; ".join(f"layout {name!r}: {why}" for name, why in sorted(reasons.items())) + ")"


def _crawl_lines(detail: dict[str, Any]) -> list[str]:
    """Which kind of crawl each source got, its pages, and how it ended (crawler.removals.SourceCrawl)."""
    crawls: dict[str, dict[str, Any]] = detail.get("crawls") or {}
    if not crawls:
        return []
    lines = [
        f"  crawls: {_counts(detail.get('crawl_kinds') or {})}; pages saved {detail.get('pages_saved', 0)}; "
        f"reviews marked removed {detail.get('removed', 0)}, back on their listing {detail.get('restored', 0)}"
    ]
    for source, crawl in sorted(crawls.items()):
        line = f"    {crawl.get('kind')} {source}: pages {crawl.get('pages', 0)}"
        stopped = crawl.get("stopped")
        if crawl.get("kind") == "incremental":
            if stopped:
                line += f", stopped early ({stopped})"
            if crawl.get("pages_saved") is not None:
                line += f", about {crawl['pages_saved']} pages saved"
        elif crawl.get("complete"):
            line += f", whole listing: marked removed {crawl.get('removed', 0)}"
            if crawl.get("removal_skipped"):
                line += f" (not marked: {crawl['removal_skipped']})"
        else:
            line += f", not the whole listing ({crawl.get('not_complete')}): none marked removed"
        if crawl.get("restored"):
            line += f", back on the listing {crawl['restored']}"
        lines.append(line)
    return lines


def _source_lines(outcomes: dict[str, str]) -> list[str]:
    """How many sources ended each way, then every source that brought nothing, with its reason."""
    if not outcomes:
        return []
    kinds = Counter(str(outcome).partition(":")[0] for outcome in outcomes.values())
    lines = [f"  sources {len(outcomes)}: {_counts(dict(kinds))}"]
    for source, outcome in sorted(outcomes.items()):
        kind, _, reason = str(outcome).partition(":")
        if kind not in ("ok", "partial"):
            lines.append(f"    {kind} {source}" + (f": {reason.strip()}" if reason.strip() else ""))
    return lines


@click.command()
@click.option(
    "--vendor", "vendors", multiple=True, metavar="VENDOR", help="Crawl the brands this vendor serves."
)
@click.option("--brand", "brands", multiple=True, metavar="BRAND", help="Crawl this brand's sources.")
@click.option(
    "--due-only",
    is_flag=True,
    help="Skip sources crawled within their crawl interval (within the hour for one whose last crawl was not ok).",
)
@click.option(
    "--full",
    is_flag=True,
    help="Walk every listing to its end (otherwise a source crawled in full within its "
    "full_crawl_interval_hours gets an incremental crawl: newest reviews first, up to stored ones).",
)
@click.option(
    "-s",
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Scrapy setting, e.g. -s DOWNLOAD_TIMEOUT=10 (over [crawl] settings in the config file).",
)
@click.option(
    "--log-file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Append the crawl's Scrapy log here [default: reputation-logs/crawl-<UTC time>.log beside the "
    "database, kept only when the crawl fails].",
)
@click.option(
    "--redis", "redis_url", default=None, metavar="URL",
    help="Enqueue the sources on the shared frontier (redis://HOST:PORT/DB) for `reputation worker crawl`.",
)
@output_options(csv=False)
@click.pass_context
def crawl(
    ctx: click.Context,
    vendors: tuple[str, ...],
    brands: tuple[str, ...],
    due_only: bool,
    full: bool,
    settings: tuple[str, ...],
    log_file: str | None,
    redis_url: str | None,
    as_json: bool,
) -> None:
    """Crawl review sources (all of them unless --vendor / --brand pick some).

    Shows pages, reviews and errors per source while it runs (a live table at a terminal or
    with -v; a plain line every 30 s otherwise; nothing with -q or --json), then what changed.
    The Scrapy log goes to a log file, named in the one-line message when the crawl fails.

    \b
    Examples:
      reputation crawl
      reputation crawl --vendor brightline --brand northwind-air
      reputation crawl --due-only -q          # cron: silent unless it fails
      reputation crawl -s DOWNLOAD_DELAY=0.5 --json | jq .pages
      reputation crawl --full --log-file crawl.log
    """
    db_path = ctx.find_root().obj["db_path"]
    configured = resolve_settings(ctx, "crawl", None, {"full": True if full else None})
    if redis_url:  # distributed mode: the crawl workers fetch; nothing is crawled here
        from reputation.distributed.enqueue import enqueue_due_at  # loads redis and scrapy-redis: only here

        done = enqueue_due_at(db_path, redis_url, vendors=_names(vendors), brands=_names(brands),
                              due_only=due_only, full=bool(configured["full"]))  # fmt: skip
        if as_json:
            echo_json(vars(done))
        elif not is_quiet(ctx):
            click.echo(done.line())
        return
    overrides = {**configured["settings"], **parse_settings(settings)}
    keep_log = log_file is not None
    log_path = logs.open_log_file(Path(log_file) if log_file else logs.default_log_file(db_path, "crawl"))
    try:
        with writer_lock(db_path, purpose="reputation crawl"), crawl_progress(ctx, machine_output=as_json) as shown:
            run = run_crawl(  # the crawl child inherits the lock; none starts when nothing is due
                db_path,
                vendors=_names(vendors),
                brands=_names(brands),
                due_only=due_only,
                full=bool(configured["full"]),
                settings=overrides,
                log_path=log_path,
                progress=shown,
            )
    except CrawlError as exc:
        if exc.run is not None and exc.run["finished_at"] and exc.run["status"] != "running":
            if as_json:
                echo_json(exc.run)
            elif not is_quiet(ctx):
                click.echo(summary(exc.run), err=True)
        raise ReputationError(f"{exc.headline}; the crawl's log is in {log_path}") from None
    except BaseException:
        if not keep_log:
            logs.discard(log_path)
        raise
    if not keep_log:
        logs.discard(log_path)
    if as_json:
        echo_json(run)
    elif not is_quiet(ctx):
        click.echo(summary(run))
