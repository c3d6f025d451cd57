"""One encoder pass per review: review sentiment, sentence customer-service relevance and sentiment.

Why: the three-pass path (sentiment.aspect) encodes a review with the classifier, its sentences
again with a second encoder, and the customer-service sentences a third time. Here the review is
tokenised once (windows for long reviews, as ``predict`` does), the fine-tuned classifier runs once,
and everything is read from that forward pass:

* the review's sentiment: the classifier's own head on the pooled output, so it equals ``predict``;
* each sentence's hidden state: the mean of the hidden states (the layers the heads file names,
  concatenated) of the tokens inside the sentence's character span (token offsets from the same tokenizer call; overlapping windows
  contribute each occurrence), pooled with one ``index_add`` per batch, no loop per token;
* two small calibrated heads on that state (``sentence_heads.json`` next to the model weights,
  hashed into the model revision): customer-service relevance (logistic) and sentence sentiment
  (3-way softmax), each calibrated on held-back sentences (a temperature; for sentence sentiment
  the map chosen there, e.g. a bias per class, is folded into the weights);
* the review's ``cs`` and ``other`` parts: character-weighted means of the sentence sentiment over
  the customer-service sentences and the rest. When one part is the whole review (one sentence,
  or every sentence on one side), that part *is* the review's prediction, so a one-sentence
  review's part equals ``predict`` on the whole text.

A plain Hugging Face classifier has no heads file: ``SinglePassScorer.for_model`` returns None and
callers keep the three-pass path (reputation.scoring.job does). So does the ONNX Runtime backend,
which does not hand hidden states out. ``python -m sentiment.training.sentence_heads`` (or
``reputation model train-heads``) trains the heads.

Flags: ``sentences_unaligned`` when a split sentence could not be found in the text (it then gets
no relevance and no sentiment and counts as not customer service), ``sentence_unread`` when a
sentence has no token inside the windows read (e.g. only characters the tokenizer drops).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentiment.aspect import CS_THRESHOLD, AspectResult, aspect_result
from sentiment.default_model import SENTENCE_HEADS_FILE
from sentiment.labels import CANONICAL_LABELS
from sentiment.limits import MAX_TEXT_CHARS
from sentiment.model import Encoded, Prediction, SentimentModel
from sentiment.sentences import split_sentences

HEADS_FORMAT = 1
UNALIGNED_FLAG = "sentences_unaligned"
UNREAD_FLAG = "sentence_unread"
#: Signed value of each canonical label (negative, neutral, positive), as the review score uses.
_LABEL_VALUES = np.array([-1.0, 0.0, 1.0])
# Code points Python's str.split() treats as whitespace (what split_sentences collapses).
_WHITESPACE = np.array(
    [*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
     0x202F, 0x205F, 0x3000],
    dtype=np.uint32,
)  # fmt: skip


_RECORD_KEYS = ("cs", "sentiment", "format", "dim", "threshold", "layers", "normalize", "labels")


class SentenceHeadsError(ValueError):
    """The heads file is missing, unreadable or does not fit the encoder; the message names it."""


@dataclass(frozen=True)
class SentenceHeads:
    """Calibrated linear heads over span-pooled hidden states (standardisation folded in)."""

    cs_weights: np.ndarray  # (d,)
    cs_bias: float
    cs_temperature: float
    sentiment_weights: np.ndarray  # (3, d), rows in CANONICAL_LABELS order
    sentiment_bias: np.ndarray  # (3,)
    sentiment_temperature: float
    threshold: float = CS_THRESHOLD
    layers: tuple[int, ...] = (-1,)  # hidden-state layers pooled and concatenated (-1: the last)
    normalize: bool = True  # each layer's pooled state scaled to unit length before the heads
    info: dict[str, Any] = field(default_factory=dict)

    def prepare(self, pooled: np.ndarray) -> np.ndarray:
        """The heads' input: pooled states, each layer's part L2-normalised when ``normalize``."""
        x = pooled.astype(np.float64)
        if not self.normalize or len(x) == 0:
            return x
        parts = x.reshape(len(x), len(self.layers), -1)
        norms = np.linalg.norm(parts, axis=2, keepdims=True)
        return (parts / np.maximum(norms, 1e-12)).reshape(len(x), -1)

    @property
    def dim(self) -> int:
        return int(self.cs_weights.shape[0])

    def relevance(self, pooled: np.ndarray) -> np.ndarray:
        """Probability that each pooled sentence is about customer service."""
        z = (self.prepare(pooled) @ self.cs_weights + self.cs_bias) / self.cs_temperature
        return np.exp(-np.logaddexp(0.0, -z))

    def sentiment(self, pooled: np.ndarray) -> np.ndarray:
        """(n, 3) sentence sentiment probabilities over negative, neutral, positive."""
        z = (
            self.prepare(pooled) @ self.sentiment_weights.T + self.sentiment_bias
        ) / self.sentiment_temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def heads_to_json(heads: SentenceHeads) -> str:
    """The heads file's text: small (a few thousand numbers), diffable, and versioned by content."""
    record = {
        "format": HEADS_FORMAT,
        **heads.info,
        "dim": heads.dim,
        "threshold": heads.threshold,
        "layers": list(heads.layers),
        "normalize": heads.normalize,
        "labels": list(CANONICAL_LABELS),
        "cs": {
            "temperature": round(heads.cs_temperature, 6),
            "bias": float(f"{heads.cs_bias:.8g}"),
            "weights": [float(f"{w:.7g}") for w in heads.cs_weights],
        },
        "sentiment": {
            "temperature": round(heads.sentiment_temperature, 6),
            "bias": [float(f"{b:.8g}") for b in heads.sentiment_bias],
            "weights": [[float(f"{w:.7g}") for w in row] for row in heads.sentiment_weights],
        },
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


def load_heads(path: Path) -> SentenceHeads:
    """Read a heads file written by heads_to_json."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != HEADS_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {HEADS_FORMAT}")
        cs, st = data["cs"], data["sentiment"]
        heads = SentenceHeads(
            cs_weights=np.asarray(cs["weights"], dtype=np.float64),
            cs_bias=float(cs["bias"]),
            cs_temperature=float(cs["temperature"]),
            sentiment_weights=np.asarray(st["weights"], dtype=np.float64),
            sentiment_bias=np.asarray(st["bias"], dtype=np.float64),
            sentiment_temperature=float(st["temperature"]),
            threshold=float(data.get("threshold", CS_THRESHOLD)),
            layers=tuple(int(x) for x in data.get("layers", [-1])),
            normalize=bool(data.get("normalize", False)),
            info={k: v for k, v in data.items() if k not in _RECORD_KEYS},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SentenceHeadsError(f"cannot read sentence heads {path}: {exc}") from exc
    d = heads.dim
    if (
        heads.cs_weights.ndim != 1
        or heads.sentiment_weights.shape != (3, d)
        or heads.sentiment_bias.shape != (3,)
    ):
        raise SentenceHeadsError(f"{path}: head shapes do not fit together (dim {d})")
    if heads.cs_temperature <= 0 or heads.sentiment_temperature <= 0:
        raise SentenceHeadsError(f"{path}: temperatures must be positive")
    return heads


def heads_digest(path: Path) -> str:
    """Short content hash of a heads file (for reports; the model revision already covers it)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def sentence_spans(text: str) -> tuple[list[str], np.ndarray, bool]:
    """Sentences of ``text`` (sentiment.sentences) with their (start, end) character spans in it.

    split_sentences collapses whitespace, so each sentence is found by its non-whitespace
    characters, in order. Returns (sentences, spans (n, 2), aligned); a sentence that cannot be
    found gets the empty span (-1, -1) and ``aligned`` is False.
    """
    sentences = split_sentences(text)
    spans = np.full((len(sentences), 2), -1, dtype=np.int64)
    if not sentences:
        return sentences, spans, True
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    kept = np.flatnonzero(~np.isin(codes, _WHITESPACE))  # positions of non-whitespace characters
    compact = "".join(text.split())
    cursor, aligned = 0, True
    for i, sentence in enumerate(sentences):
        needle = "".join(sentence.split())
        at = compact.find(needle, cursor) if needle else -1
        if at < 0:
            aligned = False
            continue
        spans[i] = (kept[at], kept[at + len(needle) - 1] + 1)
        cursor = at + len(needle)
    return sentences, spans, aligned


def token_sentences(offsets: np.ndarray, spans: np.ndarray, base: int) -> np.ndarray:
    """Global sentence index per token of one window (-1: special token or between sentences)."""
    starts, ends = offsets[:, 0], offsets[:, 1]
    if len(spans) == 0:
        return np.full(len(starts), -1, dtype=np.int64)
    order = np.argsort(spans[:, 0], kind="stable")
    sorted_starts = spans[order, 0]
    pos = np.searchsorted(sorted_starts, starts, side="right") - 1
    safe = np.clip(pos, 0, None)
    idx = order[safe]
    inside = (ends > starts) & (pos >= 0) & (spans[idx, 0] >= 0) & (starts < spans[idx, 1])
    return np.where(inside, base + idx, -1)


@dataclass
class ReviewReading:
    """Everything the scoring job stores about one review, from one forward pass."""

    overall: Prediction
    aspect: AspectResult
    cs: Prediction | None  # None when no sentence is about customer service
    other: Prediction | None  # None when every sentence is; ``overall`` when none is
    sentence_probabilities: np.ndarray  # (n_sentences, 3) sentence sentiment, CANONICAL_LABELS order


class SinglePassScorer:
    """A SentimentModel plus its sentence heads; see the module docstring."""

    def __init__(self, model: SentimentModel, heads: SentenceHeads, heads_path: Path | None = None) -> None:
        hidden = int(getattr(getattr(model.model, "config", None), "hidden_size", 0)) * len(heads.layers)
        if hidden and hidden != heads.dim:
            raise SentenceHeadsError(f"heads are {heads.dim}-dim but the encoder gives {hidden}-dim states")
        self.model = model
        self.heads = heads
        self.heads_path = heads_path

    @classmethod
    def for_model(cls, model: SentimentModel) -> SinglePassScorer | None:
        """The scorer when the model ships sentence heads and exposes hidden states, else None."""
        if model.directory is None or not model.exposes_hidden_states:
            return None
        path = Path(model.directory) / SENTENCE_HEADS_FILE
        if not path.is_file():
            return None
        return cls(model, load_heads(path), path)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def read(
        self,
        texts: Sequence[str | bytes | None],
        batch_size: int = 32,
        max_chars: int | None = MAX_TEXT_CHARS,
    ) -> list[ReviewReading]:
        """One reading per text, in input order; one tokenisation and one forward pass for all."""
        encoded = self.model.encode(texts, max_chars, offsets=True)
        split = [
            sentence_spans(text) if "empty" not in flags else ([], np.zeros((0, 2), dtype=np.int64), True)
            for text, flags in encoded.prepared
        ]
        overall, pooled, read = pool_spans(
            self.model, encoded, [s[1] for s in split], self.heads.layers, batch_size
        )
        relevance = np.where(read, self.heads.relevance(pooled), 0.0)
        probs = self.heads.sentiment(pooled)
        bases = np.cumsum([0] + [len(s[0]) for s in split])
        return [
            self._assemble(overall[i], *split[i], relevance[bases[i] : bases[i + 1]],
                           probs[bases[i] : bases[i + 1]], read[bases[i] : bases[i + 1]])
            for i in range(len(split))
        ]  # fmt: skip

    def _assemble(
        self,
        overall: Prediction,
        sentences: list[str],
        spans: np.ndarray,
        aligned: bool,
        relevance: np.ndarray,
        probs: np.ndarray,
        read: np.ndarray,
    ) -> ReviewReading:
        if not aligned:
            overall.flags.append(UNALIGNED_FLAG)
        if len(read) and not read.all():
            overall.flags.append(UNREAD_FLAG)
        aspect = aspect_result(sentences, relevance.tolist(), self.heads.threshold)
        is_cs = (relevance >= self.heads.threshold) & read
        if not is_cs.any():
            return ReviewReading(overall, aspect, None, overall if sentences else None, probs)
        if is_cs.all():
            return ReviewReading(overall, aspect, overall, None, probs)
        lengths = np.array([len(s) for s in sentences], dtype=np.float64)
        rest = ~is_cs & read
        other = _mean_prediction(probs[rest], lengths[rest]) if rest.any() else None
        return ReviewReading(overall, aspect, _mean_prediction(probs[is_cs], lengths[is_cs]), other, probs)


def _mean_prediction(probs: np.ndarray, weights: np.ndarray) -> Prediction:
    """Character-weighted mean of sentence distributions as one Prediction."""
    mean = (probs * weights[:, None]).sum(axis=0) / max(float(weights.sum()), 1.0)
    distribution = {label: float(p) for label, p in zip(CANONICAL_LABELS, mean, strict=True)}
    label = max(distribution, key=lambda name: distribution[name])
    return Prediction(label, distribution, float(np.clip(mean @ _LABEL_VALUES, -1.0, 1.0)), 1)


def pool_spans(
    model: SentimentModel,
    encoded: Encoded,
    spans: Sequence[np.ndarray],
    layers: Sequence[int],
    batch_size: int = 32,
) -> tuple[list[Prediction], np.ndarray, np.ndarray]:
    """Classify encoded texts and mean-pool the hidden states inside character spans, in one pass.

    ``encoded`` comes from ``model.encode(..., offsets=True)``; ``spans[i]`` holds text i's
    (start, end) spans ((-1, -1) for none). Returns (predictions, pooled (n_spans, d * len(layers)),
    read mask: spans that got at least one token).
    """
    windows = encoded.windows
    bases = np.cumsum([0] + [len(s) for s in spans])
    n_spans = int(bases[-1])
    segments: list[np.ndarray] = []
    if windows is not None:
        if windows.offsets is None:
            raise ValueError("pool_spans needs windows encoded with offsets=True")
        for w, offsets in enumerate(windows.offsets):
            text_index = encoded.todo[int(windows.owner[w])]
            segments.append(token_sentences(offsets, spans[text_index], int(bases[text_index])))
    device = model.device
    width = int(model.model.config.hidden_size) * len(layers) if n_spans else 1
    sums = torch.zeros((max(n_spans, 1), width), dtype=torch.float32, device=device)
    counts = torch.zeros(max(n_spans, 1), dtype=torch.float32, device=device)

    def pool(batch: np.ndarray, hidden: tuple[torch.Tensor, ...]) -> None:
        seg = np.full((len(batch), hidden[-1].shape[1]), -1, dtype=np.int64)
        for row, w in enumerate(batch):
            seg[row, : len(segments[w])] = segments[w]
        flat = torch.from_numpy(seg.reshape(-1)).to(device)
        chosen = flat >= 0
        if not bool(chosen.any()):
            return
        index = flat[chosen]
        states = torch.cat([hidden[layer] for layer in layers], dim=-1)
        sums.index_add_(0, index, states.reshape(-1, states.shape[-1])[chosen].float())
        counts.index_add_(0, index, torch.ones_like(index, dtype=torch.float32))

    overall = model.classify_encoded(encoded, batch_size, on_hidden=pool if n_spans else None)
    count = counts.cpu().numpy()[:n_spans].astype(np.float64)
    pooled = sums.cpu().numpy()[:n_spans].astype(np.float64) / np.maximum(count, 1.0)[:, None]
    return overall, pooled, count > 0
