"""The one temperature fitter (sentiment.training.calibration) that both the review classifier's
recipe and the sentence heads use: hard and soft targets, binary heads, and the grid it searches."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment.training.calibration import (
    TEMPERATURES,
    fit_calibration,
    fit_temperature,
    fit_temperature_logits,
)


def _overconfident(rows: int, classes: int, factor: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``factor`` times too large, and labels drawn from the true ones."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0.0, 1.5, size=(rows, classes))
    p = np.exp(true) / np.exp(true).sum(axis=1, keepdims=True)
    gold = np.array([rng.choice(classes, p=row) for row in p])
    return factor * true, gold


def test_logits_and_probabilities_give_the_same_temperature() -> None:
    logits, gold = _overconfident(3000, 3, 2.5, seed=1)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    t = fit_temperature_logits(logits, gold)
    assert t == pytest.approx(2.5, rel=0.1)
    assert fit_temperature(probs, gold.tolist()) == t
    assert fit_calibration(logits, gold, "temperature").scale == pytest.approx(np.full(3, 1 / t))


def test_binary_head_and_soft_targets() -> None:
    logits, gold = _overconfident(3000, 2, 0.2, seed=2)  # a head whose logits are five times too small
    z = logits[:, 1] - logits[:, 0]
    t = fit_temperature_logits(np.stack([np.zeros_like(z), z], axis=1), gold)
    assert t == pytest.approx(0.2, rel=0.1)
    soft = np.eye(2)[gold]  # one-hot soft targets are the hard labels
    assert fit_temperature_logits(logits, soft) == fit_temperature_logits(logits, gold)
    with pytest.raises(ValueError, match="soft targets"):
        fit_temperature_logits(logits, np.ones((3, 2)) / 2)


def test_grid_keeps_the_review_classifiers_temperatures() -> None:
    """The recipe's grid (0.25..8, 301 points) is part of the wider one, so its T never moves."""
    old = np.exp(np.linspace(np.log(0.25), np.log(8.0), 301))
    assert np.allclose(TEMPERATURES[-301:], old, rtol=1e-12)
    assert TEMPERATURES[0] == pytest.approx(1 / 64)
