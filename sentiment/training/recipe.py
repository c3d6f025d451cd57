"""The whole recipe behind the default model: data, split, training, export, held-out metrics.

`reputation model train` calls `run_recipe`; re-running it with the defaults rebuilds the committed
artefact, the package data in sentiment/models/minilm-sentiment-3c/ (up to floating-point noise in
training on different hardware).
"""

from __future__ import annotations

import json
import logging
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sentiment.default_model import (
    HELDOUT_FILE,
    METRICS_FILE,
    PROJECT_DATA_FILE,
    TRAINING_FILE,
    artefact_dir,
    base_model_dir,
    materialise,
)
from sentiment.metrics import top_label_ece
from sentiment.package_data import COMPLAINT_SENTENCES, package_path
from sentiment.training import data
from sentiment.training.calibration import fit_temperature, fold_temperature
from sentiment.training.export import save_artefact
from sentiment.training.heldout import heldout_metrics, label_order, predict_probs, vader_metrics
from sentiment.training.train import TrainConfig, resolve_device, train

log = logging.getLogger(__name__)


def project_examples(source_dir: Path) -> list[data.Example]:
    """The project's own labelled customer-service review sentences, if present."""
    path = source_dir / PROJECT_DATA_FILE
    return list(data.read_labelled_csv(path, "cs_reviews")) if path.is_file() else []


def evaluate_dir(model_dir: Path, heldout: list[data.Example], threads: int = 2) -> dict[str, Any]:
    """Held-out metrics of a complete model directory (what tests recompute), calibration included."""
    probs, labels = _probabilities(model_dir, heldout, threads)
    metrics = heldout_metrics(probs, labels, heldout)
    metrics["ece"] = round(_ece(probs, labels, heldout), 4)
    return metrics


def _probabilities(
    model_dir: Path, examples: list[data.Example], threads: int
) -> tuple[torch.Tensor, list[str]]:
    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    return predict_probs(model, tokenizer, [ex.text for ex in examples]), label_order(model)


def _ece(probs: torch.Tensor, labels: list[str], examples: list[data.Example]) -> float:
    """Top-label expected calibration error over the three classes."""
    return top_label_ece(probs.numpy(), [labels.index(ex.label) for ex in examples])


def calibrate(
    out_dir: Path,
    validation: list[data.Example],
    threads: int = 2,
    progress: Callable[[str], None] = log.info,
) -> dict[str, float]:
    """Fit one temperature on the validation split and fold it into the stored classifier.

    Recorded in training.json with the validation ECE before and after; the held-out split is
    never looked at here.
    """
    with tempfile.TemporaryDirectory() as tmp:
        merged = materialise(out_dir, base_model_dir(), Path(tmp) / "model")
        probs, labels = _probabilities(merged, validation, threads)
    temperature = fit_temperature(probs.numpy(), [labels.index(ex.label) for ex in validation])
    scaled = torch.softmax(probs.clamp(min=1e-12).log() / temperature, dim=1)
    record = {
        "temperature": round(temperature, 4),
        "validation_ece_before": round(_ece(probs, labels, validation), 4),
        "validation_ece_after": round(_ece(scaled, labels, validation), 4),
    }
    fold_temperature(out_dir, temperature)
    recipe = json.loads((out_dir / TRAINING_FILE).read_text())
    recipe["calibration"] = record
    (out_dir / TRAINING_FILE).write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    progress(f"calibration: {record}")
    return record


def _machine(cfg: TrainConfig) -> str:
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        return f"{platform.machine()}, {torch.cuda.get_device_name(device)}"
    return f"{platform.machine()}, CPU, {cfg.threads} torch threads"


def run_recipe(
    out_dir: Path,
    cfg: TrainConfig,
    data_dir: Path | None = None,
    progress: Callable[[str], None] = log.info,
    train_extra: dict[str, int | dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Build the training mix, train, export to `out_dir`, and write metrics.json there."""
    started = time.monotonic()
    extra = project_examples(artefact_dir())
    train_extra = data.TRAIN_EXTRA if train_extra is None else train_extra
    splits = data.training_splits(data.load_corpus(data_dir, extra=extra), train_extra)
    # Train rows only, outside MIX: the validation and held-out rows stay exactly as before.
    splits["train"].extend(data.read_complaints(package_path(*COMPLAINT_SENTENCES)))
    train_and_save(out_dir, cfg, splits, train_extra, progress)
    calibrate(out_dir, splits["validation"], cfg.threads, progress)
    return write_metrics(out_dir, cfg.threads, time.monotonic() - started, progress)


def train_and_save(
    out_dir: Path,
    cfg: TrainConfig,
    splits: dict[str, list[data.Example]],
    train_extra: dict[str, int | dict[str, int]],
    progress: Callable[[str], None] = log.info,
) -> Path:
    """Train on ready splits; write the artefact, training.json and heldout.csv to `out_dir`."""
    sizes = {name: dict(sorted(Counter(ex.label for ex in rows).items())) for name, rows in splits.items()}
    progress(f"split sizes: {sizes}")
    out_dir.mkdir(parents=True, exist_ok=True)
    data.write_csv(splits["test"], out_dir / HELDOUT_FILE)
    result = train(base_model_dir(), splits["train"], splits["validation"], cfg, progress)
    recipe = {
        "config": result.config,
        "history": result.history,
        "split_sizes": sizes,
        "sources": {key: f"{p.name}=={p.version} ({p.licence})" for key, p in data.PACKAGES.items()},
        "train_sources": dict(sorted(Counter(ex.source for ex in splits["train"]).items())),
        "mix": data.MIX,
        "train_extra": train_extra,
        "train_seconds": round(result.seconds),
        "machine": _machine(cfg),
    }
    return save_artefact(result.model, cfg.trainable_layers, out_dir, recipe)


def write_metrics(
    out_dir: Path, threads: int = 2, seconds: float | None = None, progress: Callable[[str], None] = log.info
) -> dict[str, Any]:
    """Held-out metrics of the artefact in `out_dir`, merged exactly as the default model is, and
    of VADER on the same rows; written to metrics.json."""
    heldout = data.read_csv(out_dir / HELDOUT_FILE)
    recipe = json.loads((out_dir / TRAINING_FILE).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        merged = materialise(out_dir, base_model_dir(), Path(tmp) / "model")
        model_metrics = evaluate_dir(merged, heldout, threads)
    metrics = {
        "model": model_metrics,
        "vader": vader_metrics(heldout),
        "train_seconds": recipe["train_seconds"],
    }
    if seconds is not None:
        metrics["total_seconds"] = round(seconds)
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    progress(f"held-out: {json.dumps(metrics)}")
    return metrics
