"""The classifier's forward pass through ONNX Runtime (optional: ``pip install onnxruntime onnx``).

Why: ONNX Runtime fuses LayerNorm, GELU and bias adds and runs its own CPU kernels; the
graph is exported once per model revision and torch version into a cache, so later loads
skip the export. Numbers match fp32 torch to rounding, so the revision is not changed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch


def onnx_runtime_available() -> bool:
    """Whether onnxruntime (to run) and onnx (to export) are importable."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


class _Logits(torch.nn.Module):
    """Positional (input_ids, attention_mask) -> logits: the signature the exported graph keeps."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class OnnxClassifier:
    """Logits for padded id/mask arrays from an ONNX Runtime session."""

    def __init__(self, session: Any, path: Path) -> None:
        self.session = session
        self.path = path

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
        )


def export_path(cache_dir: Path, model_id: str, revision: str) -> Path:
    """Where the graph for this model revision and torch version lives in the cache."""
    key = hashlib.sha256(f"{model_id}\0{revision}\0{torch.__version__}".encode()).hexdigest()[:16]
    return cache_dir / "onnx" / f"{key}.onnx"


def export(model: torch.nn.Module, path: Path) -> Path:
    """Trace the classifier once, with padding in the example so the mask stays a real input."""
    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter is deprecated and traces Python branches; neither matters
        # here (checked against torch in the tests), and it needs no onnxscript.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Logits(model).eval(),
            (ids, mask),
            str(partial),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )  # fmt: skip
    partial.replace(path)  # atomic: a concurrent loader never sees half a file
    return path


def load(model: torch.nn.Module, path: Path, threads: int) -> OnnxClassifier:
    """A session over the cached graph (exported first when absent), on ``threads`` CPU threads."""
    import onnxruntime as ort  # optional extra [onnx], heavy: only when that backend is chosen

    if not path.is_file():
        export(model, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return OnnxClassifier(session, path)
