"""The two trained heads on the frozen encoder, and the features they read.

Tagger: BIO tags for organisation mentions, one per token. The encoder is uncased (it lower-cases
everything), so each token's hidden state is joined with a few facts about how its word is written
in the original text (capital first letter, all capitals, digits, first word of the sentence,
continuation piece, punctuation) before a small token-context convolution and a linear layer.

Pair classifier: one (vendor, brand) pair of a sentence, read from the sentence with the brand,
the vendor and every other organisation replaced by markers (see text.masked). Its features are the
mean of all token states, the mean over the brand marker and the mean over the vendor (marker or
pronouns); a two-layer network gives the six classes of types.LABELS.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from relations.encoder import Encoded

TAGS = ("O", "B", "I")
N_SHAPE = 7


def shape_features(text: str, encoded: Encoded) -> torch.Tensor:
    """Tokens x N_SHAPE facts about how each token's word is written in ``text``."""
    rows: list[list[float]] = []
    first_word_end = len(text) - len(text.lstrip())
    while first_word_end < len(text) and not text[first_word_end].isspace():
        first_word_end += 1
    for (start, end), special in zip(encoded.offsets, encoded.special, strict=True):
        if special or end <= start:
            rows.append([1.0, 0, 0, 0, 0, 0, 0])
            continue
        word_start = start
        while word_start > 0 and not text[word_start - 1].isspace():
            word_start -= 1
        word_end = end
        while word_end < len(text) and not text[word_end].isspace():
            word_end += 1
        word = text[word_start:word_end]
        letters = [ch for ch in word if ch.isalpha()]
        piece = text[start:end]
        rows.append([
            0.0,
            float(bool(letters) and letters[0].isupper()),
            float(len(letters) > 1 and all(ch.isupper() for ch in letters)),
            float(any(ch.isdigit() for ch in word)),
            float(start > 0 and not text[start - 1].isspace() and text[start - 1].isalnum()),
            float(word_start < first_word_end),
            float(not any(ch.isalnum() for ch in piece)),
        ])
    return torch.tensor(rows, dtype=torch.float32)


class TaggerHead(nn.Module):
    """Hidden states + shape features -> BIO logits per token, with two tokens of context each side.

    A convolution over neighbouring tokens, not a recurrent layer: it sees what a name's edges need
    (the capital after "at the", the "'s" after it) and trains in seconds on two CPU cores.
    """

    def __init__(self, hidden: int, width: int = 128, kernel: int = 5, dropout: float = 0.2) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(hidden + N_SHAPE, width), nn.GELU(), nn.Dropout(dropout))
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.out = nn.Linear(2 * width, len(TAGS))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)
        context = torch.nn.functional.gelu(self.conv((h * mask).transpose(1, 2))).transpose(1, 2)
        return self.out(torch.cat([h, context], dim=-1))


class PairHead(nn.Module):
    """Pair features -> logits over types.LABELS."""

    def __init__(self, hidden: int, n_labels: int, width: int = 128, dropout: float = 0.5) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(0.1), nn.Linear(3 * hidden, width), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(width, n_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def tagger_input(texts: Sequence[str], encoded: Sequence[Encoded]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded batch (texts x max tokens x features) and the true lengths."""
    lengths = torch.tensor([e.hidden.shape[0] for e in encoded], dtype=torch.long)
    width = int(lengths.max()) if len(encoded) else 0
    dim = encoded[0].hidden.shape[1] + N_SHAPE if encoded else N_SHAPE
    x = torch.zeros((len(encoded), width, dim))
    for row, (text, enc) in enumerate(zip(texts, encoded, strict=True)):
        n = enc.hidden.shape[0]
        x[row, :n] = torch.cat([enc.hidden, shape_features(text, enc)], dim=1)
    return x, lengths


def span_tokens(encoded: Encoded, spans: Sequence[tuple[int, int]]) -> list[int]:
    """Indices of the non-special tokens that overlap any of ``spans``."""
    return [i for i, ((s, e), special) in enumerate(zip(encoded.offsets, encoded.special, strict=True))
            if not special and e > s and any(s < b and a < e for a, b in spans)]


def pair_features(encoded: Encoded, target: Sequence[tuple[int, int]], vendor: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Mean of all token states, mean over the target's tokens, mean over the vendor's tokens."""
    hidden = encoded.hidden
    parts = [hidden.mean(dim=0)]
    for spans in (target, vendor):
        idx = span_tokens(encoded, spans)
        parts.append(hidden[idx].mean(dim=0) if idx else torch.zeros(hidden.shape[1]))
    return torch.cat(parts)


def decode_tags(probs: torch.Tensor, encoded: Encoded) -> list[tuple[int, int, float]]:
    """Character spans (start, end, confidence) from per-token tag probabilities (tokens x 3).

    An I after O starts a mention as a B would; confidence is the mean probability of the tags read.
    """
    spans: list[tuple[int, int, float]] = []
    current: list[tuple[int, int, float]] = []
    tags = probs.argmax(dim=1).tolist()

    def close() -> None:
        if current:
            spans.append((current[0][0], current[-1][1], sum(p for _, _, p in current) / len(current)))
            current.clear()

    for i, tag in enumerate(tags):
        (s, e), special = encoded.offsets[i], encoded.special[i]
        if special or e <= s:
            close()
            continue
        if tag == 0:
            close()
        elif tag == 1:
            close()
            current.append((s, e, float(probs[i, 1])))
        else:
            current.append((s, e, float(probs[i, 2])))
    close()
    return spans
