"""Fine-tune the packaged all-MiniLM-L6-v2 encoder into a three-class sentiment classifier.

The embeddings and the lower encoder layers stay frozen, so their output for each training text
never changes: it is computed once and cached, and every epoch runs only the top layers, the
pooler and the classifier. That makes several epochs affordable on two CPU cores, and the trained
part alone (a few MB in fp16) is all the project has to store.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sentiment.metrics import accuracy, macro_f1
from sentiment.training.data import LABELS, REVIEW_SOURCES, SEED, Example

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Every knob of the recipe; stored beside the artefact so a run can be repeated."""

    trainable_layers: int = 6  # every encoder layer; the embeddings stay frozen
    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 8e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    max_length: int = 128
    class_weight_power: float = 0.5  # 0: plain loss; 1: fully inverse-frequency weights
    seed: int = SEED
    threads: int = 2
    limit: int | None = None  # cap on training examples, for quick trial runs
    device: str = "auto"  # "auto": CUDA when present, else CPU
    # validation score that picks the epoch kept: "selection" is the mean of macro-F1 and
    # review-style binary accuracy, the model card's two targets
    select_by: str = "selection"
    # from this epoch on, the trained weights are also averaged across epochs; the average is one
    # more candidate for the kept model (often better and better calibrated, at no inference cost)
    average_from: int | None = 3


@dataclass
class Batch:
    """Frozen-layer output for one length-sorted batch, kept in fp16 to halve the cache."""

    hidden: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    review: torch.Tensor  # True where the row counts for review-style binary accuracy


@dataclass
class TrainResult:
    """The trained model and what happened while training it."""

    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)


def load_base(base_dir: Path) -> tuple[Any, nn.Module]:
    """Tokenizer and a fresh three-class classification model on top of the packaged encoder."""
    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_dir,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        local_files_only=True,
    )
    return tokenizer, model


def resolve_device(name: str) -> torch.device:
    """The one device training runs on, chosen once."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """[B, T] 0/1 padding mask as the [B, 1, 1, T] additive float mask BERT layers accept."""
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def frozen_count(model: Any, trainable_layers: int) -> int:
    layers = len(model.bert.encoder.layer)
    if not 0 < trainable_layers <= layers:
        raise ValueError(f"trainable_layers must be 1..{layers}, got {trainable_layers}")
    return layers - trainable_layers


def trainable_prefixes(model: Any, trainable_layers: int) -> tuple[str, ...]:
    """State-dict key prefixes of the parts training changes (and export stores)."""
    first = frozen_count(model, trainable_layers)
    layers = len(model.bert.encoder.layer)
    return (*(f"bert.encoder.layer.{i}." for i in range(first, layers)), "bert.pooler.", "classifier.")


def head_forward(model: Any, first_layer: int, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits from cached frozen-layer output: the top layers, the pooler, the classifier."""
    ext = additive_mask(mask)
    for layer in model.bert.encoder.layer[first_layer:]:
        out = layer(hidden, attention_mask=ext)
        hidden = out[0] if isinstance(out, tuple) else out
    pooled = model.bert.pooler(hidden)
    return model.classifier(model.dropout(pooled))


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, so padding costs little."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def cache_frozen(model: Any, tokenizer: Any, examples: Sequence[Example], cfg: TrainConfig) -> list[Batch]:
    """Run the frozen embeddings and lower layers once over every example."""
    first = frozen_count(model, cfg.trainable_layers)
    enc = tokenizer([ex.text for ex in examples], truncation=True, max_length=cfg.max_length)
    ids = enc["input_ids"]
    label_ids = [LABELS.index(ex.label) for ex in examples]
    review = [ex.source in REVIEW_SOURCES and ex.label != "neutral" for ex in examples]
    device = next(model.parameters()).device
    model.eval()
    batches: list[Batch] = []
    for n, idx in enumerate(length_batches([len(x) for x in ids], cfg.batch_size), 1):
        if n % 50 == 0:
            log.info("cached %d examples", n * cfg.batch_size)
        padded = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(device)
        out = model.bert(
            input_ids=padded["input_ids"], attention_mask=padded["attention_mask"], output_hidden_states=True
        )
        hidden = out.hidden_states[first]
        batches.append(
            Batch(
                hidden.half(),
                padded["attention_mask"],
                torch.tensor([label_ids[i] for i in idx], device=device),
                torch.tensor([review[i] for i in idx], device=device),
            )
        )
    return batches


def check_head_path(model: Any, tokenizer: Any, cfg: TrainConfig) -> None:
    """The cached path must give the same logits as the whole model, or training is wrong."""
    texts = ["Great service, thank you!", "The agent never called back and the refund is still missing."]
    padded = tokenizer(texts, padding=True, return_tensors="pt").to(next(model.parameters()).device)
    model.eval()
    with torch.inference_mode():
        full = model(**padded).logits
        hidden = model.bert(**padded, output_hidden_states=True).hidden_states
        first = frozen_count(model, cfg.trainable_layers)
        part = head_forward(model, first, hidden[first], padded["attention_mask"])
    tolerance = 1e-4 if full.device.type == "cpu" else 1e-3  # GPU kernels reorder the sums
    if not torch.allclose(full, part, atol=tolerance):
        raise RuntimeError(f"cached-layer path disagrees with the full model: {full} vs {part}")


