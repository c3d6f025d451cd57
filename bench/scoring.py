"""Scoring speed: SentimentModel.predict against a Hugging Face pipeline on the same texts.

Same model directory, same texts, same torch threads, same device. The contenders take
turns in rounds on identical texts, so a busy neighbour slows both; the ratio is total time
over those texts, with the per-round range in the note. The baselines are far slower, so the batched pipeline runs on
every tenth text and the per-review loop on an evenly spread subset; each is reported as a
rate, and our rate is also measured on that same subset.

Achieved FLOP/s counts the model's work analytically from the real (unpadded) token counts
of the windows our path classifies: per window of L tokens and per layer,
2 * L * (4 d^2 + 2 d d_ff) for the dense layers plus 4 * L^2 * d for attention scores and
mixing, and the pooler and classifier once. Padding is not useful work and is not counted.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import pipeline

from bench.report import Figure, median
from bench.synth import review_texts
from sentiment.default_model import HELDOUT_FILE, artefact_dir
from sentiment.model import MAX_BATCH_TOKENS, SentimentModel
from sentiment.onnx_backend import onnx_runtime_available
from sentiment.windows import length_sorted_batches, tokenize_windows

N_TEXTS = 5_000
PER_REVIEW_SUBSET = 150
PIPELINE_BATCH = 64
BATCHED_EVERY = 10  # the batched pipeline runs on every 10th text
TARGET_VS_BATCHED = 3.0
TARGET_VS_LOOP = 10.0
ACCURACY_TOLERANCE = 0.5  # percentage points
HELDOUT_CAP = 1_500
PATH_TEXTS = 600  # texts of the end-to-end scoring paths (spread over predict's)
TARGET_VS_PREDICT = 0.8
TARGET_VS_THREE_PASS = 2.5
FASTER_BACKENDS = ("int8-ffn", "int8", "onnx")  # each timed and checked against fp32 torch
HELDOUT = artefact_dir() / HELDOUT_FILE  # package data of sentiment


def model_flops(config: Any, window_lengths: Sequence[int]) -> float:
    """Forward-pass FLOPs of a BERT-style encoder classifier over windows of the given lengths."""
    d, d_ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token_dense = 2 * (4 * d * d + 2 * d * d_ff)
    head = 2 * d * d + 2 * d * config.num_labels  # pooler + classifier, once per window
    total = 0.0
    for length in window_lengths:
        total += layers * (length * per_token_dense + 4 * length * length * d) + head
    return total


def padded_tokens(lengths: Sequence[int], batch_size: int) -> int:
    """Tokens actually pushed through the model by predict's batching (padding included)."""
    batches = length_sorted_batches(lengths, batch_size, max_tokens=MAX_BATCH_TOKENS)
    return int(sum(len(b) * max(lengths[i] for i in b) for b in batches))


def _accuracy(model: Any, rows: list[dict[str, str]]) -> float:
    predictions = model.predict([r["text"] for r in rows])
    return 100.0 * sum(p.label == r["label"] for p, r in zip(predictions, rows, strict=True)) / len(rows)


def _heldout_rows() -> list[dict[str, str]]:
    with HELDOUT.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    step = max(1, len(rows) // HELDOUT_CAP)
    return rows[::step][:HELDOUT_CAP]


class _ForwardTimer:
    """Seconds spent inside the model's forward pass, summed over every call (hooks, no extra run)."""

    def __init__(self, module: Any) -> None:
        self.seconds = 0.0
        self._started = 0.0
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, *_: Any) -> None:
        self._started = time.perf_counter()

    def _post(self, *_: Any) -> None:
        self.seconds += time.perf_counter() - self._started


