"""A sentiment classifier as a library: load once, pick the device once, predict many.

Any Hugging Face sequence-classification model works offline: a local directory, or a
hub id already in the local cache. Labels come from ``config.id2label`` (see labels.py);
long texts are windowed, not truncated (see windows.py), up to a cap of 20,000 characters per
text that keeps one outlier from stalling a batch (limits.py; capped texts are flagged). Every prediction can be
traced to ``model_id`` and ``revision`` (hub commit, or a content hash of a directory).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from sentiment.backends import BackendError, check_backend, prepare_backend, recorded_revision
from sentiment.default_model import (
    DEFAULT_MODEL_ID,
    SENTENCE_HEADS_FILE,
    default_model_dir,
    default_model_revision,
)
from sentiment.labels import CANONICAL_LABELS, LabelMap, LabelMappingError, label_map_from_config
from sentiment.limits import CAPPED_FLAG, MAX_TEXT_CHARS, cap_text
from sentiment.onnx_backend import OnnxClassifier
from sentiment.windows import Windows, aggregate, length_sorted_batches, pad_batch, tokenize_windows

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_MAX_WINDOW = 512
# Padded tokens per forward pass (see windows.length_sorted_batches). Activations of small
# batches stay in cache: on a 2-core EPYC, 1,024 scored the bench's texts 2.7x faster than
# 32 windows a batch (up to 16,384 tokens); 512 was as fast, 4,096 1.5x slower.
MAX_BATCH_TOKENS = 1024
# Written next to a model directory by whatever built it: {"model_id": ..., "revision": ...}
PROVENANCE_FILE = "reputation-model.json"


class ModelLoadError(ValueError):
    """The model asked for cannot be used; the message names the path or id."""


@dataclass
class Prediction:
    """One text's sentiment. ``label``/``probabilities``/``score`` are None when unscorable."""

    label: str | None
    probabilities: dict[str, float] | None
    score: float | None
    n_windows: int
    flags: list[str] = field(default_factory=list)


def choose_device(requested: str | None = None) -> torch.device:
    """CUDA when present, else CPU; an explicit request that cannot be met is an error."""
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {requested!r} was asked for but CUDA is not available")
    return device


def _limit_threads() -> None:
    """Never run more torch threads than CPUs this process may use (containers, taskset)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        available = os.cpu_count() or 1
    if torch.get_num_threads() > available:
        torch.set_num_threads(available)


def content_revision(directory: Path) -> str:
    """A stable id for a local model: sha256 over config.json, the weight files and any sentence heads."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and (p.name in ("config.json", SENTENCE_HEADS_FILE) or p.suffix in _WEIGHT_SUFFIXES)
    )
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def prepare_text(text: str | bytes | None) -> tuple[str, list[str]]:
    """Decode and inspect one input: bad UTF-8 is replaced and flagged, blank text flagged."""
    flags: list[str] = []
    if text is None:
        return "", ["empty"]
    if isinstance(text, str):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            text = text.encode("utf-8", errors="replace").decode("utf-8")
            flags.append("invalid_utf8")
    else:
        raw = bytes(text)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            flags.append("invalid_utf8")
    if not text.strip():
        flags.append("empty")
    elif not any(ch.isalnum() for ch in text):
        flags.append("no_text")
    return text, flags


def _capped(prepared: tuple[str, list[str]], max_chars: int | None) -> tuple[str, list[str]]:
    """A prepared text cut to ``max_chars``, re-inspected, its flags kept, ``capped`` added."""
    text, flags = prepared
    prefix, capped = cap_text(text, max_chars)
    if not capped:
        return text, flags
    _, prefix_flags = prepare_text(prefix)
    kept = [flag for flag in flags if flag not in ("empty", "no_text")]
    return prefix, kept + prefix_flags + [CAPPED_FLAG]


#: Receives (window indexes of one batch, that batch's hidden states: embeddings then each layer, (B, L, d)).
HiddenSink = Callable[[np.ndarray, tuple[torch.Tensor, ...]], None]


@dataclass(frozen=True)
class Encoded:
    """Texts prepared (decoded, capped, flagged) and tokenised once; see SentimentModel.encode."""

    prepared: list[tuple[str, list[str]]]  # (text as read, its flags) per input
    todo: list[int]  # inputs that have windows (not empty), in window-owner order
    windows: Windows | None


