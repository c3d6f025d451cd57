"""`reputation demo`: the whole job on the embedded demo site, end to end."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from reputation.commands.common import is_quiet, say
from reputation.demo import run_demo
from reputation.demo_report import print_vendor_table
from storage.lock import writer_lock


@click.command()
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the generated site, the registry and the scorecards.")
@click.option("--no-score", is_flag=True, help="Stop after the crawl.")
@click.option("--no-discover", is_flag=True,
              help="Skip discovering engagements on the demo vendors' own sites (it loads a sentence model).")
@click.pass_context
def demo(ctx: click.Context, out_dir: str, no_score: bool, no_discover: bool) -> None:
    """Generate the demo review site, serve it on 127.0.0.1, crawl, score, roll up, write scorecards.

    With -q it prints nothing but errors: the results are in the database and the output folder.

    \b
    Examples:
      reputation demo
      reputation demo --out demo-output --no-score --no-discover   # the crawl alone, in seconds
      reputation -q demo                  # silent; then open demo-output/scorecards/index.html
    """
    db_path = ctx.find_root().obj["db_path"]
    quiet = is_quiet(ctx)
    with writer_lock(db_path, purpose="reputation demo"):
        result = run_demo(db_path, Path(out_dir), score=not no_score, rollup=not no_score,
                          scorecards=not no_score, discover=not no_discover, say=partial(say, ctx),
                          progress=not quiet)
    if quiet:
        return
    if result.rollup is not None:
        print_vendor_table(db_path)
    if result.scorecards:
        click.echo(f"scorecards: {len(result.scorecards)} files in {Path(out_dir) / 'scorecards'}")
    click.echo("\nOpen the results:")
    click.echo(f"  sqlite3 -cmd '.timeout 5000' {db_path} 'SELECT * FROM latest_vendor_reputation'")
    click.echo(f"  datasette {db_path} -m {result.metadata}")
    click.echo(f"  python -c \"from reputation.api import vendor_table; print(vendor_table('{db_path}'))\"")
