"""Train the sentence heads of the single-pass scorer (sentiment.single_pass) and measure them.

Features are what the scorer reads at run time: the fine-tuned classifier's hidden states,
mean-pooled over a sentence's tokens, from a forward pass over a whole text. Each labelled
sentence is seen twice: alone, and inside a pseudo-review of 2-4 sentences of the same split (so
the heads learn from states that carry context, as in real reviews). Data:

* ``data/aspect/cs_sentences.csv``: customer-service relevance (``train`` fits, ``eval`` is held out);
* ``data/aspect/complaint_sentences.csv``: complaints written as facts or questions ("2 hours on
  hold and still no answer", "where is my bag?"), with relevance and sentiment labels, and
  a ``heldout`` split never trained on;
* the default model's ``cs_reviews.csv``: labelled customer-service sentences (sentiment only).

The sentence-sentiment targets of the aspect sentences (which carry no sentiment label) are the
classifier's own distribution over the sentence read alone (distillation); labelled sentences use
their label. Both heads are L2-regularised linear models on standardised features (the penalty
chosen on a calibration fifth of the training sentences), then temperature-scaled on that fifth.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentiment.default_model import PROJECT_DATA_FILE, SENTENCE_HEADS_FILE, artefact_dir
from sentiment.labels import CANONICAL_LABELS
from sentiment.metrics import classification_metrics, expected_calibration_error
from sentiment.model import SentimentModel
from sentiment.package_data import ASPECT_SENTENCES, COMPLAINT_SENTENCES, package_path
from sentiment.single_pass import SentenceHeads, heads_to_json, pool_spans

# Hidden states pooled (0 is the embeddings): the last layer (what the classifier reads) carries
# sentiment but little of the topic; layers 2 and 4 keep it. On the held-out aspect sentences the
# last layer alone reached F1 0.84, layers 2+4+6 (each L2-normalised) 0.96.
LAYERS = (2, 4, 6)
SEED = 14
PENALTIES = (10.0, 30.0, 100.0, 300.0)
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(4.0), 161))


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence; ``is_cs`` or ``label`` is None when that set does not say."""

    text: str
    is_cs: bool | None
    label: str | None
    split: str  # train, eval (aspect held out) or heldout (complaints held out)
    source: str


