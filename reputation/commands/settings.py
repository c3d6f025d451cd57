"""`reputation settings`: every setting's value and where it came from; forget a stored one."""

from __future__ import annotations

import json

import click

from reputation.commands.common import config, echo_csv, echo_json, one_format, open_db, output_options, say
from reputation.settings import SECTIONS, resolve, stored_settings, unset_setting
from storage.lock import writer_lock

COLUMNS = ("name", "value", "origin", "help")


@click.group(invoke_without_command=True)
@output_options(csv=True)
@click.pass_context
def settings(ctx: click.Context, as_json: bool, as_csv: bool) -> None:
    """Show each setting, its value and its origin (command line > config file > database > default).

    \b
    Examples:
      reputation settings
      reputation --config ops.toml settings --json
      reputation settings unset rollup.prior_strength
    """
    if ctx.invoked_subcommand is not None:
        return
    one_format(as_json, as_csv)
    path, content = config(ctx)
    db = open_db(ctx)
    try:
        stored = stored_settings(db)
    finally:
        db.close()
    rows = []
    for section, known in SECTIONS.items():
        chosen = resolve(section, config=content, config_file=path, stored=stored)
        for key, setting in known.items():
            rows.append({"name": setting.name, "value": chosen[key], "origin": chosen.origins[key],
                         "help": setting.help})
    if as_json:
        echo_json({"config_file": str(path) if path else None, "settings": rows})
    elif as_csv:
        echo_csv(rows, COLUMNS)
    else:
        click.echo(f"config file: {path or 'none'}")
        for row in rows:
            click.echo(f"{row['name']} = {json.dumps(row['value'])}\t({row['origin']})")


@settings.command("unset")
@click.argument("name")
@click.pass_context
def unset(ctx: click.Context, name: str) -> None:
    """Forget the value of NAME stored in the database (its default, or the config file's, applies again).

    \b
    Examples:
      reputation settings unset rollup.half_life_days
      reputation settings unset score.model
    """
    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation settings unset"):
        db = open_db(ctx)
        try:
            found = unset_setting(db, name)
        finally:
            db.close()
    say(ctx, f"{name}: stored value removed" if found else f"{name}: nothing stored")
