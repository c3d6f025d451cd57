"""Train the sentence heads of the single-pass scorer (sentiment.single_pass) and measure them.

Features are what the scorer reads at run time: the fine-tuned classifier's hidden states,
mean-pooled over a sentence's tokens, from a forward pass over a whole text. Each labelled
sentence is seen twice: alone, and inside a pseudo-review of 2-4 sentences of the same role (so
the heads learn from states that carry context, as in real reviews). Data:

* ``data/aspect/cs_sentences.csv``: customer-service relevance (``train`` fits, ``eval`` is held out);
* ``data/aspect/complaint_sentences.csv``: complaints written as facts or questions ("2 hours on
  hold and still no answer", "where is my bag?"), with relevance and sentiment labels, and
  a ``heldout`` split never trained on;
* ``data/aspect/heads_sentences.csv``: more sentences with relevance and sentiment labels, all
  ``train`` (getting through by phone, transfers, mixed sentences with a short service clause,
  plain facts and praise of support; queues, phone features and voice assistants that are not);
* the model's ``cs_reviews.csv`` (the default model's when the model directory has none):
  labelled customer-service sentences (sentiment only); a third of them, chosen by a stable hash
  of the text, is held out with the complaints' ``heldout`` rows.

The sentence-sentiment targets of the aspect sentences (which carry no sentiment label) are the
classifier's own distribution over the sentence read alone (distillation); labelled sentences use
their label. Both heads are L2-regularised linear models on standardised features; the relevance
head's penalty is chosen by cross-validated NLL on its training rows.

Calibration: a hash of the text keeps a fifth of the training sentences for calibrating both
heads, and another tenth of the sentiment-labelled ones for the sentiment head only (they still
train the relevance head). The relevance head's penalty and temperature come from the
relevance-labelled part. The sentiment head is calibrated on its *labelled* part only
(complaints and cs_reviews, real labels like the held-out set): the distilled targets of the
aspect sentences are the classifier's own soft beliefs with another class balance, so a map
fitted to them is not calibrated on real labels. Candidate maps of the logits (none, one
temperature, temperature plus a bias per class, a scale and bias per class; ``sentiment.training.calibration``,
which also calibrates the review classifier) are compared by cross-validated NLL within that part,
the best refitted on all of it and folded into the head.
The held-out set only reports; it chooses nothing.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentiment.default_model import PROJECT_DATA_FILE, SENTENCE_HEADS_FILE, artefact_dir
from sentiment.labels import CANONICAL_LABELS
from sentiment.metrics import (
    accuracy,
    classification_metrics,
    expected_calibration_error,
    macro_f1,
    top_label_ece,
    top_label_ece_interval,
)
from sentiment.model import Prediction, SentimentModel
from sentiment.package_data import ASPECT_SENTENCES, COMPLAINT_SENTENCES, package_path
from sentiment.single_pass import SentenceHeads, heads_to_json, pool_spans
from sentiment.training.calibration import (
    CALIBRATORS,
    Calibration,
    fit_calibration,
    fit_temperature_logits,
)
from sentiment.training.data import split_of

# Hidden states pooled (0 is the embeddings), each L2-normalised and concatenated: the last layer
# (what the classifier reads) carries sentiment but little of the topic; the middle layers keep
# it, and the embeddings, frozen in training, keep the words themselves. The last layer alone
# reached held-out aspect F1 0.84, layers 0+2+4+6 0.94; all seven were chosen over 0+2+4+6,
# 0+2+3+4 and 0..4 by 5-fold cross-validated F1 and NLL on the training sentences.
LAYERS = (0, 1, 2, 3, 4, 5, 6)
SEED = 14
PENALTIES = (10.0, 30.0, 100.0, 300.0, 1000.0)
#: Sentences for the heads only (every row ``train``); see the data README.
HEADS_SENTENCES = ("data", "aspect", "heads_sentences.csv")
#: Share of cs_reviews.csv held out from the heads (with the complaints' ``heldout`` split).
HELDOUT_SHARE = 1 / 3
#: Shares of the training sentences kept for calibration, decided by a hash of the text so they
#: never change: RELEVANCE_SHARE calibrates both heads; sentiment-labelled sentences up to
#: SENTIMENT_SHARE calibrate the sentiment head and still train the relevance head.
RELEVANCE_SHARE = 0.2
SENTIMENT_SHARE = 0.3
ROLES = ("fit", "calibration", "sentiment_calibration")
CV_FOLDS = 5


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence; ``is_cs`` or ``label`` is None when that set does not say."""

    text: str
    is_cs: bool | None
    label: str | None
    split: str  # train, eval (aspect held out) or heldout (complaints and a share of cs_reviews)
    source: str


