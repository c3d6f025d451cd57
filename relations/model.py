"""RelationModel: who serves whom, read from a page's sentences. Load once, extract many.

Per page: split into sentences; keep those that name the vendor (its name, a shorter form of it, or
"we/our/us" on its own pages) and read as English; tag organisation mentions in them (token head,
plus a gazetteer of known brands when given); classify every (vendor, other organisation) pair;
attach the channels and the date the sentence states. Sentences are encoded in length-sorted
batches, once for tagging and once per pair. Every sentence that gives nothing is counted by reason.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from relations.channels import find_channels, scope_of
from relations.dates import find_date
from relations.encoder import Encoder, EncoderUnavailable
from relations.heads import PairHead, TaggerHead, decode_tags, pair_features, tagger_input
from relations.package_data import ARTEFACT, CONFIG_FILE, HEADS_FILE, package_path
from relations.text import find_names, find_pronouns, looks_english, masked, split_sentences, vendor_aliases
from relations.types import LABELS, NONE, RELATIONS, Extraction, Mention, Relation

#: Sentences with a vendor mention read per call at most; the rest are counted as "over_cap".
MAX_SENTENCES = 2000
#: Confidence at or above which extract() returns a relation.
MIN_CONFIDENCE = 0.5
#: Pairs below this confidence are counted as "none" and not reported at all, even by analyse().
MIN_REPORTED = 0.1
#: Tagger mentions below this confidence are not organisations.
MIN_MENTION = 0.5


class RelationModelError(RuntimeError):
    """The encoder or the trained heads cannot be loaded; the message names what is missing."""


def default_artefact() -> Path:
    """The committed heads (package data of relations)."""
    return package_path(*ARTEFACT)


class RelationModel:
    """The frozen encoder with the trained tagger and pair heads; build it with :meth:`load`."""

    def __init__(self, encoder: Encoder, tagger: TaggerHead, pair: PairHead, config: dict[str, Any]) -> None:
        self.encoder = encoder
        self.tagger = tagger.eval()
        self.pair = pair.eval()
        self.config = config

    @classmethod
    def load(cls, artefact: str | Path | None = None, *, device: str | None = None) -> RelationModel:
        """Load the packaged encoder and the committed heads (local files only)."""
        directory = Path(artefact) if artefact is not None else default_artefact()
        try:
            config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
            tensors = load_file(directory / HEADS_FILE)
        except (OSError, ValueError) as exc:
            raise RelationModelError(f"cannot read the relation heads in {directory}: {exc}") from exc
        try:
            encoder = Encoder.load(device)
        except EncoderUnavailable as exc:
            raise RelationModelError(str(exc)) from exc
        if list(config.get("labels", [])) != list(LABELS):
            raise RelationModelError(f"{directory}: labels {config.get('labels')} differ from {list(LABELS)}")
        tagger, pair = build_heads(encoder.hidden_size)
        try:
            tagger.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("tagger.")})
            pair.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("pair.")})
        except RuntimeError as exc:
            raise RelationModelError(f"{directory / HEADS_FILE} does not fit this encoder: {exc}") from exc
        tagger.to(encoder.device)
        pair.to(encoder.device)
        return cls(encoder, tagger, pair, config)

    def mentions(self, sentence: str, known_brands: Sequence[str] = ()) -> list[Mention]:
        """Organisations named in one sentence (tagger and gazetteer), in order."""
        return self.mentions_of([sentence], known_brands)[0] if sentence.strip() else []

    def extract(self, text: str, vendor_name: str, known_brands: Sequence[str] = (), *,
                page_date: dt.date | None = None, vendor_aliases: Sequence[str] = (),
                first_person: bool = True, min_confidence: float = MIN_CONFIDENCE) -> list[Relation]:
        """Relations of the vendor with the brands the text names, at ``min_confidence`` or above."""
        found = self.analyse(text, vendor_name, known_brands, page_date=page_date,
                             vendor_aliases=vendor_aliases, first_person=first_person)
        return [r for r in found.relations if r.confidence >= min_confidence]

    def analyse(self, text: str, vendor_name: str, known_brands: Sequence[str] = (), *,
                page_date: dt.date | None = None, vendor_aliases: Sequence[str] = (),
                first_person: bool = True) -> Extraction:
        """Every non-none relation in the text whatever its confidence, with counted reasons for the rest."""
        counts: Counter[str] = Counter()
        if not isinstance(text, str) or not text.strip() or not vendor_name or not vendor_name.strip():
            counts["empty_input"] += 1
            return Extraction([], 0, dict(counts))
        sentences = split_sentences(text)
        names = _vendor_names(vendor_name, vendor_aliases)
        kept: list[tuple[int, str, list[tuple[int, int]], bool]] = []
        for index, sentence in enumerate(sentences):
            spans = find_names(sentence, names)
            by_name = bool(spans)
            if not spans and first_person:
                spans = find_pronouns(sentence)
            if not spans:
                counts["no_vendor_mention"] += 1
            elif not looks_english(sentence):
                counts["not_english"] += 1
            elif len(kept) >= MAX_SENTENCES:
                counts["over_cap"] += 1
            else:
                kept.append((index, sentence, spans, by_name))
        mentions = self.mentions_of([s for _, s, _, _ in kept], known_brands)
        jobs: list[tuple[int, str, str, Mention, list[tuple[int, int]], list[tuple[int, int]]]] = []
        for (index, sentence, vendor_spans, by_name), found in zip(kept, mentions, strict=True):
            others = [m for m in found if not any(m.start < e and s < m.end for s, e in vendor_spans)
                      and not _is_vendor(m.text, names)]
            if not others:
                counts["no_brand_mention"] += 1
                continue
            for target in others:
                rest = [(m.start, m.end) for m in others if m is not target]
                pair_text, target_spans, vendor_marks = masked(
                    sentence, (target.start, target.end), vendor_spans, rest, vendor_is_name=by_name)
                jobs.append((index, sentence, pair_text, target, target_spans, vendor_marks))
        relations: list[Relation] = []
        for (index, sentence, pair_text, target, _, _), probs in zip(
                jobs, self._classify([(j[2], j[4], j[5]) for j in jobs]), strict=True):
            distribution = {label: round(float(p), 4) for label, p in zip(LABELS, probs, strict=True)}
            confidence = min(1.0, max(0.0, (1.0 - distribution[NONE]) * target.confidence))
            if confidence < MIN_REPORTED:
                counts["none"] += 1
                continue
            channels = find_channels(pair_text)
            date, precision = find_date(sentence, page_date)
            relations.append(Relation(
                brand=target.text, relation=max(RELATIONS, key=lambda label: distribution[label]),
                scope=scope_of(pair_text, channels), channels=channels, date=date, date_precision=precision,
                evidence=sentence, sentence_index=index, confidence=round(confidence, 4),
                probabilities=distribution))
        counts["below_confidence"] += sum(1 for r in relations if r.confidence < MIN_CONFIDENCE)
        return Extraction(relations, len(sentences), {k: v for k, v in counts.items() if v})

    def mentions_of(self, sentences: Sequence[str], known_brands: Sequence[str] = ()) -> list[list[Mention]]:
        """Organisations in each of many sentences, encoded in batches: tagger mentions merged with gazetteer matches (which win where they overlap)."""
        if not sentences:
            return []
        encoded = self.encoder.encode(sentences)
        x, lengths = tagger_input(sentences, encoded)
        with torch.inference_mode():
            probs = torch.softmax(self.tagger(x.to(self.encoder.device), lengths), dim=-1).cpu()
        out: list[list[Mention]] = []
        for row, (sentence, enc) in enumerate(zip(sentences, encoded, strict=True)):
            found = [Mention(s, e, sentence[s:e], 1.0, "gazetteer") for s, e in find_names(sentence, known_brands)]
            for start, end, confidence in decode_tags(probs[row, : enc.hidden.shape[0]], enc):
                start, end = _whole_words(sentence, start, end)
                if confidence < MIN_MENTION or any(m.start < end and start < m.end for m in found):
                    continue
                found.append(Mention(start, end, sentence[start:end], round(confidence, 4), "tagger"))
            out.append(sorted(found, key=lambda m: m.start))
        return out

    def _classify(self, items: Sequence[tuple[str, list[tuple[int, int]], list[tuple[int, int]]]]) -> list[list[float]]:
        """Class probabilities (types.LABELS order) of each masked pair sentence."""
        if not items:
            return []
        encoded = self.encoder.encode([text for text, _, _ in items])
        features = torch.stack([pair_features(enc, target, vendor)
                                for enc, (_, target, vendor) in zip(encoded, items, strict=True)])
        with torch.inference_mode():
            return torch.softmax(self.pair(features.to(self.encoder.device)), dim=-1).cpu().tolist()


def build_heads(hidden: int) -> tuple[TaggerHead, PairHead]:
    """The two heads, untrained, in the shapes the committed weights have."""
    return TaggerHead(hidden), PairHead(hidden, len(LABELS))


def _vendor_names(vendor_name: str, extra: Sequence[str]) -> list[str]:
    return vendor_aliases(vendor_name.strip(), [a for a in extra if a and a.strip()])


def _is_vendor(mention: str, names: Sequence[str]) -> bool:
    """A tagged mention that is the vendor under another form ("Harbor & Finch Ltd")."""
    return bool(find_names(mention, names))


def _whole_words(sentence: str, start: int, end: int) -> tuple[int, int]:
    """Grow a span to whole words and drop punctuation at its edges ("Finch's" -> "Finch")."""
    while start > 0 and sentence[start - 1].isalnum():
        start -= 1
    while end < len(sentence) and sentence[end].isalnum():
        end += 1
    while end > start and not sentence[end - 1].isalnum() and sentence[end - 1] not in ".)":
        end -= 1
    while start < end and not sentence[start].isalnum():
        start += 1
    return start, end
