"""Which classifier the benchmarks time: the project's default model, else a same-shape stand-in.

Speed depends on the architecture (MiniLM-L6, 384 wide) and token counts, not on the trained
weights, so when the default model cannot be built here the benchmarks time the packaged
all-MiniLM-L6-v2 encoder with an untrained 3-label head, and every figure says so.
Accuracy figures need the real model and are skipped with a stand-in.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bench.report import RESULTS_DIR
from sentiment.default_model import base_model_dir, default_model_dir

STANDIN_DIR = RESULTS_DIR / "standin-minilm-3c"
LABELS = ("negative", "neutral", "positive")


def default_model() -> Path | None:
    """The default model's directory, or None where it cannot be built (artefact missing)."""
    try:
        path = Path(default_model_dir())
    except Exception:  # the artefact is absent or incomplete: fall back to the stand-in
        return None
    return path if (path / "config.json").is_file() else None


def standin_model() -> Path:
    """all-MiniLM-L6-v2 with a seeded random 3-label head, saved once under bench/results/."""
    if (STANDIN_DIR / "model.safetensors").is_file():
        return STANDIN_DIR
    base = base_model_dir()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        local_files_only=True,
    )
    STANDIN_DIR.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(STANDIN_DIR)
    AutoTokenizer.from_pretrained(base, local_files_only=True).save_pretrained(STANDIN_DIR)
    return STANDIN_DIR


def benchmark_model() -> tuple[Path, bool]:
    """(model directory, is_default): the default model when present, else the stand-in."""
    path = default_model()
    if path is not None:
        return path, True
    return standin_model(), False
