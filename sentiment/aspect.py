"""Is a sentence about customer service? A sentence-encoder with a small logistic head.

Reviews of a brand mix many aspects: the product, the price, delivery, the app, the store. Only
what people say about customer service (agents, hold times, chat, email replies, refunds and
complaints handling, escalations, callbacks, staff) tells us anything about the contact-centre
vendor behind the brand. Keyword lists fail on both sides ("the streaming service buffers" is not
customer service; "nobody ever rang me back" is), so each sentence is embedded with the packaged
all-MiniLM-L6-v2 encoder (mean pooling, L2 normalisation, as sentence-transformers does) and a
logistic-regression head trained on the package's ``data/aspect/cs_sentences.csv`` turns the
embedding into a relevance in [0, 1]. The head is package data (``aspect_head.json``); ``python -m
sentiment.training.aspect_head`` rebuilds it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.default_model import DefaultModelUnavailable, base_model_dir
from sentiment.limits import MAX_TEXT_CHARS, cap_text
from sentiment.package_data import ASPECT_HEAD, package_path
from sentiment.sentences import split_sentences

#: Sentence relevance at or above which a sentence counts as customer service. The head is a
#: calibrated logistic model, so 0.5 is the point where both readings are equally likely.
CS_THRESHOLD: float = 0.5

HEAD_PATH = package_path(*ASPECT_HEAD)
#: The encoder's window; sentence-transformers uses the same for all-MiniLM-L6-v2.
MAX_TOKENS = 256


class AspectModelError(RuntimeError):
    """The encoder or the head could not be loaded or does not fit together."""


@dataclass(frozen=True)
class AspectResult:
    """Customer-service reading of one review.

    ``cs_relevance`` is the share of the review's characters (sentence lengths, whitespace
    between sentences not counted) that lie in sentences whose relevance is at least
    ``CS_THRESHOLD``: 0.0 when nothing is about customer service, 1.0 when everything is.
    Weighting by length keeps a one-word aside from counting as much as a paragraph.
    """

    sentences: list[str]
    relevance: list[float]
    cs_sentences: list[str]
    cs_relevance: float


def default_encoder_dir() -> Path:
    """Where the packaged all-MiniLM-L6-v2 encoder lives (no download, ever)."""
    try:
        return base_model_dir()
    except DefaultModelUnavailable as exc:
        raise AspectModelError(str(exc)) from exc


def load_head(path: Path = HEAD_PATH) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Read the committed head: weight vector, bias, and its provenance record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        weights = np.asarray(data["weights"], dtype=np.float64)
        bias = float(data["bias"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AspectModelError(f"cannot read the customer-service head {path}: {exc}") from exc
    if weights.ndim != 1:
        raise AspectModelError(f"{path}: 'weights' must be a flat list of numbers")
    return weights, bias, data


def load_encoder(encoder_dir: str | Path | None = None, *,
                 device: str | None = None) -> tuple[Any, Any, str]:
    """Load tokenizer and encoder from local files only; pick the device once (CUDA if present)."""
    # torch and transformers only once an encoder is loaded: splitting and the head stay light.
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = Path(encoder_dir) if encoder_dir is not None else default_encoder_dir()
    if not path.is_dir():
        raise AspectModelError(f"encoder directory not found: {path}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no weight-loading bar in every job's log
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise AspectModelError(f"cannot load the sentence encoder from {path}: {exc}") from exc
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    model.to(device)
    model.eval()
    return model, tokenizer, device


class CustomerServiceDetector:
    """Scores sentences for customer-service relevance. Load once, call many times."""

    def __init__(self, model: Any, tokenizer: Any, device: str, weights: np.ndarray, bias: float,
                 head_info: dict[str, Any] | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.weights = weights
        self.bias = bias
        self.head_info = head_info or {}

    @classmethod
    def load(cls, encoder_dir: str | Path | None = None, *, device: str | None = None,
             head_path: str | Path | None = None) -> CustomerServiceDetector:
        """Load the encoder from local files (the packaged one by default) and the committed head.

        The device is chosen once here: CUDA when present, else CPU, unless ``device`` says.
        """
        model, tokenizer, device = load_encoder(encoder_dir, device=device)
        weights, bias, info = load_head(Path(head_path) if head_path is not None else HEAD_PATH)
        hidden = int(model.config.hidden_size)
        if weights.shape[0] != hidden:
            raise AspectModelError(
                f"head has {weights.shape[0]} weights but the encoder gives {hidden}-dim vectors"
            )
        return cls(model, tokenizer, device, weights, bias, info)

    def embed(self, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings, shape (len(sentences), dim), in input order.

        Sentences are batched by length so that padding stays short; order is restored after.
        """
        import torch  # as in load_encoder: off the import path of the light parts

        dim = int(self.model.config.hidden_size)
        out = np.zeros((len(sentences), dim), dtype=np.float32)
        if not sentences:
            return out
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.tokenizer(
                    [sentences[i] for i in idx], padding=True, truncation=True,
                    max_length=MAX_TOKENS, return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.float().cpu().numpy()
        return out

    def relevance(self, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Probability in [0, 1] that each sentence is about customer service.

        Empty or blank strings score 0.0 without touching the encoder.
        """
        scores = np.zeros(len(sentences), dtype=np.float64)
        keep = [i for i, s in enumerate(sentences) if s and s.strip()]
        if keep:
            vectors = self.embed([sentences[i] for i in keep], batch_size=batch_size)
            scores[keep] = head_probability(vectors, self.weights, self.bias)
        return scores

    def review_aspect(self, text: str) -> AspectResult:
        """Split one review into sentences and say which of them are about customer service."""
        return self.review_aspects([text])[0]

    def review_aspects(
        self, texts: Sequence[str], batch_size: int = 64, max_chars: int | None = MAX_TEXT_CHARS
    ) -> list[AspectResult]:
        """``review_aspect`` for many reviews with one encoder pass over all their sentences.

        Only the first ``max_chars`` characters of each text are split and read (limits.cap_text).
        """
        split = [split_sentences(cap_text(t or "", max_chars)[0]) for t in texts]
        flat = [s for sentences in split for s in sentences]
        scores = self.relevance(flat, batch_size=batch_size).tolist()
        results: list[AspectResult] = []
        pos = 0
        for sentences in split:
            rel = scores[pos : pos + len(sentences)]
            pos += len(sentences)
            results.append(aspect_result(sentences, rel))
        return results


def head_probability(vectors: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """Logistic head: sigmoid(vectors @ weights + bias), computed without overflow."""
    z = vectors.astype(np.float64) @ weights + bias
    return np.exp(-np.logaddexp(0.0, -z))


def aspect_result(sentences: list[str], relevance: list[float],
                  threshold: float = CS_THRESHOLD) -> AspectResult:
    """Assemble an AspectResult; ``cs_relevance`` is the CS share of the characters."""
    total = sum(len(s) for s in sentences)
    cs = [s for s, r in zip(sentences, relevance, strict=True) if r >= threshold]
    share = sum(len(s) for s in cs) / total if total else 0.0
    return AspectResult(list(sentences), [float(r) for r in relevance], cs, float(share))
