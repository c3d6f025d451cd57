"""Helpers shared by the subcommands."""

from __future__ import annotations

import click
import sqlite_utils

from storage.database import connect


def open_db(ctx: click.Context, *, create: bool = True) -> sqlite_utils.Database:
    """The database named by --db / $REPUTATION_DB, upgraded to the current schema."""
    path = ctx.find_root().obj["db_path"]
    try:
        return connect(path, create=create)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc


# The same --model option wherever a command loads a sentiment model.
model_option = click.option(
    "--model",
    "model",
    default=None,
    metavar="NAME_OR_DIR",
    help="Model directory or cached Hugging Face id (default: the bundled model).",
)
