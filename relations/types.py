"""What the relation model returns: organisation mentions, (vendor, brand) relations, and a page's tally."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

#: Relations the classifier tells apart; "none" (partners, awards, suppliers, competitors, negations,
#: mere mentions) is the sixth class and is never returned as a relation.
RELATIONS: tuple[str, ...] = ("started", "renewed", "expanded", "ended", "client")
NONE = "none"
LABELS: tuple[str, ...] = (*RELATIONS, NONE)
#: Engagement scopes, as the registry spells them: the whole service or one channel.
CHANNELS: tuple[str, ...] = ("chat", "voice", "email", "social")
SCOPE_ALL = "all"
SCOPES: tuple[str, ...] = (SCOPE_ALL, *CHANNELS)


@dataclass(frozen=True)
class Mention:
    """An organisation named in a sentence: character span, surface text, and how sure the tagger is."""

    start: int
    end: int
    text: str
    confidence: float
    source: str  # "tagger" (the token head) or "gazetteer" (a known name)


@dataclass(frozen=True)
class Relation:
    """One (vendor, brand) relation read from one sentence, with the sentence as evidence."""

    brand: str
    relation: str
    scope: str
    channels: tuple[str, ...]
    date: dt.date | None
    date_precision: str | None
    evidence: str
    sentence_index: int
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Extraction:
    """Everything read from one text: relations of any confidence, and why sentences gave none."""

    relations: list[Relation]
    sentences: int
    counts: dict[str, int]
