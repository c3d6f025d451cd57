"""Sentiment as a library: texts in, labels and signed scores out. No SQLite, no Scrapy.

    from sentiment import SentimentModel
    model = SentimentModel.load()            # the default model, offline
    model.predict(["Support never called back."])

Names are imported lazily so `import sentiment.labels` does not pay for torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentiment.labels import CANONICAL_LABELS, LabelMap, LabelMappingError, label_map_from_config
    from sentiment.model import ModelLoadError, Prediction, SentimentModel, choose_device

_EXPORTS = {
    "SentimentModel": "sentiment.model",
    "Prediction": "sentiment.model",
    "ModelLoadError": "sentiment.model",
    "choose_device": "sentiment.model",
    "CANONICAL_LABELS": "sentiment.labels",
    "LabelMap": "sentiment.labels",
    "LabelMappingError": "sentiment.labels",
    "label_map_from_config": "sentiment.labels",
}

__all__ = [
    "CANONICAL_LABELS",
    "LabelMap",
    "LabelMappingError",
    "ModelLoadError",
    "Prediction",
    "SentimentModel",
    "choose_device",
    "label_map_from_config",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sentiment' has no attribute {name!r}")
    return getattr(import_module(module), name)
