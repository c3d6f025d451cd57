"""`reputation evaluate FILE`: model quality on a labelled CSV/TSV, next to VADER."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from reputation.commands.common import is_quiet, model_option

if TYPE_CHECKING:
    from reputation.scoring.evaluation import SystemResult  # torch: only when evaluating


EXAMPLES = """\b
Examples:
  reputation evaluate labelled.csv
  reputation evaluate reviews.tsv --text-column review --label-column stars --json
  reputation evaluate sentiment/models/minilm-sentiment-3c/heldout.csv --model PATH --no-baseline
  reputation -q evaluate labelled.csv --json > report.json   # -q: only errors, and the JSON asked for

\b
Labels: negative/neutral/positive (or neg/neu/pos), -1/0/1, 0/1/2, or 0/1 (negative/positive).
Macro-F1 averages the classes present in the gold labels (a positive/negative file: those two).
VADER's labels follow its documented thresholds: compound >= 0.05 positive, <= -0.05 negative,
neutral between. The pos/neg accuracy counts a row where a system takes no side (VADER neutral)
as an error; --json also gives the accuracy over the rows where it took one.
"""


@click.command(epilog=EXAMPLES)
@click.argument("file", type=click.Path(dir_okay=False))
@model_option
@click.option("--text-column", default="text", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--no-baseline", is_flag=True, help="Skip the VADER baseline.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
@click.pass_context
def evaluate(
    ctx: click.Context,
    file: str,
    model: str | None,
    text_column: str,
    label_column: str,
    batch_size: int,
    no_baseline: bool,
    as_json: bool,
) -> None:
    """Accuracy, macro-F1, per-class report, confusion matrix and calibration error (15 bins) of
    the model on FILE, beside VADER. With -q the tables are not printed (--json still is)."""
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
    if is_quiet(ctx):
        return
    console = Console()
    if not console.is_terminal:  # pipes and logs: wide enough for full model ids
        console = Console(width=140)
    counts = ", ".join(f"{label} {n}" for label, n in report.label_counts.items())
    table = Table(title=f"{report.path} — {report.n} texts ({counts})")
    columns = ("system", "revision", "accuracy", "macro-F1", "ECE (15 bins)", "pos/neg accuracy", "no side")
    for column in columns:
        table.add_column(column, justify="left" if column in ("system", "revision") else "right")
    for result in report.results:
        table.add_row(
            result.name,
            result.revision,
            _fmt(result.accuracy),
            f"{_fmt(result.macro_f1)} ({'/'.join(_short(c) for c in result.macro_f1_classes)})",
            _fmt(result.ece),
            f"{_fmt(result.binary_accuracy)} (n={result.n_binary})",
            str(result.binary_no_side),
        )
    console.print(table)
    for result in report.results:
        console.print(_class_table(result))


def _class_table(result: SystemResult) -> Table:
    """Per-class precision/recall/F1/support beside the confusion matrix row of that class."""
    labels = result.confusion["labels"]
    table = Table(title=f"{result.name}: per class (confusion matrix: gold rows, predicted columns)")
    table.add_column("gold class")
    for column in ("precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for label in labels:
        table.add_column(f"→ {_short(label)}", justify="right")
    for label, row in zip(labels, result.confusion["matrix"], strict=True):
        stats = result.per_class[label]
        table.add_row(
            label,
            _fmt(stats["precision"]),
            _fmt(stats["recall"]),
            _fmt(stats["f1"]),
            str(int(stats["support"])),
            *(str(count) for count in row),
        )
    return table


def _short(label: str) -> str:
    return label[:3]


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
