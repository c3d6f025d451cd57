"""Train and evaluate the customer-service head; ``python -m sentiment.training.aspect_head`` rewrites it.

The head is plain L2-regularised logistic regression on frozen sentence embeddings, fitted with
Newton's method in numpy (deterministic, no extra dependency). The penalty is chosen by 5-fold
cross-validation on the training split only; the evaluation split is scored once at the end and
the numbers are stored next to the weights so a reader can see what the committed head achieves.
A keyword list is scored on the same split as the baseline the model has to beat. The labelled
sentences and the head are package data (``data/aspect/cs_sentences.csv``, ``aspect_head.json``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.aspect import (
    CS_THRESHOLD,
    HEAD_PATH,
    CustomerServiceDetector,
    head_probability,
    load_encoder,
)
from sentiment.metrics import classification_metrics
from sentiment.package_data import ASPECT_SENTENCES, package_path

DEFAULT_DATA = package_path(*ASPECT_SENTENCES)
PENALTIES = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
FOLDS = 5
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# What someone would write first: words that usually signal talk about customer service.
_KEYWORDS = re.compile(
    r"\b(customer (?:service|services|care|support|relations)|support|agents?|advisors?|advisers?|"
    r"reps?|representatives?|staff|helpline|help ?desk|call ?centre|call ?center|contact centre|"
    r"on hold|hold music|callbacks?|call(?:ed)? (?:me )?back|chat|chatbot|bot|emails?|"
    r"refunds?|complaints?|escalat\w*|supervisor|manager|ticket|phoned|rang)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LabelledSentence:
    """One row of the labelled set."""

    text: str
    is_cs: bool
    split: str
    note: str = ""


def load_labelled(path: Path = DEFAULT_DATA) -> list[LabelledSentence]:
    """Read ``text,is_cs,split[,note]`` rows; a malformed row names its line number."""
    rows: list[LabelledSentence] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"text", "is_cs", "split"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            if row["is_cs"] not in {"0", "1"} or not row["text"].strip():
                raise ValueError(f"{path}:{line}: need non-empty text and is_cs 0 or 1, got {row}")
            rows.append(
                LabelledSentence(row["text"], row["is_cs"] == "1", row["split"], row.get("note") or "")
            )
    return rows


def fit_logistic(
    x: np.ndarray, y: np.ndarray, penalty: float, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """Minimise sum(log-loss) + penalty/2 * |w|^2 (bias not penalised) by Newton's method."""
    xb = np.hstack([x.astype(np.float64), np.ones((x.shape[0], 1))])
    theta = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], penalty)
    reg[-1] = 0.0
    for _ in range(iterations):
        p = head_probability(xb[:, :-1], theta[:-1], float(theta[-1]))
        grad = xb.T @ (p - y) + reg * theta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def choose_penalty(x: np.ndarray, y: np.ndarray, penalties: Sequence[float] = PENALTIES) -> float:
    """Pick the penalty with the lowest cross-validated log-loss (fixed, stratified folds)."""
    folds = np.zeros(len(y), dtype=int)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        folds[idx] = np.arange(len(idx)) % FOLDS
    best, best_loss = penalties[0], np.inf
    for penalty in penalties:
        loss = 0.0
        for k in range(FOLDS):
            train, test = folds != k, folds == k
            w, b = fit_logistic(x[train], y[train], penalty)
            p = np.clip(head_probability(x[test], w, b), 1e-12, 1 - 1e-12)
            loss -= float(np.sum(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
        if loss < best_loss:
            best, best_loss = penalty, loss
    return best


def keyword_is_cs(sentence: str) -> bool:
    """Baseline: a sentence is about customer service when it contains a service keyword."""
    return _KEYWORDS.search(sentence) is not None


def evaluate(
    detector: CustomerServiceDetector, rows: Sequence[LabelledSentence], split: str = "eval"
) -> dict[str, dict[str, float]]:
    """Score the detector and the keyword baseline on one split of the labelled set."""
    chosen = [r for r in rows if r.split == split]
    if not chosen:
        raise ValueError(f"no rows in split {split!r}")
    truth = [r.is_cs for r in chosen]
    relevance = detector.relevance([r.text for r in chosen])
    return {
        "model": classification_metrics(truth, list(relevance >= CS_THRESHOLD)),
        "keywords": classification_metrics(truth, [keyword_is_cs(r.text) for r in chosen]),
    }


def train_head(
    data: Path = DEFAULT_DATA,
    out: Path = HEAD_PATH,
    encoder_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Embed the training split, fit the head, evaluate it, and write ``out``; returns the record."""
    rows = load_labelled(data)
    train = [r for r in rows if r.split == "train"]
    model, tokenizer, device = load_encoder(encoder_dir)
    dim = int(model.config.hidden_size)
    detector = CustomerServiceDetector(model, tokenizer, device, np.zeros(dim), 0.0)
    x = detector.embed([r.text for r in train])
    y = np.array([r.is_cs for r in train], dtype=np.float64)
    penalty = choose_penalty(x, y)
    weights, bias = fit_logistic(x, y, penalty)
    detector.weights, detector.bias = weights, bias
    metrics = evaluate(detector, rows, "eval")
    log(f"penalty {penalty}; eval model {metrics['model']}; keywords {metrics['keywords']}")
    record = {
        "kind": "logistic-regression head on mean-pooled, L2-normalised sentence embeddings",
        "encoder": ENCODER_NAME,
        "dim": dim,
        "threshold": CS_THRESHOLD,
        "penalty": penalty,
        "trained_on": {
            "file": "/".join(("sentiment", *ASPECT_SENTENCES)),
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "split": "train",
            "n": len(train),
            "n_cs": int(y.sum()),
        },
        "eval": {name: {k: round(v, 4) for k, v in m.items()} for name, m in metrics.items()},
        "bias": float(f"{bias:.8g}"),
        "weights": [float(f"{w:.7g}") for w in weights],
    }
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: rewrite the committed head from the labelled set."""
    parser = argparse.ArgumentParser(prog="python -m sentiment.training.aspect_head", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled CSV")
    parser.add_argument("--out", type=Path, default=HEAD_PATH, help="head JSON to write")
    parser.add_argument("--encoder-dir", type=Path, default=None, help="local encoder (default: packaged)")
    args = parser.parse_args(argv)
    train_head(args.data, args.out, args.encoder_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
