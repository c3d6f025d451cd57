"""Held-out metrics for the default model, and the VADER baseline on the same rows.

Three-class accuracy and macro-F1 on every held-out row; binary accuracy on the positive and
negative rows of review-like sources, where the model's call is whichever of p(positive) and
p(negative) is larger (neutral cannot win a two-way question).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sentiment.training.data import LABELS, REVIEW_SOURCES, Example

VADER_THRESHOLD = 0.05  # VADER's documented cut-off on the compound score


def accuracy(gold: Sequence[int], pred: Sequence[int]) -> float:
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold))


def macro_f1(gold: Sequence[int], pred: Sequence[int], n_classes: int) -> float:
    """Unweighted mean of per-class F1 (a class never predicted nor present scores 0)."""
    scores = []
    for c in range(n_classes):
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        fp = sum(g != c and p == c for g, p in zip(gold, pred, strict=True))
        fn = sum(g == c and p != c for g, p in zip(gold, pred, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / n_classes


@torch.inference_mode()
def predict_probs(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 64, max_length: int = 256
) -> torch.Tensor:
    """Softmax probabilities [N, 3] in the model's label order, batched by length.

    256 tokens hold the whole of every held-out text (the longest has 217), so each is judged
    on all of its words, as the scoring job judges a review."""
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), model.config.num_labels)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(model.device)
        out[idx] = model(**enc).logits.float().softmax(-1).cpu()
    return out


def label_order(model: Any) -> list[str]:
    """The model's labels by output index, from config.id2label."""
    id2label = model.config.id2label
    return [str(id2label[i]).lower() for i in range(len(id2label))]


def heldout_metrics(
    probs: torch.Tensor, labels: Sequence[str], examples: Sequence[Example]
) -> dict[str, Any]:
    """The model card's numbers from predicted probabilities on held-out rows."""
    gold = [LABELS.index(ex.label) for ex in examples]
    pred = [LABELS.index(labels[i]) for i in probs.argmax(-1).tolist()]
    pos, neg = labels.index("positive"), labels.index("negative")
    review = [i for i, ex in enumerate(examples) if ex.source in REVIEW_SOURCES and ex.label != "neutral"]
    binary_pred = [bool(probs[i, pos] >= probs[i, neg]) for i in review]
    binary_gold = [examples[i].label == "positive" for i in review]
    return {
        "rows": len(examples),
        "accuracy": round(accuracy(gold, pred), 4),
        "macro_f1": round(macro_f1(gold, pred, len(LABELS)), 4),
        "review_binary_rows": len(review),
        "review_binary_accuracy": round(accuracy(binary_gold, binary_pred), 4),
        "per_source_accuracy": _per_source(examples, gold, pred),
    }


def _per_source(examples: Sequence[Example], gold: Sequence[int], pred: Sequence[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for source in sorted({ex.source for ex in examples}):
        idx = [i for i, ex in enumerate(examples) if ex.source == source]
        out[source] = round(accuracy([gold[i] for i in idx], [pred[i] for i in idx]), 4)
    return out


def vader_metrics(examples: Sequence[Example]) -> dict[str, Any]:
    """VADER on the same rows: ±0.05 compound thresholds for three classes, its sign for binary."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    compound = [analyzer.polarity_scores(ex.text)["compound"] for ex in examples]
    gold = [LABELS.index(ex.label) for ex in examples]
    pred = [
        LABELS.index(
            "positive" if c >= VADER_THRESHOLD else "negative" if c <= -VADER_THRESHOLD else "neutral"
        )
        for c in compound
    ]
    review = [i for i, ex in enumerate(examples) if ex.source in REVIEW_SOURCES and ex.label != "neutral"]
    return {
        "rows": len(examples),
        "accuracy": round(accuracy(gold, pred), 4),
        "macro_f1": round(macro_f1(gold, pred, len(LABELS)), 4),
        "review_binary_rows": len(review),
        "review_binary_accuracy": round(
            accuracy([examples[i].label == "positive" for i in review], [compound[i] >= 0 for i in review]), 4
        ),
        "per_source_accuracy": _per_source(examples, gold, pred),
    }
