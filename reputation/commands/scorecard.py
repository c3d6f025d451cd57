"""`reputation scorecard`: write vendor scorecards (HTML, CSV, JSON) from the roll-ups."""

from __future__ import annotations

import click

from reputation.commands.common import is_quiet, open_db, resolve_settings
from reputation.scorecards.content import build_scorecards
from reputation.scorecards.overview import build_overview
from reputation.scorecards.render import FORMATS, write_scorecards


@click.command()
@click.argument("vendors", nargs=-1)
@click.option("--all", "all_vendors", is_flag=True, help="Every vendor in the roll-ups.")
@click.option(
    "--format",
    "formats",
    type=click.Choice(FORMATS),
    multiple=True,
    default=(),
    help="Output format; repeat for several [default: [scorecard] formats in the config file, else html].",
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder for the reports, created if missing [default: [scorecard] out, else scorecards].",
)
@click.option("--png", is_flag=True, default=None, help="Also write each trend chart as a PNG file.")
@click.pass_context
def scorecard(
    ctx: click.Context,
    vendors: tuple[str, ...],
    all_vendors: bool,
    formats: tuple[str, ...],
    out_dir: str | None,
    png: bool | None,
) -> None:
    """Scorecards for VENDOR ids (or --all): scores with intervals, rank, trend, brands, switches, excerpts.

    Prints the path of each file written (files are readable by all: 0644).

    \b
    Examples:
      reputation scorecard --all                       # every card and the overview index.html
      reputation scorecard brightline --format html --format json --out site/
      reputation scorecard --all --format csv --png
    """
    if bool(vendors) == all_vendors:
        raise click.UsageError("name one or more VENDOR ids, or pass --all")
    chosen = resolve_settings(ctx, "scorecard", None, {"out": out_dir, "formats": list(formats) or None,
                                                        "png": png or None})
    out_dir, formats, png = chosen["out"], tuple(chosen["formats"]), bool(chosen["png"])
    db = open_db(ctx, create=False)
    cards = build_scorecards(db, list(vendors) or None)
    overview = build_overview(db) if all_vendors else None  # index.html only when every vendor is written
    for path in write_scorecards(cards, out_dir, formats, png=png, overview=overview):
        if not is_quiet(ctx):
            click.echo(str(path))
