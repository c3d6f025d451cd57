"""Held-out figures of the default model's card, and of the VADER baseline on the same rows.

Three-class accuracy and macro-F1 on every held-out row; binary accuracy on the positive and
negative rows of review-like sources, where the model's call is whichever of p(positive) and
p(negative) is larger (neutral cannot win a two-way question). VADER answers both questions
with its documented thresholds (compound >= 0.05 positive, <= -0.05 negative, neutral between);
on the binary rows its neutral band takes no side and counts as an error, as in
`reputation evaluate` (both go through sentiment.labels.binary_side), and how many rows that
was is ``review_binary_no_side``. The metrics themselves are sentiment.metrics; VADER is
sentiment.vader_baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE, binary_side
from sentiment.metrics import accuracy, macro_f1
from sentiment.training.data import LABELS, REVIEW_SOURCES, Example
from sentiment.vader_baseline import VaderBaseline


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


def review_rows(examples: Sequence[Example]) -> list[int]:
    """Indices of the positive and negative rows of review-like sources (the binary question)."""
    return [i for i, ex in enumerate(examples) if ex.source in REVIEW_SOURCES and ex.label != "neutral"]


def heldout_metrics(
    probs: torch.Tensor, labels: Sequence[str], examples: Sequence[Example]
) -> dict[str, Any]:
    """The model card's numbers from predicted probabilities on held-out rows."""
    pred = [labels[i] for i in probs.argmax(-1).tolist()]
    pos, neg = labels.index("positive"), labels.index("negative")
    review = review_rows(examples)
    binary_pred: list[str | None] = [POSITIVE if probs[i, pos] >= probs[i, neg] else NEGATIVE for i in review]
    return _card(examples, pred, review, binary_pred)


def vader_metrics(examples: Sequence[Example]) -> dict[str, Any]:
    """VADER on the same rows: its thresholded label for three classes and for binary, where its
    neutral band takes no side and counts as an error (sentiment.labels.binary_side)."""
    predictions = VaderBaseline().predict([ex.text for ex in examples])
    pred = [NEUTRAL if p.label is None else p.label for p in predictions]
    review = review_rows(examples)
    binary_pred = [binary_side(predictions[i].label, predictions[i].probabilities, thresholded=True) for i in review]
    return _card(examples, pred, review, binary_pred)


def _card(
    examples: Sequence[Example], pred: Sequence[str], review: Sequence[int], binary_pred: Sequence[str | None]
) -> dict[str, Any]:
    """The figures; a binary call of None (no side taken) is an error, never dropped."""
    gold = [ex.label for ex in examples]
    binary_gold = [examples[i].label for i in review]
    return {
        "rows": len(examples),
        "accuracy": round(accuracy(gold, pred), 4),
        "macro_f1": round(macro_f1(gold, pred, LABELS), 4),
        "review_binary_rows": len(review),
        "review_binary_accuracy": round(accuracy(binary_gold, binary_pred), 4),
        "review_binary_no_side": sum(side is None for side in binary_pred),
        "per_source_accuracy": _per_source(examples, gold, pred),
    }


def _per_source(examples: Sequence[Example], gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for source in sorted({ex.source for ex in examples}):
        idx = [i for i, ex in enumerate(examples) if ex.source == source]
        out[source] = round(accuracy([gold[i] for i in idx], [pred[i] for i in idx]), 4)
    return out
