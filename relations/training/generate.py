"""Training and held-out sentences from the templates and name lists in relations/data/, with a fixed seed.

The held-out split uses other templates AND other names than training (see the data files), so its
figures measure wording and names the model has never seen. Hand-written sentences
(data/handwritten.csv) join the split their row names.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from relations.package_data import DATA, package_path
from relations.text import find_names, find_pronouns, vendor_aliases
from relations.types import NONE, RELATIONS

SEED = 20260601
RELATION_CATEGORIES = RELATIONS
DISTRACTORS = ("partner", "award", "supplier", "competitor", "unlike", "negation", "other")
#: Sentences drawn per template: (train, heldout).
PER_TEMPLATE = {"relation": (30, 16), "distractor": (26, 16), "noorg": (12, 8)}
HANDWRITTEN_REPEAT = 3
_SLOT = re.compile(r"\{(V2|V|B3|B2|B|O|P|D|Y2|Y|CH2|CH|R|N)\}")
_DEFAULT_B = {"partner": "tech", "award": "award", "supplier": "tech", "competitor": "vendor"}


@dataclass
class Org:
    """An organisation in a sentence other than the vendor, and its relation with the vendor."""

    start: int
    end: int
    label: str


@dataclass
class Example:
    """One labelled sentence."""

    text: str
    vendor: str
    vendor_spans: list[tuple[int, int]]
    vendor_is_name: bool
    orgs: list[Org]
    category: str
    template: str
    split: str
    channels: list[str] = field(default_factory=list)
    date: str | None = None
    date_precision: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Example:
        row = dict(row)
        row["orgs"] = [Org(**o) for o in row["orgs"]]
        row["vendor_spans"] = [tuple(s) for s in row["vendor_spans"]]
        return cls(**row)


def load_yaml(name: str) -> dict[str, Any]:
    with package_path(*DATA, name).open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


class Names:
    """Name makers for one split."""

    def __init__(self, split: dict[str, Any], shared: dict[str, Any], rng: random.Random) -> None:
        self.s = split
        self.sh = shared
        self.rng = rng

    def make(self, kind: str) -> tuple[str, str]:
        """(full name, the form written in the sentence)."""
        r = self.rng
        if kind == "brand":
            name = r.choice(self.s["brand_prefixes"])
            if r.random() < 0.8:
                name += " " + r.choice(self.sh["brand_words"])
            if r.random() < 0.1:
                name += " " + r.choice(self.sh["legal"])
            return name, name
        if kind == "vendor":
            prefix = r.choice(self.s["vendor_prefixes"])
            full = f"{prefix} {r.choice(self.sh['vendor_words'])}"
            return full, full if r.random() < 0.6 else prefix
        if kind == "tech":
            name = r.choice(self.s["tech_prefixes"])
            return (name, name) if r.random() < 0.3 else ((n := f"{name} {r.choice(self.sh['tech_words'])}"), n)
        if kind == "award":
            name = r.choice(self.s["award_names"])
            return name, name
        if kind == "investor":
            name = f"{r.choice(self.s['investor_prefixes'])} {r.choice(self.sh['investor_words'])}"
            return name, name
        if kind == "analyst":
            name = f"{r.choice(self.s['investor_prefixes'] + self.s['tech_prefixes'])} {r.choice(self.sh['analyst_words'])}"
            return name, name
        raise ValueError(f"unknown name kind {kind!r}")


def _random_date(rng: random.Random) -> tuple[str, dt.date, str]:
    day = dt.date(2016, 1, 1) + dt.timedelta(days=rng.randrange(0, 3800))
    style = rng.random()
    if style < 0.4:
        return day.strftime("%B %Y"), day.replace(day=1), "month"
    if style < 0.65:
        return f"{day.day} {day:%B %Y}", day, "day"
    if style < 0.9:
        return f"{day:%B} {day.day}, {day.year}", day, "day"
    return day.isoformat(), day, "day"


def render(template: dict[str, Any], category: str, names: Names, rng: random.Random, split: str,
           template_id: str) -> Example | None:
    """One sentence from one template, with its spans and labels."""
    shared = names.sh
    text = template["t"]
    label = category if category in RELATIONS else NONE
    b_kind = template.get("b") or _DEFAULT_B.get(category, "brand")
    o_kind = template.get("o") or "tech"
    first_person = "{V}" not in text
    vendor_full, vendor_written = names.make("vendor")
    used = {vendor_full, vendor_written}
    out: list[str] = []
    orgs: list[Org] = []
    vendor_spans: list[tuple[int, int]] = []
    channels: list[str] = list(template.get("ch") or [])
    date: tuple[dt.date, str] | None = None
    pos = 0
    length = 0
    for match in _SLOT.finditer(text):
        out.append(text[pos:match.start()])
        length += match.start() - pos
        pos = match.end()
        slot = match.group(1)
        fill: str
        org_label: str | None = None
        if slot == "V":
            fill = vendor_written
        elif slot in ("B", "B2", "B3", "O", "V2"):
            kind = {"O": o_kind, "V2": "vendor"}.get(slot, b_kind)
            for _ in range(20):
                _, fill = names.make(kind)
                if fill not in used and not any(fill in u or u in fill for u in used):
                    break
            else:
                return None
            used.add(fill)
            org_label = label if slot in ("B", "B2", "B3") else NONE
        elif slot == "P":
            fill = f"{rng.choice(shared['first_names'])} {rng.choice(shared['last_names'])}"
        elif slot == "D":
            fill, day, precision = _random_date(rng)
            date = (day, precision)
        elif slot in ("Y", "Y2"):
            year = rng.randrange(2010, 2025) if slot == "Y" else rng.randrange(2027, 2032)
            fill = str(year)
            if date is None:
                date = (dt.date(year, 1, 1), "year")
        elif slot in ("CH", "CH2"):
            options = [c for c in shared["channels"] if c not in channels]
            channel = rng.choice(options)
            channels.append(channel)
            fill = rng.choice(shared["channels"][channel])
        elif slot == "R":
            fill = rng.choice(shared["regions"])
        else:
            fill = str(rng.randrange(2, 13))
        if slot == "V":
            vendor_spans.append((length, length + len(fill)))
        if org_label is not None:
            orgs.append(Org(length, length + len(fill), org_label))
        out.append(fill)
        length += len(fill)
    out.append(text[pos:])
    sentence = "".join(out)
    if first_person:
        vendor_spans = find_pronouns(sentence)
        if not vendor_spans:
            raise ValueError(f"template {template_id} has no {{V}} and no we/our/us: {text!r}")
    return Example(
        text=sentence, vendor=vendor_full, vendor_spans=vendor_spans, vendor_is_name=not first_person,
        orgs=orgs, category=category, template=template_id, split=split,
        channels=sorted(set(channels)) if label != NONE else [],
        date=date[0].isoformat() if date and label != NONE else None,
        date_precision=date[1] if date and label != NONE else None,
    )


def _count(category: str, split: str) -> int:
    group = "relation" if category in RELATIONS else "noorg" if category == "noorg" else "distractor"
    return PER_TEMPLATE[group][0 if split == "train" else 1]


def template_examples(split: str, seed: int = SEED) -> list[Example]:
    """Every sentence the templates give for ``split`` ("train" or "heldout"), deduplicated, in a fixed order."""
    templates = load_yaml("templates.yaml")[split]
    names_data = load_yaml("names.yaml")
    rng = random.Random(f"{seed}-{split}")
    names = Names(names_data[split], names_data["shared"], rng)
    seen: set[str] = set()
    examples: list[Example] = []
    for category, entries in templates.items():
        for number, entry in enumerate(entries):
            template = {"t": entry} if isinstance(entry, str) else dict(entry)
            template_id = f"{split}/{category}/{number}"
            for _ in range(_count(category, split)):
                example = render(template, category, names, rng, split, template_id)
                if example is not None and example.text not in seen:
                    seen.add(example.text)
                    examples.append(example)
    return examples


def handwritten_examples(split: str) -> list[Example]:
    """The hand-written sentences of ``split``; a row whose names are not in its text is an error."""
    path: Path = package_path(*DATA, "handwritten.csv")
    out: list[Example] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            if row["split"] != split:
                continue
            text = row["text"]
            spans = find_names(text, vendor_aliases(row["vendor"]))
            by_name = bool(spans)
            spans = spans or find_pronouns(text)
            orgs: list[Org] = []
            for name, label in [(row["brand"], row["relation"])] + [(o, NONE) for o in row["orgs"].split(";") if o]:
                start = text.find(name)
                if start < 0 or not spans:
                    raise ValueError(f"{path}:{line}: {name!r} or the vendor is not in the sentence")
                orgs.append(Org(start, start + len(name), label))
            channels = sorted(c for c in row["channels"].split(";") if c)
            out.append(Example(text, row["vendor"], spans, by_name, orgs, row["relation"] if row["relation"] != NONE else "handwritten-none",
                               f"{split}/handwritten/{line}", split, channels if row["relation"] != NONE else []))
    return out


def dataset(split: str) -> list[Example]:
    """Template sentences and hand-written ones (repeated in training) for ``split``."""
    hand = handwritten_examples(split)
    return template_examples(split) + hand * (HANDWRITTEN_REPEAT if split == "train" else 1)
