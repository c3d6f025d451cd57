"""Calibration maps of classifier logits, in one place (Guo et al., 2017).

A fine-tuned classifier is over-confident; dividing its logits by one temperature T, fitted on
held-back labelled rows by minimising the negative log-likelihood, fixes most of that without
changing a single argmax. Both trained parts of the model use this module:

* the review classifier (``recipe.py``): ``fit_temperature`` on the validation split, then
  ``fold_temperature`` divides the stored classifier weight and bias by T, so the calibrated model
  stays a plain Hugging Face classifier whose probabilities need no extra step;
* the single-pass sentence heads (``sentence_heads.py``): ``fit_temperature_logits`` for the
  relevance head, and ``fit_calibration`` to compare richer maps of the sentiment logits (a
  temperature plus a bias per class, a scale and bias per class) before one is folded into the head.

Every temperature comes from the same grid search, so the same data always gives the same T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from sentiment.default_model import TRAINED_FILE

#: Candidate temperatures: log-spaced, 60 points per doubling (NLL is flat between points), from
#: 1/64 (a head whose logits are far too small) to 8 (a classifier far too sure of itself).
TEMPERATURES = np.exp(np.linspace(np.log(1 / 64), np.log(8.0), 541))
CLASSIFIER_TENSORS = ("classifier.weight", "classifier.bias")
#: Maps fit_calibration knows, simplest first.
CALIBRATORS = ("none", "temperature", "temperature_bias", "vector")


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _targets(gold: Sequence[int] | np.ndarray, rows: int, classes: int) -> np.ndarray:
    """Gold label indices, or already a (rows, classes) matrix of soft targets, as that matrix."""
    array = np.asarray(gold)
    if array.ndim == 2:
        if array.shape != (rows, classes):
            raise ValueError(f"soft targets of shape {array.shape}, expected {(rows, classes)}")
        return array.astype(np.float64)
    onehot = np.zeros((rows, classes))
    onehot[np.arange(rows), array.astype(np.int64)] = 1.0
    return onehot


def fit_temperature_logits(logits: np.ndarray, gold: Sequence[int] | np.ndarray) -> float:
    """The grid temperature minimising the NLL of ``gold`` under softmax(logits / T).

    ``gold``: label indices, or soft targets (rows summing to 1: the cross-entropy is then taken
    against them). A binary head's logit z is the two-class logits (0, z)."""
    z = np.asarray(logits, dtype=np.float64)
    targets = _targets(gold, len(z), z.shape[1])
    best_t, best_nll = 1.0, np.inf
    for t in TEMPERATURES:
        nll = float(-(targets * _log_softmax(z / t)).sum(axis=1).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def fit_temperature(probs: np.ndarray, gold: Sequence[int] | np.ndarray) -> float:
    """The temperature minimising NLL of `gold` under softmax(log(probs) / T).

    Log-probabilities differ from logits by a per-row constant, which softmax ignores, so fitting
    on probabilities is the same as fitting on logits.
    """
    return fit_temperature_logits(np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0)), gold)


@dataclass(frozen=True)
class Calibration:
    """A map of logits: probabilities = softmax(logits * scale + shift)."""

    method: str
    scale: np.ndarray  # (k,)
    shift: np.ndarray  # (k,)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return np.exp(_log_softmax(logits * self.scale + self.shift))


def fit_calibration(logits: np.ndarray, gold: np.ndarray, method: str) -> Calibration:
    """The map of ``method`` (one of CALIBRATORS) minimising the NLL of ``gold`` label indices.

    ``temperature``: one scale, 1/T from fit_temperature_logits; ``temperature_bias``: one scale
    and a bias per class (Platt-style, for a head whose class balance differs from the data's);
    ``vector``: a scale and a bias per class (Guo et al. 2017). The biases carry a tiny ridge:
    softmax ignores their common part."""
    k = logits.shape[1]
    if method not in CALIBRATORS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {CALIBRATORS}")
    if method == "none":
        return Calibration(method, np.ones(k), np.zeros(k))
    if method == "temperature":
        return Calibration(method, np.full(k, 1.0 / fit_temperature_logits(logits, gold)), np.zeros(k))
    z = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    y = torch.from_numpy(np.asarray(gold, dtype=np.int64))
    log_scale = torch.zeros(k if method == "vector" else 1, dtype=torch.float64, requires_grad=True)
    shift = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_scale, shift], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (
            torch.nn.functional.cross_entropy(z * log_scale.exp() + shift, y) + 1e-4 * (shift * shift).sum()
        )
        loss.backward()
        return loss

    opt.step(closure)
    scale = np.broadcast_to(log_scale.detach().exp().numpy(), (k,)).copy()
    return Calibration(method, scale, shift.detach().numpy().copy())


def fold_temperature(artefact_dir: Path, temperature: float) -> None:
    """Divide the stored classifier weight and bias by `temperature` (logits / T, argmax unchanged)."""
    path = artefact_dir / TRAINED_FILE
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
    tensors = load_file(str(path))
    for name in CLASSIFIER_TENSORS:
        tensors[name] = (tensors[name].float() / temperature).to(torch.float16).contiguous()
    save_file(tensors, str(path), metadata=metadata)
