"""Files shipped inside the sentiment package: the default model's artefact, the labelled sets, the head.

They are found through importlib.resources, so an installed wheel reads its own copy and never the
checkout. transformers and safetensors open files by path, so the path on disk is returned; a package
imported from a zip archive has none, and is refused with a message that says so.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The default model's artefact directory (trained tensors, config, card, held-out split).
ARTEFACT = ("models", "minilm-sentiment-3c")
#: Labelled sentences of the customer-service aspect detector.
ASPECT_SENTENCES = ("data", "aspect", "cs_sentences.csv")
#: Complaints written as facts or questions, with relevance and sentiment labels (sentence heads).
COMPLAINT_SENTENCES = ("data", "aspect", "complaint_sentences.csv")
#: The committed logistic head of the aspect detector.
ASPECT_HEAD = ("aspect_head.json",)


class PackageDataError(RuntimeError):
    """The package's data files are not on the file system (a zipped install)."""


def package_path(*parts: str) -> Path:
    """The file or directory ``parts`` inside the installed sentiment package."""
    found = resources.files("sentiment").joinpath(*parts)
    if not isinstance(found, Path):
        raise PackageDataError(
            f"sentiment/{'/'.join(parts)} is inside an archive ({found}); install the package unzipped"
        )
    return found
