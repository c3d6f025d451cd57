"""`reputation scorecard`: write vendor scorecards (HTML, CSV, JSON) from the roll-ups."""

from __future__ import annotations

import click

from reputation.commands.common import open_db
from reputation.scorecards.content import build_scorecards
from reputation.scorecards.render import FORMATS, write_scorecards


@click.command()
@click.argument("vendors", nargs=-1)
@click.option("--all", "all_vendors", is_flag=True, help="Every vendor in the roll-ups.")
@click.option(
    "--format",
    "formats",
    type=click.Choice(FORMATS),
    multiple=True,
    default=("html",),
    show_default=True,
    help="Output format; repeat for several.",
)
@click.option(
    "--out",
    "out_dir",
    default="scorecards",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the reports (created if missing).",
)
@click.option("--png", is_flag=True, help="Also write each trend chart as a PNG file.")
@click.pass_context
def scorecard(
    ctx: click.Context, vendors: tuple[str, ...], all_vendors: bool, formats: tuple[str, ...], out_dir: str, png: bool
) -> None:
    """Scorecards for VENDOR ids (or --all): scores with intervals, rank, trend, brands, switches, excerpts."""
    if bool(vendors) == all_vendors:
        raise click.UsageError("name one or more VENDOR ids, or pass --all")
    db = open_db(ctx, create=False)
    cards = build_scorecards(db, list(vendors) or None)
    for path in write_scorecards(cards, out_dir, formats, png=png):
        click.echo(str(path))
