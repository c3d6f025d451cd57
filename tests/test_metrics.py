"""Top-label ECE of class probabilities: hand-computed values, agreement with the confidence/hit form
every caller used before, its bootstrap interval, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentiment.metrics import (
    ece_interval,
    expected_calibration_error,
    top_label_ece,
    top_label_ece_interval,
)


def test_top_label_ece_by_hand() -> None:
    probs = [
        [0.9, 0.05, 0.05],  # predicts 0, gold 0: right, confidence 0.9 (bin 13)
        [0.05, 0.9, 0.05],  # predicts 1, gold 2: wrong, 0.9 (bin 13)
        [0.2, 0.2, 0.6],  # predicts 2, gold 2: right, 0.6 (bin 8)
        [0.3, 0.3, 0.4],  # predicts 2, gold 0: wrong, 0.4 (bin 5)
    ]
    gold = [0, 2, 2, 0]
    # 2/4*|0.5-0.9| + 1/4*|1-0.6| + 1/4*|0-0.4| = 0.2 + 0.1 + 0.1
    assert top_label_ece(probs, gold) == pytest.approx(0.4)
    # one bin holds everything: |accuracy 0.5 - mean confidence 0.7|
    assert top_label_ece(probs, gold, n_bins=1) == pytest.approx(0.2)
    # tied maxima: the first class is the prediction, as argmax; 0.5 and 0.52 share bin 7, so
    # both rows right gives |1 - 0.51| (a tie read as class 1 would give |0.5 - 0.51|)
    assert top_label_ece([[0.5, 0.5], [0.52, 0.48]], [0, 0]) == pytest.approx(0.49)


def test_top_label_ece_equals_the_confidence_and_hit_form_to_the_last_digit() -> None:
    """Numpy, lists and float32 torch tensors give exactly what the callers computed by hand."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(300, 3)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    gold = rng.integers(0, 3, size=300)
    hand = expected_calibration_error(probs.max(axis=1).tolist(), (probs.argmax(axis=1) == gold).tolist())
    assert top_label_ece(probs, gold) == hand
    assert top_label_ece(probs.tolist(), gold.tolist()) == hand
    tensor = torch.from_numpy(probs).float()
    confidence, predicted = tensor.max(dim=1)
    by_tensor = expected_calibration_error(confidence.tolist(), (predicted.numpy() == gold).tolist())
    assert top_label_ece(tensor.numpy(), gold) == by_tensor
    interval = ece_interval(probs.max(axis=1).tolist(), (probs.argmax(axis=1) == gold).tolist())
    assert top_label_ece_interval(probs, gold) == interval
    low, high = interval
    assert 0 <= low < high <= 1


def test_top_label_ece_bad_input() -> None:
    assert np.isnan(top_label_ece([], []))
    assert all(np.isnan(v) for v in top_label_ece_interval(np.zeros((0, 3)), np.zeros(0, dtype=int)))
    with pytest.raises(ValueError, match="length mismatch"):
        top_label_ece([[0.6, 0.4]], [0, 1])
    with pytest.raises(ValueError, match="class indices"):
        top_label_ece([[0.6, 0.4]], [2])
    with pytest.raises(ValueError, match="class indices"):
        top_label_ece([[0.6, 0.4]], ["negative"])
    with pytest.raises(ValueError, match=r"\(rows, classes\)"):
        top_label_ece([0.6, 0.4], [0, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        top_label_ece([[1.2, -0.2]], [0])
