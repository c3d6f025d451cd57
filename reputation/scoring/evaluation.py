"""Model quality on a labelled file: accuracy, macro-F1 and calibration, next to VADER.

Input: CSV or TSV (by extension, else sniffed) with a text and a label column. Labels may
be words (negative/neutral/positive, neg/neu/pos, any case) or numbers, read per file:
-1/0/1 (signed), 0/1/2 (negative/neutral/positive), or 0/1 alone (negative/positive).
A label that fits none of these is an error naming the file, line and value.

A text the model cannot score (empty, emoji only) counts as a neutral prediction with
uniform probabilities: evaluation never drops rows, so systems are compared on the same n.

The figures, per system:

* accuracy over every row, on the three-way labels;
* macro-F1, the unweighted mean of F1 over the classes present in the gold labels: a binary
  file (positive/negative only) is scored on those two, and a neutral call there costs recall
  instead of adding a class whose F1 is 0 by construction;
* a per-class report (precision, recall, F1, support) and a confusion matrix (gold rows,
  predicted columns) over negative, neutral, positive;
* ECE over 15 equal-width confidence bins;
* binary accuracy on the rows labelled positive or negative, the question a star rating asks.
  A model answers with the larger of P(positive) and P(negative). VADER answers with its own
  documented thresholds (compound >= 0.05 positive, <= -0.05 negative, neutral between): a
  neutral compound takes no side. A row where a system takes no side (VADER's neutral band,
  equal P(positive) and P(negative), an unscorable text) counts as an error, so every system is
  judged on the same rows; how many there were is reported (``binary_no_side``) beside the
  accuracy over the rows where it took a side (``binary_accuracy_decided``).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reputation.scoring.job import load_model
from sentiment.labels import CANONICAL_LABELS, NEGATIVE, NEUTRAL, POSITIVE, binary_side
from sentiment.metrics import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    per_class_report,
)
from sentiment.model import Prediction, SentimentModel
from sentiment.vader_baseline import VaderBaseline
from storage.errors import ReputationError, read_user_text

ECE_BINS = 15
_WORDS = {
    "negative": NEGATIVE, "neg": NEGATIVE,
    "neutral": NEUTRAL, "neu": NEUTRAL,
    "positive": POSITIVE, "pos": POSITIVE,
}  # fmt: skip
_NUMERIC_SCHEMES: list[tuple[frozenset[int], dict[int, str]]] = [
    (frozenset({-1, 0, 1}), {-1: NEGATIVE, 0: NEUTRAL, 1: POSITIVE}),
    (frozenset({0, 1, 2}), {0: NEGATIVE, 1: NEUTRAL, 2: POSITIVE}),
    (frozenset({0, 1}), {0: NEGATIVE, 1: POSITIVE}),
]


class EvaluationInputError(ReputationError):
    """The labelled file cannot be read; the message names the file and what is wrong."""


@dataclass
class LabelledSet:
    path: Path
    texts: list[str]
    labels: list[str]  # canonical: negative / neutral / positive


@dataclass
class SystemResult:
    """One system's scores on one labelled set."""

    name: str
    revision: str
    n: int
    accuracy: float
    macro_f1: float
    ece: float
    binary_accuracy: float  # on rows labelled positive or negative; taking no side is an error
    n_binary: int
    binary_no_side: int = 0  # binary rows where the system took no side
    binary_accuracy_decided: float = float("nan")  # on the binary rows where it took a side
    macro_f1_classes: list[str] = field(default_factory=list)  # the gold classes macro-F1 averages
    f1: dict[str, float] = field(default_factory=dict)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # precision, recall, f1, support
    confusion: dict[str, list[Any]] = field(default_factory=dict)  # labels; matrix[gold][predicted]


@dataclass
class EvaluationReport:
    path: Path
    n: int
    label_counts: dict[str, int]
    results: list[SystemResult]


def read_labelled(path: str | Path, *, text_column: str = "text", label_column: str = "label") -> LabelledSet:
    """Read and validate a labelled CSV/TSV; every bad label is reported at once."""
    path = Path(path)
    content = read_user_text(path, EvaluationInputError, encoding="utf-8-sig")
    if not content.strip():
        raise EvaluationInputError(f"{path}: the file is empty")
    reader = csv.DictReader(content.splitlines(keepends=True), dialect=_dialect(path, content))
    columns = reader.fieldnames or []
    for column in (text_column, label_column):
        if column not in columns:
            raise EvaluationInputError(f"{path}: no column {column!r}; columns are {columns}")
    texts: list[str] = []
    raw_labels: list[tuple[int, str]] = []
    for row in reader:
        texts.append(row.get(text_column) or "")
        raw_labels.append((reader.line_num, (row.get(label_column) or "").strip()))
    if not texts:
        raise EvaluationInputError(f"{path}: a header but no rows")
    return LabelledSet(path, texts, normalise_labels(raw_labels, path))


