"""Small real transformer classifiers for tests of mechanics (loading, batching, storage).

Random weights, real tokenizer (the packaged MiniLM's), real forward passes: fast enough
for unit tests; accuracy is tested on the trained default model elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from sentiment.default_model import base_model_dir

THREE = {0: "negative", 1: "neutral", 2: "positive"}


def build_classifier(
    directory: Path,
    id2label: dict[int, str] | None = None,
    *,
    seed: int = 0,
    layers: int = 2,
    model_id: str | None = None,
) -> Path:
    """Save a tiny BertForSequenceClassification with the packaged tokenizer to ``directory``."""
    labels = id2label or THREE
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir(), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        architectures=["BertForSequenceClassification"],
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if model_id is not None:
        (directory / "reputation-model.json").write_text(json.dumps({"model_id": model_id, "revision": "t1"}))
    return directory
