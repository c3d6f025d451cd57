"""VADER as a baseline, in the same Prediction shape as the transformer model.

Labels follow VADER's documented thresholds on the compound score: >= 0.05 positive,
<= -0.05 negative, otherwise neutral. The signed score is the compound itself.

VADER has no probabilities, so for calibration metrics we derive a distribution whose
argmax always equals the thresholded label and whose confidence grows with |compound|:

* polar (|c| >= 0.05): P(label) = (1 + |c|) / 2, P(neutral) = (1 - |c|) / 2, opposite 0;
* neutral (|c| < 0.05): P(neutral) = 1 - |c|, P(side of c) = |c|, opposite 0.

These are a heuristic, not calibrated probabilities; ECE on them measures how well
|compound| tracks VADER's correctness.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE
from sentiment.model import Prediction, prepare_text

THRESHOLD = 0.05
MODEL_ID = "vaderSentiment"


def vader_label(compound: float) -> str:
    """VADER's documented thresholds."""
    if compound >= THRESHOLD:
        return POSITIVE
    if compound <= -THRESHOLD:
        return NEGATIVE
    return NEUTRAL


def vader_probabilities(compound: float) -> dict[str, float]:
    """The derived distribution described in the module docstring."""
    magnitude = min(abs(compound), 1.0)
    side = POSITIVE if compound >= 0 else NEGATIVE
    other = NEGATIVE if side == POSITIVE else POSITIVE
    if magnitude >= THRESHOLD:
        return {side: (1 + magnitude) / 2, NEUTRAL: (1 - magnitude) / 2, other: 0.0}
    return {NEUTRAL: 1 - magnitude, side: magnitude, other: 0.0}


class VaderBaseline:
    """Rule-based sentiment; ``predict`` mirrors SentimentModel.predict."""

    model_id = MODEL_ID

    def __init__(self) -> None:
        self._analyzer: Any = SentimentIntensityAnalyzer()
        self.revision = _vader_version()

    def predict(self, texts: Sequence[str | bytes | None], batch_size: int = 0) -> list[Prediction]:
        """One Prediction per text; ``batch_size`` is accepted for interface parity and ignored."""
        results = []
        for raw in texts:
            text, flags = prepare_text(raw)
            if "empty" in flags:
                results.append(Prediction(None, None, None, 0, flags))
                continue
            compound = float(self._analyzer.polarity_scores(text)["compound"])
            results.append(
                Prediction(vader_label(compound), vader_probabilities(compound), compound, 1, flags)
            )
        return results


def _vader_version() -> str:
    try:
        return version("vaderSentiment")
    except PackageNotFoundError:  # pragma: no cover - vendored copy
        return "unknown"