def normalise_labels(raw: Sequence[tuple[int, str]], path: Path) -> list[str]:
    """(line, value) pairs to canonical labels, choosing one numeric scheme for the file."""
    numbers = {value: _as_int(value) for _, value in raw}
    if all(number is not None for number in numbers.values()):
        present = {n for n in numbers.values() if n is not None}
        for allowed, mapping in _NUMERIC_SCHEMES:
            if present <= allowed and (len(allowed) == 2 or present - {0, 1}):
                return [mapping[numbers[value] or 0] for _, value in raw]
        raise EvaluationInputError(
            f"{path}: numeric labels {sorted(present)} fit none of -1/0/1, 0/1/2 or 0/1"
        )
    bad = [(line, value) for line, value in raw if value.lower() not in _WORDS]
    if bad:
        listed = ", ".join(f"line {line}: {value!r}" for line, value in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise EvaluationInputError(
            f"{path}: unknown labels ({listed}{more}); use negative/neutral/positive, neg/neu/pos, "
            "-1/0/1 or 0/1/2"
        )
    return [_WORDS[value.lower()] for _, value in raw]


def score_system(
    name: str,
    revision: str,
    gold: Sequence[str],
    predictions: Sequence[Prediction],
    *,
    thresholded: bool = False,
) -> SystemResult:
    """Metrics for one system's predictions against the gold labels.

    ``thresholded``: the system's neutral label is its answer on the two-way question too
    (VADER's thresholds), rather than a call to be settled by P(positive) against P(negative).
    """
    if len(gold) != len(predictions):
        raise ValueError(f"{len(gold)} labels but {len(predictions)} predictions")
    distributions = [_distribution(p) for p in predictions]
    predicted = [NEUTRAL if p.label is None else p.label for p in predictions]
    confidences = [d[label] for d, label in zip(distributions, predicted, strict=True)]
    correct = [g == p for g, p in zip(gold, predicted, strict=True)]
    sides = [
        binary_side(label, d, thresholded=thresholded)
        for g, label, d in zip(gold, predicted, distributions, strict=True)
        if g != NEUTRAL
    ]
    polar_gold = [g for g in gold if g != NEUTRAL]
    hits = sum(g == side for g, side in zip(polar_gold, sides, strict=True))
    decided = sum(side is not None for side in sides)
    present = [label for label in CANONICAL_LABELS if label in set(gold)]
    report = per_class_report(gold, predicted, CANONICAL_LABELS)
    return SystemResult(
        name=name,
        revision=revision,
        n=len(gold),
        accuracy=accuracy(gold, predicted),
        macro_f1=macro_f1(gold, predicted, present),
        ece=expected_calibration_error(confidences, correct, n_bins=ECE_BINS),
        binary_accuracy=hits / len(sides) if sides else float("nan"),
        n_binary=len(sides),
        binary_no_side=len(sides) - decided,
        binary_accuracy_decided=hits / decided if decided else float("nan"),
        macro_f1_classes=present,
        f1={label: report[label]["f1"] for label in CANONICAL_LABELS},
        per_class=report,
        confusion={
            "labels": list(CANONICAL_LABELS),
            "matrix": confusion_matrix(gold, predicted, CANONICAL_LABELS),
        },
    )


def evaluate_file(
    path: str | Path,
    *,
    model: SentimentModel | str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    batch_size: int = 64,
    baseline: bool = True,
) -> EvaluationReport:
    """The model (and VADER unless ``baseline`` is False) scored on one labelled file."""
    data = read_labelled(path, text_column=text_column, label_column=label_column)
    classifier = load_model(model)
    results = [
        score_system(
            classifier.model_id, classifier.revision, data.labels, classifier.predict(data.texts, batch_size)
        )
    ]
    if baseline:
        vader = VaderBaseline()
        results.append(
            score_system(
                vader.model_id, vader.revision, data.labels, vader.predict(data.texts), thresholded=True
            )
        )
    counts = Counter(data.labels)
    return EvaluationReport(
        data.path, len(data.labels), {k: counts.get(k, 0) for k in CANONICAL_LABELS}, results
    )


def _distribution(prediction: Prediction) -> dict[str, float]:
    if prediction.probabilities is None:
        return dict.fromkeys(CANONICAL_LABELS, 1 / len(CANONICAL_LABELS))
    return {label: float(prediction.probabilities.get(label, 0.0)) for label in CANONICAL_LABELS}


def _dialect(path: Path, content: str) -> type[csv.Dialect]:
    suffix = path.suffix.lower()
    if suffix in {".tsv", ".tab"}:
        return csv.excel_tab
    if suffix == ".csv":
        return csv.excel
    try:
        return csv.Sniffer().sniff(content[:65536], delimiters=",\t;|")
    except csv.Error as exc:
        raise EvaluationInputError(f"{path}: cannot tell the delimiter; name the file .csv or .tsv") from exc


def _as_int(value: str) -> int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None