def stable_share(text: str, salt: str) -> float:
    """A number in [0, 1) fixed by the text (case and spacing ignored): splits that never move."""
    key = f"{salt}\0{' '.join(text.lower().split())}".encode()
    return int(hashlib.sha256(key).hexdigest()[:12], 16) / 16**12


def load_sentences(
    aspect: Path, complaints: Path, cs_reviews: Path | None, extra: Path | None = None
) -> list[Sentence]:
    """The labelled sets as Sentence rows (cs_reviews: HELDOUT_SHARE ``heldout``, the rest ``train``;
    ``extra``, the heads' own sentences, must be all ``train``)."""
    rows: list[Sentence] = []
    for row in _read(aspect):
        rows.append(Sentence(row["text"], row["is_cs"] == "1", None, row["split"], "aspect"))
    for row in _read(complaints):
        rows.append(Sentence(row["text"], row["is_cs"] == "1", row["label"], row["split"], "complaints"))
    if extra is not None:
        for line, row in enumerate(_read(extra), start=2):
            if row["split"] != "train" or row["is_cs"] not in ("0", "1"):
                raise ValueError(f"{extra.name} line {line}: split must be train and is_cs 0 or 1")
            rows.append(Sentence(row["text"], row["is_cs"] == "1", row["label"], "train", "heads"))
    if cs_reviews is not None and cs_reviews.is_file():
        for row in _read(cs_reviews):
            split = "heldout" if stable_share(row["text"], "heldout") < HELDOUT_SHARE else "train"
            rows.append(Sentence(row["text"], None, row["label"], split, "cs_reviews"))
    bad = [r for r in rows if r.label is not None and r.label not in CANONICAL_LABELS]
    if bad:
        raise ValueError(f"unknown sentiment label {bad[0].label!r} in {bad[0].source}")
    return rows


def calibration_role(row: Sentence) -> str:
    """One of ROLES for a training sentence, by a hash of its text (see RELEVANCE_SHARE)."""
    share = stable_share(row.text, "calibration")
    if share < RELEVANCE_SHARE:
        return "calibration"
    return "sentiment_calibration" if row.label is not None and share < SENTIMENT_SHARE else "fit"


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def features(
    model: SentimentModel, sentences: Sequence[str], contexts: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Prediction]]:
    """(pooled states, index of the sentence each row is, row read alone, the classifier's
    prediction for each sentence read alone) for sentences alone, plus in pseudo-reviews when
    ``contexts``; a sentence with no token inside its text gives no row. The predictions come
    from the same forward pass, so evaluating the review classifier needs no second one."""
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
    predictions, pooled, read = pool_spans(model, encoded, spans, LAYERS, batch_size=64)
    index = np.array([i for group in owners for i in group], dtype=np.int64)
    alone = np.arange(len(index)) < len(sentences)
    return pooled[read], index[read], alone[read], predictions[: len(sentences)]


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


