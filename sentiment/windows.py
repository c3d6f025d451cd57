"""Long texts as overlapping token windows, batched by length, aggregated back per text.

Why: a classifier sees at most ``max_length`` tokens. Truncating would silently drop
the end of long reviews (often where the verdict is), so every text is cut into
windows that overlap by ``stride`` tokens, each window is classified, and the window
probabilities are averaged per text weighted by window length. Sorting all windows by
length before batching keeps padding, and so wasted compute, small.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Windows:
    """All windows of a list of texts, in tokenizer order."""

    input_ids: list[list[int]]  # each with the model's special tokens
    owner: np.ndarray  # index of the text each window belongs to
    content_tokens: np.ndarray  # tokens per window without special tokens (aggregation weight)
    n_texts: int
    # (start, end) character offsets into the owner text per token; (0, 0) for special tokens.
    # Only when asked for (span pooling reads them; plain prediction does not need them).
    offsets: list[np.ndarray] | None = None

    def counts(self) -> np.ndarray:
        """Windows per text."""
        return np.bincount(self.owner, minlength=self.n_texts)


def default_stride(max_length: int) -> int:
    """Overlap between consecutive windows: a quarter of the window."""
    return max(1, max_length // 4)


def tokenize_windows(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    stride: int | None = None,
    *,
    offsets: bool = False,
) -> Windows:
    """Tokenize every text once (fast tokenizer, no padding) into overlapping windows.

    ``offsets`` also keeps each token's character span, from the same tokenizer call.
    """
    if stride is None:
        stride = default_stride(max_length)
    special = tokenizer.num_special_tokens_to_add()
    if max_length - special <= stride:
        raise ValueError(f"max_length {max_length} leaves no room for a stride of {stride} tokens")
    encoded = tokenizer(
        list(texts),
        add_special_tokens=True,
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        return_offsets_mapping=offsets,
    )
    input_ids = [list(ids) for ids in encoded["input_ids"]]
    owner = np.asarray(encoded["overflow_to_sample_mapping"], dtype=np.int64)
    content = np.asarray([max(len(ids) - special, 0) for ids in input_ids], dtype=np.float64)
    spans = (
        [np.asarray(o, dtype=np.int64).reshape(-1, 2) for o in encoded["offset_mapping"]] if offsets else None
    )
    return Windows(
        input_ids=input_ids, owner=owner, content_tokens=content, n_texts=len(texts), offsets=spans
    )


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None
) -> Iterator[np.ndarray]:
    """Indexes grouped into batches of similar length, longest first (fails fast on memory).

    A batch holds at most ``batch_size`` rows and, when ``max_tokens`` is set, at most that
    many padded tokens (rows times its longest, never fewer than one row): long windows then
    go in small batches whose activations stay in cache, short ones in full batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    sizes = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-sizes, kind="stable")
    start = 0
    while start < len(order):
        rows = batch_size
        if max_tokens is not None:
            rows = max(1, min(batch_size, max_tokens // max(1, int(sizes[order[start]]))))
        yield order[start : start + rows]
        start += rows


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest sequence in this batch only; returns ids and attention mask."""
    width = max(len(seq) for seq in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def aggregate(window_probs: np.ndarray, windows: Windows) -> np.ndarray:
    """Length-weighted mean of window probabilities per text; rows of texts without windows are NaN."""
    n_labels = window_probs.shape[1]
    weights = np.maximum(windows.content_tokens, 1.0)
    sums = np.zeros((windows.n_texts, n_labels), dtype=np.float64)
    np.add.at(sums, windows.owner, window_probs * weights[:, None])
    totals = np.zeros(windows.n_texts, dtype=np.float64)
    np.add.at(totals, windows.owner, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / totals[:, None]
