"""Files shipped inside the relations package (the trained heads, the training sentences), by path.

Found through importlib.resources so an installed wheel reads its own copy; safetensors opens files
by path, so a package imported from a zip archive is refused with a message that says so.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

MODEL_NAME = "minilm-relations"
ARTEFACT = ("models", MODEL_NAME)
DATA = ("data",)
HEADS_FILE = "heads.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HELDOUT_FILE = "heldout.jsonl"
TRAINING_FILE = "training.json"


class PackageDataError(RuntimeError):
    """The package's data files are not on the file system (a zipped install)."""


def package_path(*parts: str) -> Path:
    """The file or directory ``parts`` inside the installed relations package."""
    found = resources.files("relations").joinpath(*parts)
    if not isinstance(found, Path):
        raise PackageDataError(
            f"relations/{'/'.join(parts)} is inside an archive ({found}); install the package unzipped"
        )
    return found
