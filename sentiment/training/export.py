"""Store only what training changed: the top layers, pooler and classifier in fp16 safetensors.

The frozen embeddings and lower layers are identical to the packaged encoder, so committing them
again would only add ~80 MB; `sentiment.default_model.materialise` puts the two back together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from sentiment.default_model import CONFIG_FILE, TRAINED_FILE, TRAINING_FILE
from sentiment.training.train import trainable_prefixes

BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def trained_tensors(model: nn.Module, trainable_layers: int) -> dict[str, torch.Tensor]:
    """The trained part of the state dict as contiguous fp16 tensors."""
    prefixes = trainable_prefixes(model, trainable_layers)
    return {
        name: tensor.detach().to(torch.float16).contiguous()
        for name, tensor in model.state_dict().items()
        if name.startswith(prefixes)
    }


def save_artefact(model: Any, trainable_layers: int, out_dir: Path, recipe: dict[str, Any]) -> Path:
    """Write trained.safetensors, config.json and training.json into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = {"base_model": BASE_MODEL_NAME, "trainable_layers": str(trainable_layers)}
    save_file(trained_tensors(model, trainable_layers), str(out_dir / TRAINED_FILE), metadata=metadata)
    config = model.config.to_dict()
    config["architectures"] = ["BertForSequenceClassification"]
    config["_name_or_path"] = "reputation/minilm-sentiment-3c"
    config.pop("transformers_version", None)
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out_dir / TRAINING_FILE).write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
    return out_dir
