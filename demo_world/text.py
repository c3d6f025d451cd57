"""Compose review texts from the sentence banks in the package data file data/sentences.yaml.

Customer-service sentences carry the serving vendor's polarity, product sentences the
brand's, so a sentiment model can be checked against a known truth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo_world.world import DemoDataError, load_yaml

POSITIVE, NEGATIVE, MIXED = 1, -1, 0


@dataclass
class Composed:
    paragraphs: list[str]
    sentiment: float  # -1..1, mean polarity of the content sentences


class Composer:
    """Turns (service polarity, product polarity, channel) into a natural-looking review."""

    def __init__(self, bank: dict[str, Any]) -> None:
        self.bank = bank
        try:
            self.service = bank["service"]
            self.product = bank["product"]
            self.sectors = bank["sectors"]
            self.foreign = bank["foreign"]
        except KeyError as exc:
            raise DemoDataError(f"sentences.yaml: missing section {exc}") from exc

    @classmethod
    def load(cls, data_dir: Path | None = None) -> Composer:
        return cls(load_yaml("sentences.yaml", data_dir))

    # -- names -----------------------------------------------------------------
    def author(self, rng: random.Random, style: str) -> str:
        names = self.bank["names"]
        first = rng.choice(names["first"])
        if style == "handle":
            return f"{rng.choice(names['handle_words'])}_{first.lower()}{rng.randint(1, 99)}"
        return f"{first} {rng.choice(names['last_initial'])}."

    # -- English -----------------------------------------------------------------
    def _slots(self, rng: random.Random, brand: str, sector: str) -> dict[str, Any]:
        sec = self.sectors[sector]
        return {
            "brand": brand, "agent": rng.choice(self.bank["agents"]),
            "product": rng.choice(sec["products"]), "issue": rng.choice(sec["issues"]),
            "short_minutes": rng.randint(2, 9), "long_minutes": rng.choice([35, 40, 45, 50, 55, 70, 90, 120]),
            "days": rng.randint(2, 14), "weeks": rng.randint(2, 8), "amount": rng.choice([15, 29, 49, 80, 120, 250, 480]),
            "years": rng.randint(2, 12),
        }

    def _service_pool(self, polarity: int, channel: str) -> list[str]:
        key = "positive" if polarity > 0 else "negative"
        pool = list(self.service[key]["any"])
        if channel in ("phone", "chat"):
            pool += self.service[key][channel] * 2  # channel-specific lines come up more often
        return pool

    def _product_pool(self, polarity: int, sector: str) -> list[str]:
        key = "positive" if polarity > 0 else "negative"
        return list(self.product[key]) + list(self.sectors[sector][key]) * 2

    def compose(self, rng: random.Random, *, brand: str, sector: str, service: int | None,
                product: int | None, channel: str) -> Composed:
        """An English review: a service block and/or a product block, optional opener and closer."""
        blocks: list[list[tuple[str, int]]] = []
        if service is not None:
            if service == MIXED:
                lines = [(rng.choice(self.service["mixed"]), MIXED)]
            else:
                k = rng.choice([1, 1, 2, 2, 3])
                lines = [(t, service) for t in _sample(rng, self._service_pool(service, channel), k)]
            blocks.append(lines)
        if product is not None:
            k = rng.choice([1, 1, 2, 2, 3])
            blocks.append([(t, product) for t in _sample(rng, self._product_pool(product, sector), k)])
        rng.shuffle(blocks)
        polarities = [p for block in blocks for _, p in block]
        sentiment = sum(polarities) / len(polarities)
        slots = self._slots(rng, brand, sector)

        paragraphs: list[list[str]] = []
        previous: int | None = None
        for block in blocks:
            para: list[str] = []
            for template, pol in block:
                if previous is not None and pol * previous == -1 and rng.random() < 0.6:
                    template = _with_connector(self._connector(rng, pol), template)
                para.append(template.format(**slots))
                previous = pol
            paragraphs.append(para)
        if rng.random() < 0.35:
            paragraphs[0].insert(0, rng.choice(self.bank["openers"]).format(**slots))
        if rng.random() < 0.45:
            mood = "positive" if sentiment > 0.3 else "negative" if sentiment < -0.3 else "mixed"
            paragraphs[-1].append(rng.choice(self.bank["closers"][mood]).format(**slots))
        if len(paragraphs) > 1 and rng.random() < 0.4:  # many people write one block of text
            paragraphs = [[s for p in paragraphs for s in p]]
        return Composed([" ".join(p) for p in paragraphs], sentiment)

    def _connector(self, rng: random.Random, polarity: int) -> str:
        connectors = self.bank["connectors"]
        pool = connectors["any"] + connectors["to_positive" if polarity > 0 else "to_negative"]
        return str(rng.choice(pool))

    def title(self, rng: random.Random, stars: int, lang: str = "en") -> str:
        """Headlines follow the reviewer's overall verdict, i.e. the stars they gave."""
        if lang != "en":
            key = "titles_positive" if stars >= 3 else "titles_negative"
            return str(rng.choice(self.foreign[lang][key]))
        mood = "positive" if stars >= 4 else "negative" if stars <= 2 else "mixed"
        return str(rng.choice(self.bank["titles"][mood]))

    # -- other languages -----------------------------------------------------------
    def compose_foreign(self, rng: random.Random, lang: str, *, service: int | None,
                        product: int | None) -> Composed:
        """A short review in German, French or Spanish; MIXED service reads as negative there."""
        bank = self.foreign[lang]
        lines: list[tuple[str, int]] = []
        if service is not None:
            pol = POSITIVE if service > 0 else NEGATIVE
            key = "service_positive" if pol > 0 else "service_negative"
            lines += [(t, pol) for t in _sample(rng, bank[key], rng.choice([1, 2]))]
        if product is not None:
            key = "product_positive" if product > 0 else "product_negative"
            lines.append((rng.choice(bank[key]), product))
        sentiment = sum(p for _, p in lines) / len(lines)
        return Composed([" ".join(t for t, _ in lines)], sentiment)


def _sample(rng: random.Random, pool: list[str], k: int) -> list[str]:
    unique = list(dict.fromkeys(pool))
    weights = [pool.count(t) for t in unique]
    picked: list[str] = []
    while len(picked) < min(k, len(unique)):
        choice = rng.choices(unique, weights)[0]
        if choice not in picked:
            picked.append(choice)
    return picked


def _with_connector(connector: str, template: str) -> str:
    """'But' + 'The agent...' -> 'But the agent...'; names and 'I' keep their capital."""
    if template.startswith(("{", "I ", "I'")) or template[:2].isupper():
        return f"{connector} {template}"
    return f"{connector} {template[0].lower()}{template[1:]}"


def stars_for(rng: random.Random, sentiment: float) -> int:
    """A 1..5 star rating that follows the text's sentiment, with human noise."""
    return max(1, min(5, round(3 + 1.9 * sentiment + rng.gauss(0, 0.75))))
