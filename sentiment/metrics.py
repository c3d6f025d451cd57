"""Classification metrics, the one place they are defined: accuracy, F1 and macro-F1, a per-class
report and a confusion matrix, expected calibration error (with a bootstrap interval, since a few
hundred rows leave ECE uncertain by several points; ``top_label_ece`` reads it off class
probabilities and gold class indices), and precision/recall/F1 of a yes/no detector.

Used by `reputation evaluate`, by the default model's training and held-out card, and by the
customer-service head. Small numpy versions so evaluation needs no scikit-learn; conventions follow
scikit-learn (macro-F1 over the union of true and predicted labels unless labels are given, F1 = 0
for a class with no predictions) and Guo et al. 2017 for ECE (equal-width confidence bins).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence, Sized

import numpy as np
from numpy.typing import ArrayLike


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    """Share of exact matches; NaN for no rows."""
    _check_lengths(y_true, y_pred)
    if not y_true:
        return float("nan")
    return float(np.mean([t == p for t, p in zip(y_true, y_pred, strict=True)]))


def f1_per_label(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """F1 for each label; 0.0 where precision and recall are both undefined or zero."""
    _check_lengths(y_true, y_pred)
    true = np.asarray(y_true, dtype=object)
    pred = np.asarray(y_pred, dtype=object)
    scores: dict[str, float] = {}
    for label in labels:
        tp = int(np.sum((true == label) & (pred == label)))
        fp = int(np.sum((true != label) & (pred == label)))
        fn = int(np.sum((true == label) & (pred != label)))
        denominator = 2 * tp + fp + fn
        scores[label] = 2 * tp / denominator if denominator else 0.0
    return scores


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-label F1 over ``labels`` (default: labels seen in either list)."""
    if not y_true:
        return float("nan")
    chosen = list(labels) if labels is not None else sorted(set(y_true) | set(y_pred))
    per_label = f1_per_label(y_true, y_pred, chosen)
    return float(np.mean(list(per_label.values())))


def per_class_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support (gold rows) per label; 0.0 where a ratio is undefined."""
    _check_lengths(y_true, y_pred)
    true = np.asarray(y_true, dtype=object)
    pred = np.asarray(y_pred, dtype=object)
    report: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = int(np.sum((true == label) & (pred == label)))
        predicted = int(np.sum(pred == label))
        support = int(np.sum(true == label))
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * tp / (predicted + support) if predicted + support else 0.0
        report[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return report


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """Counts with gold labels as rows and predictions as columns, both in ``labels`` order.

    A pair outside ``labels`` raises, so no row is left out of the table unnoticed."""
    _check_lengths(y_true, y_pred)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for truth, guess in zip(y_true, y_pred, strict=True):
        if truth not in index or guess not in index:
            raise ValueError(f"label {truth if truth not in index else guess!r} is not one of {list(labels)}")
        matrix[index[truth]][index[guess]] += 1
    return matrix


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 15
) -> float:
    """Top-label ECE: sum over bins of (bin share) * |accuracy - mean confidence|.

    Bins are equal-width over [0, 1]: bin k holds confidences in (k/n, (k+1)/n], and a
    confidence of exactly 0 falls in the first bin.
    """
    _check_lengths(confidences, correct)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    conf = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return float("nan")
    if np.any((conf < 0) | (conf > 1)) or np.any(np.isnan(conf)):
        raise ValueError("confidences must lie in [0, 1]")
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for k in range(n_bins):
        in_bin = bins == k
        if in_bin.any():
            ece += in_bin.mean() * abs(hits[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def ece_interval(
    confidences: Sequence[float],
    correct: Sequence[bool],
    level: float = 0.9,
    resamples: int = 1000,
    seed: int = 0,
    n_bins: int = 15,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``expected_calibration_error`` (rows resampled, fixed seed).

    Why: on a few hundred rows ECE moves by several points between samples, so a bare figure
    cannot say whether a target like 0.05 is met."""
    _check_lengths(confidences, correct)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    conf = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=bool)
    if conf.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, conf.size, size=(resamples, conf.size))
    values = [expected_calibration_error(conf[d].tolist(), hits[d].tolist(), n_bins) for d in draws]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def top_label_ece(probs: ArrayLike, gold: ArrayLike, n_bins: int = 15) -> float:
    """``expected_calibration_error`` of class probabilities (rows) against gold class indices.

    The one definition of top-label ECE over several classes: a row's confidence is its largest
    probability, and it is correct when that class (the first of tied maxima, as ``argmax``)
    is the gold one."""
    confidences, correct = _top_label(probs, gold)
    return expected_calibration_error(confidences, correct, n_bins)


def top_label_ece_interval(
    probs: ArrayLike,
    gold: ArrayLike,
    level: float = 0.9,
    resamples: int = 1000,
    seed: int = 0,
    n_bins: int = 15,
) -> tuple[float, float]:
    """``ece_interval`` of ``top_label_ece``: rows resampled, same confidences and hits."""
    confidences, correct = _top_label(probs, gold)
    return ece_interval(confidences, correct, level, resamples, seed, n_bins)


def _top_label(probs: ArrayLike, gold: ArrayLike) -> tuple[list[float], list[bool]]:
    """Each row's largest probability and whether its argmax is the gold class index."""
    p = np.asarray(probs, dtype=np.float64)
    g = np.asarray(gold)
    if p.size == 0 and g.size == 0:
        return [], []
    if p.ndim != 2 or g.ndim != 1:
        raise ValueError(
            f"probs must be (rows, classes) and gold one index a row, got {p.shape} and {g.shape}"
        )
    _check_lengths(g, p)
    if g.dtype.kind not in "iu" or np.any((g < 0) | (g >= p.shape[1])):
        raise ValueError(f"gold must hold class indices in [0, {p.shape[1]})")
    return p.max(axis=1).tolist(), (p.argmax(axis=1) == g).tolist()


def classification_metrics(
    truth: Sequence[bool] | np.ndarray, predicted: Sequence[bool] | np.ndarray
) -> dict[str, float]:
    """Precision, recall, F1 and accuracy of a yes/no detector for its "yes" class (0.0 where undefined)."""
    _check_lengths(truth, predicted)
    t = np.asarray(truth, dtype=bool)
    p = np.asarray(predicted, dtype=bool)
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    fn = int(np.sum(t & ~p))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    share = float(np.mean(t == p)) if len(t) else 0.0
    return {"n": len(t), "precision": precision, "recall": recall, "f1": f1, "accuracy": share}


def _check_lengths(a: Sized, b: Sized) -> None:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} true values but {len(b)} predictions")