def _fit_logistic(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
    """Logistic regression as a two-class softmax: (weights, bias) of the log-odds of y = 1."""
    w2, b2 = fit_softmax(x, np.stack([1 - y, y], axis=1), penalty)
    return w2[1] - w2[0], float(b2[1] - b2[0])


def grouped_folds(groups: np.ndarray) -> Iterator[np.ndarray]:
    """The test mask of each of CV_FOLDS folds by ``groups`` (a sentence alone and in context share
    a group, so no sentence is on both sides); a fold with nothing to test or to fit on is skipped."""
    folds = groups % CV_FOLDS
    for k in range(CV_FOLDS):
        test = folds == k
        if test.any() and not test.all():
            yield test


def _cv_logistic_nll(x: np.ndarray, y: np.ndarray, groups: np.ndarray, penalty: float) -> float:
    """NLL of _fit_logistic fitted on CV_FOLDS-1 folds and scored on the last (grouped_folds)."""
    losses = np.zeros(len(y))
    for test in grouped_folds(groups):
        w, b = _fit_logistic(x[~test], y[~test], penalty)
        logit = x[test] @ w + b
        losses[test] = np.logaddexp(0.0, -logit) * y[test] + np.logaddexp(0.0, logit) * (1 - y[test])
    return float(losses.mean())


def nll(probs: np.ndarray, gold: np.ndarray) -> float:
    """Mean negative log-likelihood of the gold label indices."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, 1.0))))


def cross_validated_nll(logits: np.ndarray, gold: np.ndarray, groups: np.ndarray, method: str) -> float:
    """NLL of ``method`` fitted on CV_FOLDS-1 folds and scored on the last (grouped_folds)."""
    losses = np.zeros(len(gold))
    for test in grouped_folds(groups):
        fitted = fit_calibration(logits[~test], gold[~test], method)
        p = fitted.probabilities(logits[test])
        losses[test] = -np.log(np.clip(p[np.arange(int(test.sum())), gold[test]], 1e-12, 1.0))
    return float(losses.mean())


def default_cs_reviews(model_dir: Path | None) -> Path:
    """The model's own cs_reviews.csv, else the default model's (the recipe reads that one)."""
    own = Path(model_dir) / PROJECT_DATA_FILE if model_dir is not None else None
    return own if own is not None and own.is_file() else artefact_dir() / PROJECT_DATA_FILE


def train_heads(
    model_dir: Path | None = None,
    out: Path | None = None,
    *,
    aspect: Path | None = None,
    complaints: Path | None = None,
    cs_reviews: Path | None = None,
    extra: Path | None = None,
    threads: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fit both heads, evaluate them, write the heads file; returns the evaluation record.

    ``out`` is the heads file (a ``.json`` path), or a directory to write ``sentence_heads.json``
    into (default: the model directory, next to the weights). ``extra``: the heads' own
    sentences (default: HEADS_SENTENCES)."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    model = SentimentModel.load(model_dir, device="cpu")
    target = Path(out) if out is not None else Path(model_dir or artefact_dir())
    if out is None or target.is_dir() or target.suffix != ".json":
        target = target / SENTENCE_HEADS_FILE
    cs_path = cs_reviews if cs_reviews is not None else default_cs_reviews(model_dir)
    rows = load_sentences(
        aspect or package_path(*ASPECT_SENTENCES),
        complaints or package_path(*COMPLAINT_SENTENCES),
        cs_path,
        extra or package_path(*HEADS_SENTENCES),
    )
    rng = np.random.default_rng(SEED)
    train_rows = [r for r in rows if r.split == "train"]
    by_role = {role: [r for r in train_rows if calibration_role(r) == role] for role in ROLES}
    if not by_role["fit"] or not any(r.is_cs is not None for r in by_role["calibration"]):
        raise ValueError("too few training sentences: need fit rows and relevance calibration rows")
    if not any(r.label is not None for role in ROLES[1:] for r in by_role[role]):
        raise ValueError("too few training sentences: need sentiment-labelled calibration rows")
    teacher = {
        r.text: np.array(
            [p.probabilities.get(label, 0.0) if p.probabilities else 1 / 3 for label in CANONICAL_LABELS]
        )
        for r, p in zip(train_rows, model.predict([r.text for r in train_rows]), strict=True)
    }
    shape = SentenceHeads(np.zeros(1), 0.0, 1.0, np.zeros((3, 1)), np.zeros(3), 1.0, layers=LAYERS)
    read = {
        role: features(model, [r.text for r in by_role[role]], True, rng)[:2]
        for role in ROLES
        if by_role[role]
    }

    def block(*roles: str) -> tuple[list[Sentence], np.ndarray, np.ndarray]:
        """Rows of these roles, their prepared features and each feature row's index into the rows."""
        chosen: list[Sentence] = []
        xs, index = [], []
        for role in roles:
            if role in read:
                xs.append(shape.prepare(read[role][0]))
                index.append(read[role][1] + len(chosen))
                chosen.extend(by_role[role])
        return chosen, np.vstack(xs), np.concatenate(index)

    fit_rows, x_fit, i_fit = block("fit")  # sentence sentiment
    cal_rows, x_cal, i_cal = block("calibration", "sentiment_calibration")
    cs_fit_rows, x_cs_fit, i_cs_fit = block("fit", "sentiment_calibration")  # relevance
    cs_cal_rows, x_cs_cal, i_cs_cal = block("calibration")
    mu, sd = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-6

    def z(x: np.ndarray) -> np.ndarray:
        return (x - mu) / sd

    # customer-service relevance: rows that say; a two-class softmax is a logistic model
    cs_fit = np.array([cs_fit_rows[i].is_cs is not None for i in i_cs_fit])
    y_fit = np.array([bool(cs_fit_rows[i].is_cs) for i in i_cs_fit], dtype=np.float64)
    cs_cal = np.array([cs_cal_rows[i].is_cs is not None for i in i_cs_cal])
    y_cal = np.array([bool(cs_cal_rows[i].is_cs) for i in i_cs_cal], dtype=np.float64)
    x_rel, y_rel, g_rel = z(x_cs_fit[cs_fit]), y_fit[cs_fit], i_cs_fit[cs_fit]
    cv_nll = {pen: _cv_logistic_nll(x_rel, y_rel, g_rel, pen) for pen in PENALTIES}
    penalty = min(PENALTIES, key=lambda pen: cv_nll[pen])
    cs_w, cs_b = _fit_logistic(x_rel, y_rel, penalty)
    cs_logit = z(x_cs_cal[cs_cal]) @ cs_w + cs_b
    cs_t = fit_temperature_logits(np.stack([np.zeros_like(cs_logit), cs_logit], axis=1), y_cal[cs_cal])

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
    labelled = np.array([cal_rows[i].label is not None for i in i_cal])
    gold = t_cal[labelled].argmax(axis=1)
    groups = i_cal[labelled]
    fitted = {pen: fit_softmax(z(x_fit), t_fit, pen) for pen in PENALTIES}

    def logits(pen: float, x: np.ndarray) -> np.ndarray:
        w, b = fitted[pen]
        return z(x) @ w.T + b

    # the penalty whose temperature-scaled head best predicts the real labels of the calibration share
    labelled_logits = {pen: logits(pen, x_cal[labelled]) for pen in PENALTIES}
    scaled = {pen: fit_calibration(labelled_logits[pen], gold, "temperature") for pen in PENALTIES}
    st_pen = min(PENALTIES, key=lambda pen: nll(scaled[pen].probabilities(labelled_logits[pen]), gold))
    st_w, st_b = fitted[st_pen]
    cal_logits = labelled_logits[st_pen]
    cv = {m: cross_validated_nll(cal_logits, gold, groups, m) for m in CALIBRATORS}
    method = min(CALIBRATORS, key=lambda m: cv[m])
    calibrations = {m: fit_calibration(cal_logits, gold, m) for m in CALIBRATORS}

    # what calibrating on the distilled targets too (soft NLL over the whole share) would give
    distilled_t = fit_temperature_logits(logits(st_pen, x_cal), t_cal)
    fit_seconds = time.perf_counter() - started

    def heads_with(calibration: Calibration, temperature: float = 1.0) -> SentenceHeads:
        if calibration.method in ("none", "temperature"):  # keep the weights, the scale is 1/T
            w, b, t = st_w, st_b, temperature / float(calibration.scale[0])
        else:
            w, b, t = st_w * calibration.scale[:, None], st_b * calibration.scale + calibration.shift, 1.0
        return SentenceHeads(
            cs_weights=cs_w / sd,
            cs_bias=float(cs_b - (cs_w / sd) @ mu),
            cs_temperature=cs_t,
            sentiment_weights=w / sd[None, :],
            sentiment_bias=b - (w / sd[None, :]) @ mu,
            sentiment_temperature=t,
            layers=LAYERS,
        )

    heads = heads_with(calibrations[method])
    variants = {f"calibrated_{m}": heads_with(c) for m, c in calibrations.items()}
    variants["temperature_on_distilled"] = heads_with(calibrations["none"], distilled_t)
    record = evaluate(model, heads, rows, rng, variants=variants)
    held = record["sentence_sentiment_heldout"]
    held["uncalibrated"] = held["variants"].pop("calibrated_none")
    cal_labels = [str(r.label) for r in cal_rows if r.label is not None]
    record["training"] = {
        "seconds": round(fit_seconds, 1),
        "threads": threads,
        "cs_reviews_file": cs_path.name,  # a name, not a machine's path: the file is committed
        "sentences": {role: len(rows_) for role, rows_ in by_role.items()},
        "cs_penalty": penalty,
        "cs_penalty_cv_nll": {str(pen): round(v, 4) for pen, v in cv_nll.items()},
        "layers": list(LAYERS),
        "sentiment_penalty": st_pen,
        "cs_temperature": round(cs_t, 4),
        "sentiment_temperature": round(heads.sentiment_temperature, 4),
        "sentiment_calibration": {
            "method": method,
            "chosen_by": f"{CV_FOLDS}-fold cross-validated NLL on the labelled calibration share",
            "sentences": len(cal_labels),
            "rows": int(len(gold)),  # each sentence alone and inside a pseudo-review
            "per_class": _per_class(cal_labels),
            "cv_nll": {m: round(v, 4) for m, v in cv.items()},
            "scale": [round(float(v), 4) for v in calibrations[method].scale],
            "shift": [round(float(v), 4) for v in calibrations[method].shift],
            "temperature_on_distilled": round(distilled_t, 4),
        },
    }
    heads = dataclasses.replace(heads, info={"evaluation": record})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(heads_to_json(heads), encoding="utf-8")
    log(json.dumps(record, indent=1))
    log(f"wrote {target} ({target.stat().st_size:,} bytes)")
    return record


def _sentiment_figures(probs: np.ndarray, truth: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the three labels), NLL and top-label ECE of sentence probabilities."""
    if not truth:
        return {"n": 0}
    predicted = [CANONICAL_LABELS[int(k)] for k in probs.argmax(axis=1)]
    gold = np.array([CANONICAL_LABELS.index(t) for t in truth])
    return {
        "n": len(truth),
        "accuracy": round(accuracy(list(truth), predicted), 4),
        "macro_f1": round(macro_f1(list(truth), predicted, CANONICAL_LABELS), 4),
        "nll": round(nll(probs, gold), 4),
        "ece": round(top_label_ece(probs, gold), 4),
    }


def _per_class(labels: Sequence[str | None]) -> dict[str, int]:
    return {label: sum(x == label for x in labels) for label in CANONICAL_LABELS}


def evaluate(
    model: SentimentModel,
    heads: SentenceHeads,
    rows: Sequence[Sentence],
    rng: np.random.Generator,
    variants: Mapping[str, SentenceHeads] | None = None,
) -> dict[str, Any]:
    """Held-out figures: aspect F1/ECE (alone and in context); sentence sentiment on every held-out
    labelled sentence (complaints ``heldout`` and the held-out share of cs_reviews), alone and in
    context, next to the review classifier reading each sentence and to any ``variants`` of the
    heads; and the complaints alone, as first reported."""
    aspect_eval = [r for r in rows if r.split == "eval" and r.is_cs is not None]
    record: dict[str, Any] = {}
    for name, contexts in (("aspect_alone", False), ("aspect_in_context", True)):
        x, index, alone, _ = features(model, [r.text for r in aspect_eval], contexts, rng)
        if contexts:  # only the rows read inside pseudo-reviews
            x, index = x[~alone], index[~alone]
        p = heads.relevance(x)
        truth = [bool(aspect_eval[i].is_cs) for i in index]
        metrics = classification_metrics(truth, list(p >= heads.threshold))
        confidence = np.maximum(p, 1 - p)
        correct = (p >= heads.threshold) == np.array(truth)
        metrics["ece"] = expected_calibration_error(confidence.tolist(), correct.tolist())
        record[name] = {k: round(float(v), 4) for k, v in metrics.items()}

    held = [r for r in rows if r.split == "heldout" and r.label is not None]
    x_all, i_all, alone, before_predictions = features(model, [r.text for r in held], True, rng)
    x, index = x_all[alone], i_all[alone]
    probs = heads.sentiment(x)
    truth_labels = [str(held[i].label) for i in index]
    before = [p.label for p in before_predictions]
    before_probs = np.array(
        [[(p.probabilities or {}).get(lab, 1 / 3) for lab in CANONICAL_LABELS] for p in before_predictions]
    )
    figures = _sentiment_figures(probs, truth_labels)
    low, high = top_label_ece_interval(probs, [CANONICAL_LABELS.index(t) for t in truth_labels])
    unseen = np.array([held[i].source == "complaints" or split_of(held[i].text) != "train" for i in index])
    summary: dict[str, Any] = {
        **figures,
        "ece_interval_90": [round(low, 4), round(high, 4)],
        "per_class": _per_class(truth_labels),
        "sources": {s: sum(held[i].source == s for i in index) for s in sorted({r.source for r in held})},
        "unread": len(held) - len(index),
        "in_context": _sentiment_figures(
            heads.sentiment(x_all[~alone]), [str(held[i].label) for i in i_all[~alone]]
        ),
        "not_in_review_model_training": {
            **_sentiment_figures(probs[unseen], [t for t, u in zip(truth_labels, unseen, strict=True) if u]),
            "per_class": _per_class([t for t, u in zip(truth_labels, unseen, strict=True) if u]),
        },
        "review_model": _sentiment_figures(before_probs[index], truth_labels),
    }
    if variants:
        summary["variants"] = {
            name: _sentiment_figures(v.sentiment(x), truth_labels) for name, v in variants.items()
        }
    record["sentence_sentiment_heldout"] = summary

    complaints = np.array([held[i].source == "complaints" for i in index])
    c_index = index[complaints]
    c_probs = probs[complaints]
    after = [CANONICAL_LABELS[int(k)] for k in c_probs.argmax(axis=1)]
    c_truth = [str(held[i].label) for i in c_index]
    negatives = [k for k, t in enumerate(c_truth) if t == "negative"]
    c_before = [before[i] for i in c_index]
    c_after = _sentiment_figures(c_probs, c_truth)
    record["complaints_heldout"] = {
        "n": len(c_index),
        "negative": len(negatives),
        "per_class": _per_class(c_truth),
        "negative_as_neutral_before": sum(c_before[k] == "neutral" for k in negatives),
        "negative_as_neutral_after": sum(after[k] == "neutral" for k in negatives),
        "accuracy_before": round(accuracy(c_truth, c_before), 4),
        "accuracy_after": c_after["accuracy"],
        "macro_f1_after": c_after["macro_f1"],
        "sentiment_ece_after": c_after["ece"],
        "relevance_f1": round(
            classification_metrics(
                [bool(held[i].is_cs) for i in c_index],
                list(heads.relevance(x[complaints]) >= heads.threshold),
            )["f1"],
            4,
        ),
    }
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train the heads of the default model (or of --model-dir) and write them."""
    parser = argparse.ArgumentParser(prog="python -m sentiment.training.sentence_heads", description=__doc__)
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="model directory (default: the default model)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="heads file or directory to write (default: the model directory)",
    )
    parser.add_argument(
        "--cs-reviews", type=Path, default=None, help="labelled sentences text,label (default: the model's)"
    )
    parser.add_argument(
        "--heads-sentences",
        type=Path,
        default=None,
        help="extra training sentences text,is_cs,label,split,note (default: the package's)",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    train_heads(
        args.model_dir, args.out, cs_reviews=args.cs_reviews, extra=args.heads_sentences, threads=args.threads
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