def load_sentences(aspect: Path, complaints: Path, cs_reviews: Path | None) -> list[Sentence]:
    """The three labelled sets as Sentence rows (cs_reviews all ``train``)."""
    rows: list[Sentence] = []
    for row in _read(aspect):
        rows.append(Sentence(row["text"], row["is_cs"] == "1", None, row["split"], "aspect"))
    for row in _read(complaints):
        rows.append(Sentence(row["text"], row["is_cs"] == "1", row["label"], row["split"], "complaints"))
    if cs_reviews is not None and cs_reviews.is_file():
        for row in _read(cs_reviews):
            rows.append(Sentence(row["text"], None, row["label"], "train", "cs_reviews"))
    bad = [r for r in rows if r.label is not None and r.label not in CANONICAL_LABELS]
    if bad:
        raise ValueError(f"unknown sentiment label {bad[0].label!r} in {bad[0].source}")
    return rows


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def features(
    model: SentimentModel, sentences: Sequence[str], contexts: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(pooled states, index of the sentence each row is) for sentences alone, plus in pseudo-reviews."""
    texts: list[str] = list(sentences)
    spans: list[np.ndarray] = [np.array([[0, len(s)]]) for s in sentences]
    owners: list[list[int]] = [[i] for i in range(len(sentences))]
    if contexts:
        order = rng.permutation(len(sentences))
        start = 0
        while start < len(order):
            group = [int(i) for i in order[start : start + int(rng.integers(2, 5))]]
            start += len(group)
            text, parts = "", []
            for i in group:
                piece = sentences[i].strip()
                if text:
                    text += " " if text[-1] in ".!?" else ". "
                parts.append((len(text), len(text) + len(piece)))
                text += piece
            texts.append(text)
            spans.append(np.array(parts))
            owners.append(group)
    encoded = model.encode(texts, None, offsets=True)
    _, pooled, read = pool_spans(model, encoded, spans, LAYERS, batch_size=64)
    index = np.array([i for group in owners for i in group])
    return pooled[read], index[read]


def fit_softmax(x: np.ndarray, targets: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on soft targets: mean cross-entropy + penalty/2n |W|^2 (L-BFGS)."""
    xt = torch.from_numpy(x).double()
    yt = torch.from_numpy(targets).double()
    w = torch.zeros((targets.shape[1], x.shape[1]), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(targets.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logp = torch.log_softmax(xt @ w.T + b, dim=1)
        loss = -(yt * logp).sum(dim=1).mean() + penalty / (2 * len(x)) * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _best_temperature(nll: Callable[[float], float]) -> float:
    return float(min(TEMPERATURES, key=nll))


def train_heads(
    model_dir: Path | None = None,
    out: Path | None = None,
    *,
    aspect: Path | None = None,
    complaints: Path | None = None,
    cs_reviews: Path | None = None,
    threads: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fit both heads, evaluate them, write the heads file; returns the evaluation record."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    model = SentimentModel.load(model_dir, device="cpu")
    out = out or (
        artefact_dir() / SENTENCE_HEADS_FILE if model_dir is None else Path(model_dir) / SENTENCE_HEADS_FILE
    )
    rows = load_sentences(
        aspect or package_path(*ASPECT_SENTENCES),
        complaints or package_path(*COMPLAINT_SENTENCES),
        cs_reviews if cs_reviews is not None else artefact_dir() / PROJECT_DATA_FILE,
    )
    rng = np.random.default_rng(SEED)
    train_rows = [r for r in rows if r.split == "train"]
    calib_mask = np.arange(len(train_rows)) % 5 == 0
    fit_rows = [r for r, c in zip(train_rows, calib_mask, strict=True) if not c]
    cal_rows = [r for r, c in zip(train_rows, calib_mask, strict=True) if c]
    teacher = {
        r.text: np.array(
            [p.probabilities.get(label, 0.0) if p.probabilities else 1 / 3 for label in CANONICAL_LABELS]
        )
        for r, p in zip(train_rows, model.predict([r.text for r in train_rows]), strict=True)
    }
    shape = SentenceHeads(np.zeros(1), 0.0, 1.0, np.zeros((3, 1)), np.zeros(3), 1.0, layers=LAYERS)
    x_fit, i_fit = features(model, [r.text for r in fit_rows], True, rng)
    x_cal, i_cal = features(model, [r.text for r in cal_rows], True, rng)
    x_fit, x_cal = shape.prepare(x_fit), shape.prepare(x_cal)
    mu, sd = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-6

    def z(x: np.ndarray) -> np.ndarray:
        return (x - mu) / sd

    # customer-service relevance: rows that say; a two-class softmax is a logistic model
    cs_fit = np.array([fit_rows[i].is_cs is not None for i in i_fit])
    y_fit = np.array([bool(fit_rows[i].is_cs) for i in i_fit], dtype=np.float64)
    cs_cal = np.array([cal_rows[i].is_cs is not None for i in i_cal])
    y_cal = np.array([bool(cal_rows[i].is_cs) for i in i_cal], dtype=np.float64)
    two = np.stack([1 - y_fit[cs_fit], y_fit[cs_fit]], axis=1)
    logistic = {}
    for pen in PENALTIES:
        w2, b2 = fit_softmax(z(x_fit[cs_fit]), two, pen)
        logistic[pen] = (w2[1] - w2[0], float(b2[1] - b2[0]))

    def cs_loss(w: np.ndarray, b: float, t: float) -> float:
        p = np.clip(1 / (1 + np.exp(-(z(x_cal[cs_cal]) @ w + b) / t)), 1e-12, 1 - 1e-12)
        yc = y_cal[cs_cal]
        return float(-np.mean(yc * np.log(p) + (1 - yc) * np.log(1 - p)))

    penalty = min(PENALTIES, key=lambda pen: cs_loss(*logistic[pen], 1.0))
    cs_w, cs_b = logistic[penalty]

    def cs_nll(t: float) -> float:
        return cs_loss(cs_w, cs_b, t)

    cs_t = _best_temperature(cs_nll)

    # sentence sentiment: labels where given, else the classifier's reading of the sentence alone
    def targets(chosen: list[Sentence], index: np.ndarray) -> np.ndarray:
        out_t = np.zeros((len(index), len(CANONICAL_LABELS)))
        for k, i in enumerate(index):
            r = chosen[i]
            if r.label is not None:
                out_t[k, CANONICAL_LABELS.index(r.label)] = 1.0
            else:
                out_t[k] = teacher[r.text]
        return out_t

    t_fit, t_cal = targets(fit_rows, i_fit), targets(cal_rows, i_cal)

    def soft_nll(w: np.ndarray, b: np.ndarray, t: float) -> float:
        p = np.clip(_softmax((z(x_cal) @ w.T + b) / t), 1e-12, 1.0)
        return float(-np.mean((t_cal * np.log(p)).sum(axis=1)))

    fitted = {pen: fit_softmax(z(x_fit), t_fit, pen) for pen in PENALTIES}
    st_pen = min(PENALTIES, key=lambda pen: soft_nll(*fitted[pen], 1.0))
    st_w, st_b = fitted[st_pen]
    st_t = _best_temperature(lambda t: soft_nll(st_w, st_b, t))
    fit_seconds = time.perf_counter() - started

    heads = SentenceHeads(
        cs_weights=cs_w / sd,
        cs_bias=float(cs_b - (cs_w / sd) @ mu),
        cs_temperature=cs_t,
        sentiment_weights=st_w / sd[None, :],
        sentiment_bias=st_b - (st_w / sd[None, :]) @ mu,
        sentiment_temperature=st_t,
        layers=LAYERS,
    )
    record = evaluate(model, heads, rows, rng)
    record["training"] = {
        "seconds": round(fit_seconds, 1),
        "threads": threads,
        "sentences": {"fit": len(fit_rows), "calibration": len(cal_rows)},
        "cs_penalty": penalty,
        "sentiment_penalty": st_pen,
        "cs_temperature": round(cs_t, 4),
        "sentiment_temperature": round(st_t, 4),
    }
    heads = dataclasses.replace(heads, info={"evaluation": record})
    out.write_text(heads_to_json(heads), encoding="utf-8")
    log(json.dumps(record, indent=1))
    log(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return record


def evaluate(
    model: SentimentModel, heads: SentenceHeads, rows: Sequence[Sentence], rng: np.random.Generator
) -> dict[str, Any]:
    """Held-out figures: aspect F1/ECE (alone and in context), sentence sentiment on the complaints split."""
    aspect_eval = [r for r in rows if r.split == "eval" and r.is_cs is not None]
    record: dict[str, Any] = {}
    for name, contexts in (("aspect_alone", False), ("aspect_in_context", True)):
        x, index = features(model, [r.text for r in aspect_eval], contexts, rng)
        if contexts:  # only the rows read inside pseudo-reviews
            keep = np.arange(len(index)) >= len(aspect_eval)
            x, index = x[keep], index[keep]
        p = heads.relevance(x)
        truth = [bool(aspect_eval[i].is_cs) for i in index]
        metrics = classification_metrics(truth, list(p >= heads.threshold))
        confidence = np.maximum(p, 1 - p)
        correct = (p >= heads.threshold) == np.array(truth)
        metrics["ece"] = expected_calibration_error(confidence.tolist(), correct.tolist())
        record[name] = {k: round(float(v), 4) for k, v in metrics.items()}
    held = [r for r in rows if r.split == "heldout" and r.label is not None]
    x, index = features(model, [r.text for r in held], False, rng)
    probs = heads.sentiment(x)
    after = [CANONICAL_LABELS[int(k)] for k in probs.argmax(axis=1)]
    before = [p.label for p in model.predict([r.text for r in held])]
    truth_labels = [held[i].label for i in index]
    negatives = [k for k, t in enumerate(truth_labels) if t == "negative"]
    record["complaints_heldout"] = {
        "n": len(held),
        "negative": len(negatives),
        "negative_as_neutral_before": sum(before[index[k]] == "neutral" for k in negatives),
        "negative_as_neutral_after": sum(after[k] == "neutral" for k in negatives),
        "accuracy_before": round(
            float(np.mean([before[index[k]] == t for k, t in enumerate(truth_labels)])), 4
        ),
        "accuracy_after": round(
            float(np.mean([a == t for a, t in zip(after, truth_labels, strict=True)])), 4
        ),
        "sentiment_ece_after": round(
            expected_calibration_error(
                probs.max(axis=1).tolist(), [a == t for a, t in zip(after, truth_labels, strict=True)]
            ),
            4,
        ),
        "relevance_f1": round(
            classification_metrics(
                [bool(held[i].is_cs) for i in index], list(heads.relevance(x) >= heads.threshold)
            )["f1"],
            4,
        ),
    }
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train the heads of the default model (or of --model-dir) and write them next to it."""
    parser = argparse.ArgumentParser(prog="python -m sentiment.training.sentence_heads", description=__doc__)
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="model directory (default: the default model)"
    )
    parser.add_argument("--out", type=Path, default=None, help="heads file to write")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    train_heads(args.model_dir, args.out, threads=args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
