"""The sentence model's interface as discovery uses it, and an interim keyword matcher behind it.

The project's relation model (package ``relations``: organisation mentions and a relation
classifier over vendor/brand sentence pairs) is handed in by the application, which may import
it; the crawler layer only knows the shape below. ``KeywordRelationModel`` answers the same call
with hand-written cues: it keeps the pipeline testable without the trained model and serves as a
baseline beside it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from crawler.discovery.names import normalise_name

RELATIONS = ("started", "renewed", "expanded", "ended", "client")
SCOPES = ("all", "chat", "voice", "email", "social")


class RelationLike(Protocol):
    """One (vendor, brand) relation read from a sentence: the fields discovery keeps."""

    @property
    def brand(self) -> str: ...
    @property
    def relation(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def date(self) -> date | None: ...
    @property
    def evidence(self) -> str: ...
    @property
    def confidence(self) -> float: ...


class SentenceModel(Protocol):
    """``relations.RelationModel.extract``'s signature: relations between the vendor and brands in a text."""

    def extract(self, text: str, vendor_name: str, known_brands: Sequence[str] = (), *,
                page_date: date | None = None, vendor_aliases: Sequence[str] = (),
                first_person: bool = True, min_confidence: float = 0.5) -> Sequence[RelationLike]: ...


@dataclass(frozen=True)
class KeywordRelation:
    brand: str
    relation: str
    scope: str
    date: date | None
    evidence: str
    confidence: float
    channels: tuple[str, ...] = field(default=())


DISTRACTOR = re.compile(r"\b(unlike|award|awards|shortlisted|nominated|finalist|supplier|suppliers|vendor of|"
                        r"technology partners?|powered by|competitor|rather than|instead of)\b", re.I)
NEGATION = re.compile(r"\b(not|never|no longer considering|declined|rumou?r)\b", re.I)
CUES: tuple[tuple[str, re.Pattern[str], float], ...] = (
    ("ended", re.compile(r"\b(ended|ends|conclude[sd]?|terminat\w+|exit\w*|wound down|"
                         r"transitions? to a new provider|moves? away from|parts? ways)\b", re.I), 0.85),
    ("renewed", re.compile(r"\b(renew\w*|re-signs?|extended its contract|extends its contract|further (two|three|"
                           r"four|five) years)\b", re.I), 0.85),
    ("expanded", re.compile(r"\b(expand\w*|extend\w* (its|their) (engagement|partnership)|adds?|widen\w*)\b.*"
                            r"\b(to|into|with)\b", re.I), 0.8),
    ("started", re.compile(r"\b(select\w*|choos\w*|chose|pick(s|ed)|hires?|hired|taps|appoint\w*|award\w* (a|the) contract|"
                           r"wins? .{0,40}contract|will (run|handle|provide)|signs? with|outsourc\w*)\b", re.I), 0.85),
    ("client", re.compile(r"\b(case study|clients?|customers?|serves|answers|supports|works with|"
                          r"on behalf of)\b", re.I), 0.6),
)
CHANNELS = (("chat", re.compile(r"\b(live chat|chat|messaging)\b", re.I)),
            ("voice", re.compile(r"\b(phone|voice|telephone|call centre line)\b", re.I)),
            ("email", re.compile(r"\bemail\b", re.I)),
            ("social", re.compile(r"\bsocial media\b", re.I)))
LEADING_ORG = re.compile(r"^((?:[A-Z][\w'’-]*)(?:\s+(?:&\s+)?[A-Z][\w'’-]*){0,4})\s+"
                         r"(?:has\s+)?(?:selects?|selected|chooses|chose|appoints?|appointed|renews?|renewed|"
                         r"expands?|expanded|and\s)")
FIRST_PERSON = re.compile(r"\b(we|our|us)\b", re.I)


def aliases_of(vendor_name: str) -> list[str]:
    """'Harbor & Finch Customer Care' -> also 'Harbor & Finch': the name without its trade words."""
    words = vendor_name.split()
    trade = {"customer", "care", "contact", "group", "services", "solutions", "outsourcing", "call", "calls",
             "voice", "centre", "center", "bpo"}
    core = list(words)
    while len(core) > 1 and core[-1].lower() in trade:
        core.pop()
    return [vendor_name] + ([" ".join(core)] if core != words else [])


def _scope(relation: str, text: str) -> tuple[str, tuple[str, ...]]:
    found = tuple(name for name, pattern in CHANNELS if pattern.search(text))
    if relation == "expanded":
        tail = re.split(r"\b(?:to|into)\b", text, maxsplit=1)[-1]
        target = tuple(name for name, pattern in CHANNELS if pattern.search(tail))
        return (target[0] if target else "all"), found
    return (found[0] if len(found) == 1 else "all"), found


class KeywordRelationModel:
    """Interim sentence matcher: a vendor mention, a brand mention and a relation cue in one sentence."""

    name = "keyword-interim"

    def extract(self, text: str, vendor_name: str, known_brands: Sequence[str] = (), *,
                page_date: date | None = None, vendor_aliases: Sequence[str] = (),
                first_person: bool = True, min_confidence: float = 0.5) -> list[KeywordRelation]:
        sentence = " ".join(text.split())
        plain = f" {normalise_name(sentence)} "
        aliases = [*aliases_of(vendor_name), *vendor_aliases]
        if not any(f" {normalise_name(a)} " in plain for a in aliases) and not (
                first_person and FIRST_PERSON.search(sentence)):
            return []
        vendor_keys = {normalise_name(a) for a in aliases}
        brands = [b for b in known_brands if f" {normalise_name(b)} " in plain and normalise_name(b) not in vendor_keys]
        lead = LEADING_ORG.match(sentence)
        if lead and normalise_name(lead.group(1)) not in vendor_keys and lead.group(1) not in brands:
            brands.append(lead.group(1))
        if not brands:
            return []
        # cues and channels are read with the company names taken out ("Meridian Voice" names no channel)
        rest = sentence
        for name in sorted({*aliases, *brands}, key=len, reverse=True):
            rest = re.sub(re.escape(name), " ", rest, flags=re.I)
        relation, confidence = "client", 0.0
        for name, pattern, weight in CUES:
            if pattern.search(rest):
                relation, confidence = name, weight
                break
        if confidence == 0.0:
            return []
        if DISTRACTOR.search(rest) or NEGATION.search(rest):
            confidence = 0.15
        if confidence < min_confidence:
            return []
        scope, channels = _scope(relation, rest)
        return [KeywordRelation(b, relation, scope, None, sentence, confidence, channels) for b in brands]
