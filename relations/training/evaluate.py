"""Held-out figures: end to end (page text in, relations out) and the organisation tagger's spans.

End to end means what a caller gets: `RelationModel.analyse` on the sentence with the vendor's full
name, no gazetteer, relations at the default confidence. Every organisation of a held-out sentence
is an item with its gold label (a relation or "none"); a returned relation matches the item whose
surface name it overlaps, and a returned relation that matches no item counts as a false positive.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from relations.model import MIN_CONFIDENCE, RelationModel
from relations.text import split_sentences
from relations.training.generate import Example
from relations.types import LABELS, NONE, RELATIONS, Relation


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1 (0 where undefined) and the counts."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tp": tp, "fp": fp, "fn": fn}


def _overlaps(a: str, b: str) -> bool:
    a, b = a.lower().strip(), b.lower().strip()
    return bool(a) and bool(b) and (a in b or b in a)


def end_to_end(model: RelationModel, examples: Sequence[Example]) -> dict[str, Any]:
    """Relation detection, per-relation P/R/F1, distractor false positives, channels and dates."""
    pairs: list[tuple[str, str, str]] = []  # (gold, predicted, category)
    channel_ok = channel_n = date_ok = date_n = 0
    for example, found in zip(examples, _extract_all(model, examples), strict=True):
        used: set[int] = set()
        for org in example.orgs:
            surface = example.text[org.start:org.end]
            match = next((i for i, r in enumerate(found) if i not in used and _overlaps(r.brand, surface)), None)
            predicted = NONE if match is None else found[match].relation
            if match is not None:
                used.add(match)
            pairs.append((org.label, predicted, example.category))
            if match is not None and org.label != NONE and predicted == org.label:
                relation = found[match]
                if org.label in RELATIONS and example.category in RELATIONS:
                    channel_n += 1
                    channel_ok += tuple(example.channels) == relation.channels
                if example.date:
                    date_n += 1
                    date_ok += (relation.date is not None and relation.date.isoformat() == example.date
                                and relation.date_precision == example.date_precision)
        for i, relation in enumerate(found):
            if i not in used:
                pairs.append((NONE, relation.relation, example.category))
    detection = prf(sum(1 for g, p, _ in pairs if g != NONE and p != NONE),
                    sum(1 for g, p, _ in pairs if g == NONE and p != NONE),
                    sum(1 for g, p, _ in pairs if g != NONE and p == NONE))
    per_label = {label: prf(sum(1 for g, p, _ in pairs if g == label and p == label),
                            sum(1 for g, p, _ in pairs if g != label and p == label),
                            sum(1 for g, p, _ in pairs if g == label and p != label)) for label in LABELS}
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    for gold, predicted, category in pairs:
        if gold == NONE:
            by_category[category]["none_items"] += 1
            by_category[category]["false_relations"] += predicted != NONE
    distractors = {c: {"items": n["none_items"], "false_relations": n["false_relations"]}
                   for c, n in sorted(by_category.items())}
    return {
        "items": len(pairs), "sentences": len(examples), "detection": detection, "per_label": per_label,
        "none_items_by_category": distractors,
        "channels_exact": round(channel_ok / channel_n, 4) if channel_n else None, "channels_n": channel_n,
        "dates_exact": round(date_ok / date_n, 4) if date_n else None, "dates_n": date_n,
    }


def _extract_all(model: RelationModel, examples: Sequence[Example]) -> list[list[Relation]]:
    """What ``model.extract(example.text, example.vendor)`` returns for each example, read in batches.

    Examples of one vendor are read as one page, one line each: lines always end a sentence, so each
    relation's sentence index tells which example it came from, and the encoder runs in large batches.
    """
    out: list[list[Relation]] = [[] for _ in examples]
    by_vendor: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        by_vendor[example.vendor].append(i)
    for vendor, indices in by_vendor.items():
        owner: list[int] = []
        for i in indices:
            owner.extend([i] * len(split_sentences(examples[i].text)))
        result = model.analyse("\n".join(examples[i].text for i in indices), vendor)
        for relation in result.relations:
            if relation.confidence >= MIN_CONFIDENCE:
                out[owner[relation.sentence_index]].append(relation)
    return out


def gold_mentions(example: Example) -> set[tuple[int, int]]:
    """Gold organisation spans: the vendor's name where written, and every other organisation."""
    spans = {(o.start, o.end) for o in example.orgs}
    if example.vendor_is_name:
        spans.update(example.vendor_spans)
    return spans


def mentions(model: RelationModel, examples: Iterable[Example]) -> dict[str, float]:
    """Exact-span precision/recall/F1 of the tagger alone (no gazetteer)."""
    tp = fp = fn = 0
    examples = list(examples)
    for example, found in zip(examples, model.mentions_of([e.text for e in examples]), strict=True):
        gold = gold_mentions(example)
        predicted = {(m.start, m.end) for m in found}
        tp += len(gold & predicted)
        fp += len(predicted - gold)
        fn += len(gold - predicted)
    return prf(tp, fp, fn)


def evaluate(model: RelationModel, examples: Sequence[Example]) -> dict[str, Any]:
    """All held-out figures of the model card."""
    return {"end_to_end": end_to_end(model, examples), "mentions": mentions(model, examples)}
