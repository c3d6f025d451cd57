"""How a loaded classifier runs its forward pass: fp32 torch (the default), int8, or ONNX Runtime.

Why fp32 stays the default: dynamic int8 is 1.3-1.6x faster on CPU, but it scales each
batch's activations by that batch's largest value, so a review's score depends on the
reviews batched with it, and on the default model's held-out split both int8 variants
(every Linear layer; feed-forward layers only, per-channel) moved accuracy by 0.1 to 1.9
points depending on batching. They stay selectable; since they change the numbers, their
name is part of the recorded revision. ONNX Runtime matches fp32 to rounding.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

from sentiment import onnx_backend
from sentiment.default_model import cache_root

BACKENDS = ("torch", "int8", "int8-ffn", "onnx")
CPU_ONLY = ("int8", "int8-ffn", "onnx")
# Backends whose scores differ from fp32 beyond rounding: recorded in the revision.
CHANGES_NUMBERS = ("int8", "int8-ffn")


class BackendError(ValueError):
    """A backend cannot be used as asked; the message names it and why."""


def check_backend(backend: str, device_type: str) -> None:
    """Raise when the backend is unknown or cannot run on this device."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend in CPU_ONLY and device_type != "cpu":
        raise BackendError(f"the {backend} backend runs on CPU only; leave device unset or pass device='cpu'")


def recorded_revision(revision: str, backend: str) -> str:
    """The revision stored with each score: the model's, plus the backend when it moves the numbers."""
    return f"{revision}+{backend}" if backend in CHANGES_NUMBERS else revision


def feed_forward_linears(model: torch.nn.Module) -> list[str]:
    """Names of the feed-forward Linear layers of a BERT-like encoder (BERT, RoBERTa, DistilBERT...)."""
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        ffn_in = name.endswith("intermediate.dense")
        ffn_out = name.endswith("output.dense") and "attention" not in name
        distil = ".ffn.lin" in name
        if ffn_in or ffn_out or distil:
            names.append(name)
    return names


def quantize_int8(model: torch.nn.Module, *, feed_forward_only: bool) -> Any:
    """Dynamic int8 Linear layers: every one (per-tensor), or the feed-forward ones (per-channel)."""
    spec: Any
    if feed_forward_only:
        names = feed_forward_linears(model)
        if not names:
            raise BackendError(
                "the int8-ffn backend found no feed-forward layers in this model; use int8 or torch"
            )
        spec = dict.fromkeys(names, per_channel_dynamic_qconfig)
    else:
        spec = {torch.nn.Linear}
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, spec, dtype=torch.qint8)


def prepare_backend(model: torch.nn.Module, backend: str, model_id: str, revision: str) -> tuple[Any, str]:
    """(what runs the forward pass, the backend actually used); onnx falls back to torch, saying so."""
    if backend in ("int8", "int8-ffn"):
        return quantize_int8(model, feed_forward_only=backend == "int8-ffn"), backend
    if backend != "onnx":
        return model, backend
    if not onnx_backend.onnx_runtime_available():
        warnings.warn(
            "the onnx backend needs onnxruntime and onnx (pip install onnxruntime onnx); "
            "using the torch backend instead",
            RuntimeWarning,
            stacklevel=4,
        )
        return model, "torch"
    path = onnx_backend.export_path(cache_root(), model_id, revision)
    try:
        return onnx_backend.load(model, path, torch.get_num_threads()), backend
    except Exception as exc:  # export and runtime errors come in many types
        raise BackendError(f"cannot run the model with ONNX Runtime ({path}): {exc}") from exc
