"""Map a classifier's own labels (config.id2label) onto negative / neutral / positive.

Every supported head becomes two linear maps over the model's probability vector:
``projection`` sums each model label into one canonical label, and ``values`` gives
each model label a signed value in [-1, 1] so the score is an expectation. For
sentiment heads that is P(positive) - P(negative); for "1 star".."5 stars" heads it is
the expected star count rescaled to [-1, 1].
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"
CANONICAL_LABELS: tuple[str, str, str] = (NEGATIVE, NEUTRAL, POSITIVE)
_SIGN = {NEGATIVE: -1.0, NEUTRAL: 0.0, POSITIVE: 1.0}

_STARS = re.compile(r"^\s*(\d+)\s*stars?\s*$", re.IGNORECASE)
_GENERIC = re.compile(r"^LABEL_(\d+)$")
# Generic LABEL_k heads follow the usual convention: low index = negative.
_GENERIC_ORDER = {2: (NEGATIVE, POSITIVE), 3: (NEGATIVE, NEUTRAL, POSITIVE)}


def binary_side(
    label: str | None, probabilities: Mapping[str, float] | None, *, thresholded: bool
) -> str | None:
    """A system's answer to "positive or negative?"; None when it takes no side.

    On a two-way question (star ratings, the held-out review rows) taking no side counts as an
    error, so every system is judged on the same rows. ``thresholded``: the system's own label
    is its answer (VADER: compound >= 0.05 positive, <= -0.05 negative, sentiment.vader_baseline),
    so its neutral band takes no side. Otherwise the larger of P(positive) and P(negative)
    answers, and a tie or no probabilities at all (an unscorable text) takes no side.
    """
    if thresholded:
        return label if label in (NEGATIVE, POSITIVE) else None
    if probabilities is None:
        return None
    positive, negative = probabilities.get(POSITIVE, 0.0), probabilities.get(NEGATIVE, 0.0)
    if positive == negative:
        return None
    return POSITIVE if positive > negative else NEGATIVE


class LabelMappingError(ValueError):
    """The model's labels cannot be read as sentiment; the message lists them."""


@dataclass(frozen=True)
class LabelMap:
    """How one model's output vector becomes canonical probabilities and a score."""

    names: tuple[str, ...]  # the model's labels, by output index
    canonical: tuple[str, ...]  # canonical label of each output index
    values: tuple[float, ...]  # signed value of each output index, -1..1
    kind: str  # "sentiment" or "stars"

    @property
    def labels_present(self) -> tuple[str, ...]:
        """Canonical labels this head can predict (a binary head has no neutral)."""
        return tuple(label for label in CANONICAL_LABELS if label in self.canonical)

    def projection(self) -> np.ndarray:
        """(num_model_labels, 3) 0/1 matrix summing model labels into canonical ones."""
        matrix = np.zeros((len(self.names), len(CANONICAL_LABELS)), dtype=np.float64)
        for index, label in enumerate(self.canonical):
            matrix[index, CANONICAL_LABELS.index(label)] = 1.0
        return matrix

    def to_canonical(self, probs: np.ndarray) -> np.ndarray:
        """(n, num_model_labels) probabilities -> (n, 3) over negative/neutral/positive."""
        return np.asarray(probs, dtype=np.float64) @ self.projection()

    def score(self, probs: np.ndarray) -> np.ndarray:
        """Signed score per row in [-1, 1]."""
        scores = np.asarray(probs, dtype=np.float64) @ np.asarray(self.values, dtype=np.float64)
        return np.clip(scores, -1.0, 1.0)


def label_map_from_config(id2label: Mapping[Any, str]) -> LabelMap:
    """Read a head's labels; raise LabelMappingError when they are not sentiment labels."""
    if not id2label:
        raise LabelMappingError("the model has no id2label mapping")
    try:
        ordered = [str(id2label[key]) for key in sorted(id2label, key=lambda k: int(k))]
    except (TypeError, ValueError) as exc:
        raise LabelMappingError(f"id2label keys are not label indexes: {sorted(id2label)!r}") from exc
    names = tuple(ordered)
    return _stars(names) or _generic(names) or _named(names)


def _stars(names: tuple[str, ...]) -> LabelMap | None:
    matches = [_STARS.match(name) for name in names]
    if not all(matches) or len(names) < 2:
        return None
    stars = [int(m.group(1)) for m in matches if m]
    low, high = min(stars), max(stars)
    if low == high:
        raise LabelMappingError(f"star labels {list(names)} span no range")
    mid, half = (low + high) / 2, (high - low) / 2
    values = tuple((s - mid) / half for s in stars)
    canonical = tuple(NEGATIVE if v < 0 else NEUTRAL if v == 0 else POSITIVE for v in values)
    return LabelMap(names, canonical, values, "stars")


def _generic(names: tuple[str, ...]) -> LabelMap | None:
    matches = [_GENERIC.match(name) for name in names]
    if not all(matches):
        return None
    order = _GENERIC_ORDER.get(len(names))
    if order is None:
        raise LabelMappingError(
            f"generic labels {list(names)}: only 2 (negative, positive) or 3 "
            "(negative, neutral, positive) LABEL_k outputs can be read as sentiment"
        )
    return LabelMap(names, order, tuple(_SIGN[label] for label in order), "sentiment")


def _named(names: tuple[str, ...]) -> LabelMap:
    canonical: list[str] = []
    for name in names:
        lowered = name.lower()
        hits = [
            label
            for label, stem in ((NEGATIVE, "neg"), (NEUTRAL, "neu"), (POSITIVE, "pos"))
            if stem in lowered
        ]
        if len(hits) != 1:
            raise LabelMappingError(
                f"cannot read label {name!r} of {list(names)} as negative, neutral or positive"
            )
        canonical.append(hits[0])
    if NEGATIVE not in canonical or POSITIVE not in canonical:
        raise LabelMappingError(f"labels {list(names)} need both a negative and a positive class")
    return LabelMap(names, tuple(canonical), tuple(_SIGN[label] for label in canonical), "sentiment")
