"""`reputation evaluate FILE`: model quality on a labelled CSV/TSV, next to VADER."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from reputation.commands.common import model_option


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@model_option
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--no-baseline", is_flag=True, help="Skip the VADER baseline.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
def evaluate(
    file: str,
    model: str | None,
    text_column: str,
    label_column: str,
    batch_size: int,
    no_baseline: bool,
    as_json: bool,
) -> None:
    """Accuracy, macro-F1 and calibration error (15 bins) of the model on FILE."""
    from reputation.scoring.evaluation import evaluate_file  # imports torch: only when evaluating

    report = evaluate_file(
        file,
        model=model,
        text_column=text_column,
        label_column=label_column,
        batch_size=batch_size,
        baseline=not no_baseline,
    )
    if as_json:
        payload = _without_nan(asdict(report))
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    counts = ", ".join(f"{label} {n}" for label, n in report.label_counts.items())
    table = Table(title=f"{report.path} — {report.n} texts ({counts})")
    for column in ("system", "revision", "accuracy", "macro-F1", "ECE (15 bins)", "pos/neg accuracy"):
        table.add_column(column, justify="left" if column in ("system", "revision") else "right")
    for result in report.results:
        table.add_row(
            result.name,
            result.revision,
            _fmt(result.accuracy),
            _fmt(result.macro_f1),
            _fmt(result.ece),
            f"{_fmt(result.binary_accuracy)} (n={result.n_binary})",
        )
    console = Console()
    if not console.is_terminal:  # pipes and logs: wide enough for full model ids
        console = Console(width=140)
    console.print(table)


def _without_nan(value: Any) -> Any:
    """JSON has no NaN: undefined metrics (e.g. no pos/neg rows) become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nan(item) for item in value]
    return value


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"
