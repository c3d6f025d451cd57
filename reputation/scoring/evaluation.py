"""Model quality on a labelled file: accuracy, macro-F1 and calibration, next to VADER.

Input: CSV or TSV (by extension, else sniffed) with a text and a label column. Labels may
be words (negative/neutral/positive, neg/neu/pos, any case) or numbers, read per file:
-1/0/1 (signed), 0/1/2 (negative/neutral/positive), or 0/1 alone (negative/positive).
A label that fits none of these is an error naming the file, line and value.

A text the model cannot score (empty, emoji only) counts as a neutral prediction with
uniform probabilities: evaluation never drops rows, so systems are compared on the same n.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reputation.scoring.job import load_model
from sentiment.labels import CANONICAL_LABELS, NEGATIVE, NEUTRAL, POSITIVE
from sentiment.metrics import accuracy, expected_calibration_error, f1_per_label, macro_f1
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
    binary_accuracy: float  # on rows labelled positive or negative: P(pos) vs P(neg)
    n_binary: int
    f1: dict[str, float] = field(default_factory=dict)


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
    name: str, revision: str, gold: Sequence[str], predictions: Sequence[Prediction]
) -> SystemResult:
    """Metrics for one system's predictions against the gold labels."""
    if len(gold) != len(predictions):
        raise ValueError(f"{len(gold)} labels but {len(predictions)} predictions")
    distributions = [_distribution(p) for p in predictions]
    predicted = [NEUTRAL if p.label is None else p.label for p in predictions]
    confidences = [d[label] for d, label in zip(distributions, predicted, strict=True)]
    correct = [g == p for g, p in zip(gold, predicted, strict=True)]
    polar = [(g, d) for g, d in zip(gold, distributions, strict=True) if g != NEUTRAL]
    binary = [g == (POSITIVE if d[POSITIVE] >= d[NEGATIVE] else NEGATIVE) for g, d in polar]
    labels = sorted(set(gold) | set(predicted))
    return SystemResult(
        name=name,
        revision=revision,
        n=len(gold),
        accuracy=accuracy(gold, predicted),
        macro_f1=macro_f1(gold, predicted, labels),
        ece=expected_calibration_error(confidences, correct, n_bins=ECE_BINS),
        binary_accuracy=float(sum(binary) / len(binary)) if binary else float("nan"),
        n_binary=len(binary),
        f1=f1_per_label(gold, predicted, labels),
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
        results.append(score_system(vader.model_id, vader.revision, data.labels, vader.predict(data.texts)))
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