def class_weights(batches: Sequence[Batch], power: float) -> torch.Tensor:
    counts = torch.bincount(torch.cat([b.labels for b in batches]), minlength=len(LABELS)).float()
    return (counts.sum() / (len(LABELS) * counts.clamp(min=1))) ** power


def evaluate_cached(model: Any, first: int, batches: Sequence[Batch]) -> dict[str, float]:
    """Validation accuracy, macro-F1 and review-style binary accuracy; `selection` is the mean of
    the last two, the model card's two targets."""
    pos, neg = LABELS.index("positive"), LABELS.index("negative")
    model.eval()
    gold: list[int] = []
    pred: list[int] = []
    binary_gold: list[bool] = []
    binary_pred: list[bool] = []
    with torch.inference_mode():
        for b in batches:
            logits = head_forward(model, first, b.hidden.float(), b.mask)
            pred.extend(logits.argmax(-1).tolist())
            gold.extend(b.labels.tolist())
            binary_pred.extend((logits[b.review, pos] >= logits[b.review, neg]).tolist())
            binary_gold.extend((b.labels[b.review] == pos).tolist())
    gold_labels, pred_labels = [LABELS[i] for i in gold], [LABELS[i] for i in pred]
    scores = {
        "accuracy": accuracy(gold_labels, pred_labels),
        "macro_f1": macro_f1(gold_labels, pred_labels, LABELS),
        # no review-style rows: 0.0, so the selection score stays a number
        "review_binary_accuracy": accuracy(binary_gold, binary_pred) if binary_gold else 0.0,
    }
    scores["selection"] = (scores["macro_f1"] + scores["review_binary_accuracy"]) / 2
    return scores


def train(
    base_dir: Path,
    train_examples: Sequence[Example],
    validation_examples: Sequence[Example],
    cfg: TrainConfig,
    progress: Callable[[str], None] = log.info,
) -> TrainResult:
    """Fine-tune the top layers; keep the epoch with the best validation score `cfg.select_by`."""
    if cfg.select_by not in ("accuracy", "macro_f1", "review_binary_accuracy", "selection"):
        raise ValueError(f"select_by must name a validation score, got {cfg.select_by!r}")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    started = time.monotonic()
    examples = list(train_examples)
    if cfg.limit is not None and cfg.limit < len(examples):
        examples = rng.sample(examples, cfg.limit)
    device = resolve_device(cfg.device)
    tokenizer, model = load_base(base_dir)
    model.to(device)
    check_head_path(model, tokenizer, cfg)
    first = frozen_count(model, cfg.trainable_layers)
    frozen = "the embeddings" + (f" and layers 0..{first - 1}" if first else "")
    progress(
        f"device {device}; caching {frozen} for {len(examples)} train, {len(validation_examples)} validation"
    )
    train_batches = cache_frozen(model, tokenizer, examples, cfg)
    val_batches = cache_frozen(model, tokenizer, validation_examples, cfg)
    progress(f"cached in {time.monotonic() - started:.0f}s")

    prefixes = trainable_prefixes(model, cfg.trainable_layers)
    params = [(n, p) for n, p in model.named_parameters() if n.startswith(prefixes)]
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(prefixes)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in params if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in params if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
    total = cfg.epochs * len(train_batches)
    warmup = max(1, int(cfg.warmup_fraction * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(train_batches, cfg.class_weight_power))

    history: list[dict[str, Any]] = []
    best_score, best_state = -math.inf, None
    average: dict[str, torch.Tensor] = {}
    averaged = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = list(range(len(train_batches)))
        rng.shuffle(order)
        epoch_start, running = time.monotonic(), 0.0
        for step, bi in enumerate(order, 1):
            b = train_batches[bi]
            loss = loss_fn(head_forward(model, first, b.hidden.float(), b.mask), b.labels)
            loss.backward()
            nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running += loss.item()
            if step % 200 == 0:
                progress(f"epoch {epoch} step {step}/{len(order)} loss {running / step:.4f}")
        scores = evaluate_cached(model, first, val_batches)
        record: dict[str, Any] = {
            "epoch": epoch,
            "loss": running / len(order),
            "seconds": time.monotonic() - epoch_start,
        }
        record.update({f"validation_{k}": v for k, v in scores.items()})
        history.append(record)
        progress(f"epoch {epoch} done: {record}")
        state = {n: p.detach().clone() for n, p in model.state_dict().items() if n.startswith(prefixes)}
        if scores[cfg.select_by] > best_score:
            best_score, best_state = scores[cfg.select_by], state
        if cfg.average_from is not None and epoch >= cfg.average_from:
            averaged += 1
            for name, value in state.items():
                mean = average.setdefault(name, torch.zeros_like(value, dtype=torch.float32))
                mean += (value.float() - mean) / averaged
    if averaged > 1:
        trained = state  # the last epoch's weights, already cloned
        model.load_state_dict({n: v.to(trained[n].dtype) for n, v in average.items()}, strict=False)
        scores = evaluate_cached(model, first, val_batches)
        record = {
            "epoch": f"mean of {cfg.average_from}..{cfg.epochs}",
            "averaged_epochs": averaged,
        }
        record.update({f"validation_{k}": v for k, v in scores.items()})
        history.append(record)
        progress(f"averaged weights: {record}")
        if scores[cfg.select_by] > best_score:
            best_score, best_state = scores[cfg.select_by], None  # keep the average loaded
        else:
            model.load_state_dict(trained, strict=False)
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.to("cpu").eval()
    return TrainResult(model, history, time.monotonic() - started, asdict(cfg))