class SentimentModel:
    """A loaded classifier; build it with :meth:`load`."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        label_map: LabelMap,
        *,
        model_id: str,
        revision: str,
        device: torch.device,
        max_length: int,
        backend: str = "torch",
        directory: Path | None = None,
    ) -> None:
        self.model = model
        self.directory = directory  # where it was loaded from (sentence heads live there), if known
        self.tokenizer = tokenizer
        self.label_map = label_map
        self.model_id = model_id
        self.revision = revision
        self.device = device
        self.max_length = max_length
        self.backend = backend
        self._silent_ids = {i for i in (tokenizer.unk_token_id, tokenizer.pad_token_id) if i is not None}
        self._silent_ids.update(tokenizer.all_special_ids)

    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str] | None = None,
        *,
        local_files_only: bool = True,
        device: str | None = None,
        max_length: int | None = None,
        backend: str = "torch",
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> SentimentModel:
        """Load the default model (None), a local directory, or a hub id from the local cache.

        ``local_files_only=False`` lets a hub id be downloaded; ``revision`` and ``cache_dir``
        go to the Hugging Face hub client. ``backend`` is one of BACKENDS (see backends.py).
        """
        chosen = choose_device(device)
        try:  # before any weights are read: an impossible backend fails at once
            check_backend(backend, chosen.type)
        except BackendError as exc:
            raise ModelLoadError(str(exc)) from exc
        directory, model_id, model_revision = _resolve(name_or_path, local_files_only, revision, cache_dir)
        from transformers import AutoConfig  # as in _load_weights: only once a model is loaded

        try:
            config = AutoConfig.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{directory} has no readable model config.json: {exc}") from exc
        architectures = list(getattr(config, "architectures", None) or [])
        if not any(name.endswith("ForSequenceClassification") for name in architectures):
            raise ModelLoadError(
                f"{directory} is not a sequence-classification model (architectures: {architectures or 'none'})"
            )
        try:
            label_map = label_map_from_config(config.id2label)
        except LabelMappingError as exc:
            raise ModelLoadError(f"{directory}: {exc}") from exc
        try:
            tokenizer, model, info = _load_weights(directory)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the classifier in {directory}: {exc}") from exc
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError(f"{directory} has no fast tokenizer (tokenizer.json); windowing needs one")
        if info.get("missing_keys"):
            raise ModelLoadError(f"{directory} lacks trained weights for {sorted(info['missing_keys'])[:5]}")
        if chosen.type == "cpu":
            _limit_threads()
        model.eval()
        try:
            runner, backend = prepare_backend(model, backend, model_id, model_revision)
        except BackendError as exc:
            raise ModelLoadError(f"{directory}: {exc}") from exc
        if isinstance(runner, torch.nn.Module):
            runner.to(chosen)
        return cls(
            runner,
            tokenizer,
            label_map,
            model_id=model_id,
            revision=recorded_revision(model_revision, backend),
            device=chosen,
            max_length=_window_length(tokenizer, config, max_length, directory),
            backend=backend,
            directory=directory,
        )

    def predict(
        self,
        texts: Sequence[str | bytes | None],
        batch_size: int = 32,
        max_chars: int | None = MAX_TEXT_CHARS,
    ) -> list[Prediction]:
        """Sentiment per text, in input order; never raises on odd text, it flags it.

        Only the first ``max_chars`` characters of a text are read (limits.cap_text; None reads
        all): a longer text is scored on that prefix and flagged ``capped``.
        """
        return self.classify_encoded(self.encode(texts, max_chars), batch_size)

    def encode(
        self,
        texts: Sequence[str | bytes | None],
        max_chars: int | None = MAX_TEXT_CHARS,
        *,
        offsets: bool = False,
    ) -> Encoded:
        """Prepare, cap and tokenise texts once into windows (``offsets``: keep token character spans)."""
        prepared = [_capped(prepare_text(text), max_chars) for text in texts]
        todo = [i for i, (_, flags) in enumerate(prepared) if "empty" not in flags]
        windows = (
            tokenize_windows(self.tokenizer, [prepared[i][0] for i in todo], self.max_length, offsets=offsets)
            if todo
            else None
        )
        return Encoded(prepared, todo, windows)

    def classify_encoded(
        self, encoded: Encoded, batch_size: int = 32, on_hidden: HiddenSink | None = None
    ) -> list[Prediction]:
        """Predictions for encoded texts; ``on_hidden`` also receives each batch's hidden states.

        The hidden states are those the classifier head read, from the same forward pass, so a
        caller can pool parts of a text without encoding it again (sentiment.single_pass).
        """
        prepared, todo, windows = encoded.prepared, encoded.todo, encoded.windows
        results: list[Prediction] = [Prediction(None, None, None, 0, list(flags)) for _, flags in prepared]
        if windows is None:
            return results
        window_probs = self._classify(windows.input_ids, batch_size, on_hidden)
        probs = aggregate(window_probs, windows)
        canonical = self.label_map.to_canonical(probs)
        scores = self.label_map.score(probs)
        counts = windows.counts()
        # Text without letters or digits (emoji, punctuation) is scored only when the
        # tokenizer sees something in it beyond unknown and special tokens.
        informative = np.array(["no_text" not in prepared[i][1] for i in todo], dtype=bool)
        for window_index, ids in enumerate(windows.input_ids):
            row = windows.owner[window_index]
            if not informative[row] and "no_text" in prepared[todo[row]][1]:
                informative[row] = any(i not in self._silent_ids for i in ids)
        present = self.label_map.labels_present
        for row, index in enumerate(todo):
            result = results[index]
            result.n_windows = int(counts[row])
            if result.n_windows > 1:
                result.flags.append("windowed")
            if not informative[row]:
                result.flags.append("unscorable")
                continue
            distribution = {label: float(canonical[row, CANONICAL_LABELS.index(label)]) for label in present}
            result.probabilities = distribution
            result.label = max(distribution, key=lambda label: distribution[label])
            result.score = float(scores[row])
        return results

    @property
    def exposes_hidden_states(self) -> bool:
        """Whether forward passes can hand their hidden states out (torch modules; not ONNX Runtime)."""
        return not isinstance(self.model, OnnxClassifier)

    def _classify(
        self, input_ids: list[list[int]], batch_size: int, on_hidden: HiddenSink | None = None
    ) -> np.ndarray:
        """Model-label probabilities per window, batched by length with per-batch padding."""
        out = np.zeros((len(input_ids), len(self.label_map.names)), dtype=np.float64)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        lengths = [len(ids) for ids in input_ids]
        if on_hidden is not None and not self.exposes_hidden_states:
            raise ModelLoadError(f"backend {self.backend} does not expose hidden states")
        with torch.inference_mode():
            for batch in length_sorted_batches(lengths, batch_size, max_tokens=MAX_BATCH_TOKENS):
                ids, mask = pad_batch([input_ids[i] for i in batch], pad_id)
                if isinstance(self.model, OnnxClassifier):
                    logits = torch.from_numpy(self.model.logits(ids, mask))
                else:
                    output = self.model(
                        input_ids=torch.from_numpy(ids).to(self.device),
                        attention_mask=torch.from_numpy(mask).to(self.device),
                        output_hidden_states=on_hidden is not None,
                    )
                    logits = output.logits
                    if on_hidden is not None:
                        on_hidden(batch, tuple(output.hidden_states))
                out[batch] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"SentimentModel({self.model_id!r}, revision={self.revision!r}, device={self.device}, backend={self.backend})"


def _resolve(
    name_or_path: str | os.PathLike[str] | None,
    local_files_only: bool,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
) -> tuple[Path, str, str]:
    """(directory, model_id, revision) for the default model, a directory or a hub id."""
    if name_or_path is None:
        return _default_model()
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"model path {path} is a file; expected a model directory")
        return (path, *_directory_provenance(path))
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text
    if looks_like_path or not _HUB_ID.match(text):
        raise ModelLoadError(f"model directory {path} does not exist")
    return _from_hub(text, local_files_only, revision, cache_dir)


def _directory_provenance(path: Path) -> tuple[str, str]:
    """A directory names itself in ``reputation-model.json`` when it has one, else by name and content."""
    meta_file = path / PROVENANCE_FILE
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            return str(meta["model_id"]), str(meta["revision"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(
                f"{meta_file} is not valid provenance JSON with model_id and revision"
            ) from exc
    return path.resolve().name, content_revision(path)


def _from_hub(
    repo_id: str, local_files_only: bool, revision: str | None, cache_dir: str | os.PathLike[str] | None
) -> tuple[Path, str, str]:
    try:
        snapshot = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                local_files_only=local_files_only,
                cache_dir=None if cache_dir is None else Path(cache_dir),
            )
        )
    except LocalEntryNotFoundError as exc:
        raise ModelLoadError(
            f"model {repo_id!r} is neither a local directory nor in the Hugging Face cache "
            "(offline: download it once, or pass a directory)"
        ) from exc
    except Exception as exc:  # hub client errors: bad id, network, auth
        raise ModelLoadError(f"cannot fetch model {repo_id!r}: {exc}") from exc
    return snapshot, repo_id, snapshot.name


def _default_model() -> tuple[Path, str, str]:
    try:
        return Path(default_model_dir()), DEFAULT_MODEL_ID, default_model_revision()
    except (RuntimeError, OSError) as exc:
        raise ModelLoadError(f"the default sentiment model is unavailable: {exc}") from exc


def _load_weights(directory: Path) -> tuple[Any, Any, dict[str, Any]]:
    """Tokenizer and model from a directory, without a progress bar on every load."""
    # transformers adds about a second to importing this module: only once a model is loaded
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            directory, local_files_only=True, output_loading_info=True
        )
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    return tokenizer, model, info


def _window_length(tokenizer: Any, config: Any, requested: int | None, directory: Path) -> int:
    """Longest window the model accepts, or the requested one when it fits."""
    limits = [_MAX_WINDOW]
    if 0 < getattr(tokenizer, "model_max_length", 0) < 100_000:
        limits.append(int(tokenizer.model_max_length))
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = 2 if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"} else 0
        limits.append(int(positions) - offset)
    limit = min(limits)
    if requested is None:
        return limit
    if not 8 <= requested <= limit:
        raise ModelLoadError(f"max_length {requested} for {directory} must be between 8 and {limit}")
    return requested
