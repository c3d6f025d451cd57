"""Temperature scaling of the review classifier, folded into its weights (Guo et al., 2017).

A fine-tuned classifier is over-confident; dividing its logits by one temperature T, fitted on the
validation split by minimising the negative log-likelihood, fixes most of that without changing a
single argmax. Dividing the classifier's weight and bias by T gives exactly those logits, so the
calibrated model stays a plain Hugging Face classifier: `predict`, the single-pass scorer and any
tool that loads the directory see calibrated probabilities with no extra step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from sentiment.default_model import TRAINED_FILE

#: Candidate temperatures: a log-spaced grid fine enough that NLL is flat between points.
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 301))
CLASSIFIER_TENSORS = ("classifier.weight", "classifier.bias")


def fit_temperature(probs: np.ndarray, gold: Sequence[int]) -> float:
    """The temperature minimising NLL of `gold` under softmax(log(probs) / T).

    Log-probabilities differ from logits by a per-row constant, which softmax ignores, so fitting
    on probabilities is the same as fitting on logits.
    """
    logp = np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0))
    rows = np.arange(len(gold))
    best_t, best_nll = 1.0, np.inf
    for t in TEMPERATURES:
        z = logp / t
        z -= z.max(axis=1, keepdims=True)
        nll = float(-(z[rows, gold] - np.log(np.exp(z).sum(axis=1))).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def fold_temperature(artefact_dir: Path, temperature: float) -> None:
    """Divide the stored classifier weight and bias by `temperature` (logits / T, argmax unchanged)."""
    path = artefact_dir / TRAINED_FILE
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
    tensors = load_file(str(path))
    for name in CLASSIFIER_TENSORS:
        tensors[name] = (tensors[name].float() / temperature).to(torch.float16).contiguous()
    save_file(tensors, str(path), metadata=metadata)