def run(
    *, quick: bool, matmul_flops: float | None, model_dir: Path, is_default: bool, say: Callable[[str], None]
) -> list[Figure]:
    """Scoring figures. Rounds take turns: ours and the batched pipeline on one shared part of
    the texts (the ratio), then ours alone on a larger part (so ours covers every text while
    the far slower baseline only a tenth: the whole run must fit the time budget)."""
    n_texts = 100 if quick else N_TEXTS
    rounds = 2 if quick else 4
    loop_n = 10 if quick else PER_REVIEW_SUBSET
    texts = review_texts(n_texts)
    shared = texts[::BATCHED_EVERY]  # the same length mix as the whole
    rest = [t for i, t in enumerate(texts) if i % BATCHED_EVERY]
    pairs = [(shared[k::rounds], rest[k::rounds]) for k in range(rounds)]
    which = "default model" if is_default else "stand-in (MiniLM-L6, untrained head; default model absent)"

    # The product's path: the default model by name (its ``auto`` backend), else the stand-in's directory.
    ours_model = SentimentModel.load() if is_default else SentimentModel.load(str(model_dir))
    threads = torch.get_num_threads()
    device = ours_model.device
    pipe = pipeline("text-classification", model=str(model_dir), device=device)
    say(
        f"  {which}; device {device}, backend {ours_model.backend}, {threads} torch threads; "
        f"{n_texts} texts, baseline on {len(shared)}"
    )

    windows = tokenize_windows(ours_model.tokenizer, texts, ours_model.max_length)
    lengths = [len(ids) for ids in windows.input_ids]
    flops = model_flops(ours_model.model.config, lengths)

    ours_model.predict(texts[:64])  # warm-up both: first calls allocate and pick kernels
    pipe(texts[:64], batch_size=PIPELINE_BATCH, truncation=True)
    timer = _ForwardTimer(ours_model.model)
    ours_shared, theirs_shared, ours_rest = [], [], []
    for both, alone in pairs:
        ours_shared.append(_seconds(ours_model.predict, both))
        theirs_shared.append(_seconds(pipe, both, batch_size=PIPELINE_BATCH, truncation=True))
        ours_rest.append(_seconds(ours_model.predict, alone))
        say(
            f"  round: ours {len(both)} texts {ours_shared[-1]:.1f} s, pipeline {theirs_shared[-1]:.1f} s; "
            f"ours {len(alone)} more {ours_rest[-1]:.1f} s"
        )
    ours_total = sum(ours_shared) + sum(ours_rest)
    ratios = [t / o for o, t in zip(ours_shared, theirs_shared, strict=True)]
    forward_share = 100 * timer.seconds / ours_total

    step = max(1, n_texts // loop_n)
    subset = texts[::step][:loop_n]
    loop_seconds = sum(_seconds(pipe, text, truncation=True) for text in subset)
    ours_subset = _seconds(ours_model.predict, subset)  # like with like

    padding = padded_tokens(lengths, 32) / max(1, sum(lengths))
    figures = [
        Figure("scoring", f"SentimentModel.predict, all {n_texts:,} mixed texts", n_texts / ours_total, "reviews/s",
               note=f"{which}; backend {ours_model.backend}, {threads} torch threads, device {device}"),
        Figure(
            "scoring", f"SentimentModel.predict vs batched pipeline ({len(shared):,} texts, {rounds} rounds)",
            len(shared) / sum(ours_shared), "reviews/s", len(shared) / sum(theirs_shared),
            f"pipeline batch_size={PIPELINE_BATCH}",
            note=f"{which}; identical texts, per-round ratios {min(ratios):.2f}-{max(ratios):.2f}x",
            samples=[len(b) / s for (b, _), s in zip(pairs, ours_shared, strict=True)],
            baseline_samples=[len(b) / s for (b, _), s in zip(pairs, theirs_shared, strict=True)],
        ),
        Figure(
            "scoring", f"SentimentModel.predict vs per-review pipeline loop ({len(subset)} texts)",
            len(subset) / ours_subset, "reviews/s", len(subset) / loop_seconds, "pipeline(text) per review",
            note="rates on the same evenly spread subset",
        ),
        Figure(
            "scoring", "achieved model FLOP/s (analytic, unpadded tokens)", flops / ours_total, "FLOP/s",
            matmul_flops, "dense fp32 matmul", note=f"{sum(lengths):,} tokens in {len(lengths):,} windows; "
            f"padding adds {100 * (padding - 1):.1f}% at batch 32",
        ),
        Figure("scoring", "share of predict time inside the model's forward", forward_share, "%",
               note="the rest is tokenizing, padding, softmax and bookkeeping"),
    ]  # fmt: skip
    figures[1].check(lambda _v, _b, ratio: ratio >= TARGET_VS_BATCHED, f"ratio >= {TARGET_VS_BATCHED:.0f}x")
    figures[2].check(lambda _v, _b, ratio: ratio >= TARGET_VS_LOOP, f"ratio >= {TARGET_VS_LOOP:.0f}x")
    figures += _faster_backends(model_dir, ours_model, shared[:64], is_default and not quick, say)
    figures += product_path(texts[:: max(1, n_texts // (60 if quick else PATH_TEXTS))], model_dir=model_dir,
                            is_default=is_default, rounds=rounds, say=say)  # fmt: skip
    return figures


def _review_db(path: Path, texts: Sequence[str]) -> Any:
    """A fresh store holding ``texts`` as reviews (as the crawler writes them)."""
    from storage.database import connect, utcnow

    db = connect(path)
    now = utcnow()
    db.table("brands").insert({"id": "bench", "name": "Bench"}, pk="id")
    db.table("sources").insert({"id": "bench-src", "brand_id": "bench", "url": "http://127.0.0.1/"}, pk="id")
    rows = [
        {"id": f"r{i:06d}", "source_id": "bench-src", "brand_id": "bench", "title": None, "body": text,
         "body_hash": hashlib.sha256(text.encode()).hexdigest(), "language": "en", "first_seen": now, "last_seen": now}
        for i, text in enumerate(texts)
    ]  # fmt: skip
    with db.conn:
        db.table("reviews").insert_all(rows)
    return db


def product_path(
    texts: Sequence[str], *, model_dir: Path, is_default: bool, rounds: int, say: Callable[[str], None]
) -> list[Figure]:
    """End-to-end `reputation score` (SQLite in, rows out) on the predict texts: the single-pass path,
    the three-pass path it replaces, and bare ``predict``, taking turns round by round in one process.

    The model and the detectors are loaded once, before timing (a scoring process loads them once);
    each round scores a fresh store, built before its clock starts.
    """
    from reputation.scoring.job import score_reviews
    from sentiment.aspect import CustomerServiceDetector
    from sentiment.single_pass import SinglePassScorer

    model = SentimentModel.load() if is_default else SentimentModel.load(str(model_dir))
    single = SinglePassScorer.for_model(model)
    three = CustomerServiceDetector.load(device=str(model.device))
    paths: dict[str, Any] = {"three-pass": three}
    if single is not None:
        paths["single-pass"] = single
    parts = [list(texts[k::rounds]) for k in range(rounds)]
    seconds: dict[str, list[float]] = {name: [] for name in ["predict", *paths]}
    model.predict(list(texts[:16]))  # first calls allocate and pick kernels
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        for k, part in enumerate(parts):
            seconds["predict"].append(_seconds(model.predict, part))
            for name, detector in paths.items():
                db = _review_db(Path(tmp) / f"{name}-{k}.db", part)
                seconds[name].append(_seconds(score_reviews, db, model=model, detector=detector, progress=False))
                db.close()
            say("  round: " + ", ".join(f"{name} {s[-1]:.1f} s" for name, s in seconds.items()) + f" ({len(part)} texts)")
    n = len(texts)
    rate = {name: n / sum(s) for name, s in seconds.items()}
    samples = {name: [len(p) / t for p, t in zip(parts, s, strict=True)] for name, s in seconds.items()}
    where = f"device {model.device}, backend {model.backend}, {torch.get_num_threads()} torch threads"
    figures = [
        Figure("scoring", f"reputation score, three-pass path vs predict ({n} texts)", rate["three-pass"],
               "reviews/s", rate["predict"], "SentimentModel.predict", samples=samples["three-pass"],
               baseline_samples=samples["predict"], note=f"the old path, kept as the baseline; {where}"),
    ]  # fmt: skip
    if single is None:
        figures.append(Figure("scoring", "reputation score, single-pass path", None, "",
                              note="the benchmark model has no sentence heads (stand-in)"))  # fmt: skip
        return figures
    vs_predict = Figure("scoring", f"reputation score, single-pass path vs predict ({n} texts)", rate["single-pass"],
                        "reviews/s", rate["predict"], "SentimentModel.predict", samples=samples["single-pass"],
                        baseline_samples=samples["predict"], note=f"same texts, rounds alternate; {where}")  # fmt: skip
    vs_predict.check(lambda _v, _b, ratio: ratio >= TARGET_VS_PREDICT, f"ratio >= {TARGET_VS_PREDICT}")
    vs_three = Figure("scoring", f"reputation score, single-pass vs three-pass path ({n} texts)", rate["single-pass"],
                      "reviews/s", rate["three-pass"], "three-pass path", samples=samples["single-pass"],
                      baseline_samples=samples["three-pass"], note=where)  # fmt: skip
    vs_three.check(lambda _v, _b, ratio: ratio >= TARGET_VS_THREE_PASS, f"ratio >= {TARGET_VS_THREE_PASS}")
    return [*figures, vs_predict, vs_three]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.scoring --paths`: only the end-to-end scoring paths, printed."""
    parser = argparse.ArgumentParser(prog="python -m bench.scoring", description=product_path.__doc__)
    parser.add_argument("--paths", action="store_true", required=True, help="time the scoring paths")
    parser.add_argument("--texts", type=int, default=PATH_TEXTS, help="mixed-length texts (as predict's)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from bench.models import benchmark_model

    model_dir, is_default = benchmark_model()
    texts = review_texts(N_TEXTS)[:: max(1, N_TEXTS // args.texts)][: args.texts]
    for figure in product_path(texts, model_dir=model_dir, is_default=is_default, rounds=args.rounds, say=print):
        ratio = f" = {figure.ratio:.2f}x {figure.baseline_name}" if figure.ratio else ""
        base = f" vs {figure.baseline:.1f}" if figure.baseline is not None else ""
        value = "n/a" if figure.value is None else f"{figure.value:.1f}"
        print(f"{figure.name}: {value}{base} {figure.unit}{ratio} {figure.target} "
              f"{'' if figure.passed is None else ('PASS' if figure.passed else 'FAIL')} ({figure.note})")  # fmt: skip
    return 0



def _seconds(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def _faster_backends(
    model_dir: Path, ours: Any, chunk: list[str], check_accuracy: bool, say: Callable[[str], None]
) -> list[Figure]:
    """Every CPU backend against fp32 torch: speed on one slice (taking turns), accuracy on the held-out split.

    The default (``auto``) is one of them, so its accuracy row is the check that it may stay the default.
    """
    figures: list[Figure] = []
    if ours.device.type != "cpu":
        return figures
    fp32 = SentimentModel.load(str(model_dir), backend="torch")
    names = [name for name in FASTER_BACKENDS if name != "onnx" or onnx_runtime_available()]
    contenders = {name: SentimentModel.load(str(model_dir), backend=name) for name in names}
    fp32.predict(chunk[:32])
    seconds: dict[str, list[float]] = {name: [] for name in ["torch", *names]}
    for _ in range(2):  # back to back on the same texts
        seconds["torch"].append(_seconds(fp32.predict, chunk))
        for name, model in contenders.items():
            model.predict(chunk[:8])  # first calls allocate and pick kernels
            seconds[name].append(_seconds(model.predict, chunk))
    rows = _heldout_rows() if check_accuracy and HELDOUT.is_file() else []
    base = _accuracy(fp32, rows) if rows else None
    why = "held-out split absent" if not HELDOUT.is_file() else "quick run or stand-in model"
    for name, model in contenders.items():
        label = f"{name} backend{' (the default)' if name == ours.backend else ''}"
        speed = Figure("scoring", f"{label} speed ({len(chunk)} texts)", len(chunk) / median(seconds[name]),
                       "reviews/s", len(chunk) / median(seconds["torch"]), "torch fp32 backend",
                       samples=[len(chunk) / s for s in seconds[name]],
                       baseline_samples=[len(chunk) / s for s in seconds["torch"]])  # fmt: skip
        figures.append(speed)
        if base is None:
            speed.note = f"accuracy not checked: {why}"
            continue
        value = _accuracy(model, rows)
        acc = Figure("scoring", f"{label} accuracy on held-out ({len(rows)} rows)", value, "% acc", base,
                     "torch fp32 backend", note=f"difference {value - base:+.2f} points")  # fmt: skip
        acc.check(lambda v, b, _r: abs(v - b) <= ACCURACY_TOLERANCE, f"within {ACCURACY_TOLERANCE} points")
        figures.append(acc)
        say(
            f"  {name}: {speed.value:.2f} vs {speed.baseline:.2f} reviews/s; accuracy {value:.2f}% vs {base:.2f}%"
        )
    if "onnx" not in names:
        figures.append(Figure("scoring", "ONNX Runtime backend", None, "", note="onnxruntime not installed"))
    return figures

if __name__ == "__main__":
    raise SystemExit(main())
