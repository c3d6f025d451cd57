"""Decide every review of the demo world: who wrote it, when, where, about what, and how it felt."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from demo_world.text import MIXED, NEGATIVE, POSITIVE, Composer, stars_for
from demo_world.world import Brand, DemoDataError, World

LANGUAGES = ("de", "fr", "es")
ID_PREFIX = {"trust": "T", "forum": "F"}


@dataclass
class Review:
    """One public review as the site shows it, plus the truth behind it."""

    brand: str
    site: str
    day: date
    time: str                  # HH:MM:SS, shown by the app site only
    author: str
    title: str
    paragraphs: list[str]
    stars: int                 # 1..5; the app site shows a 0..10 score
    app_score: int
    language: str
    vendor: str | None         # vendor whose agents the review's service part is about
    channel: str
    service: int | None        # +1 / -1 / 0 (mixed) / None (not mentioned)
    product: int | None
    site_review_id: str | None = None
    syndicated_of: int | None = None   # index of the original review for syndicated copies
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)


def build_corpus(world: World, composer: Composer, rng: random.Random, today: date) -> list[Review]:
    """All public reviews, originals first (by brand, by date), then syndicated copies."""
    reviews: list[Review] = []
    for brand in world.brands:
        count = rng.randint(world.reviews_min, world.reviews_max)
        span = (world.period_end - world.period_start).days
        days = sorted(world.period_start + timedelta(days=rng.randint(0, span)) for _ in range(count))
        for day in days:
            reviews.append(_plan(world, composer, rng, brand, day))
    foreign = set(rng.sample(range(len(reviews)), world.non_english))
    seen: set[str] = set()
    for index, review in enumerate(reviews):
        brand = next(b for b in world.brands if b.id == review.brand)
        _write(composer, rng, review, brand, rng.choice(LANGUAGES) if index in foreign else "en", seen)
    reviews = [r for r in reviews if r.day <= today]  # nothing is published ahead of the calendar
    reviews += _syndicate(world, rng, reviews, today)
    _assign_ids(rng, reviews)
    return reviews


def _plan(world: World, composer: Composer, rng: random.Random, brand: Brand, day: date) -> Review:
    serving = world.serving(brand.id, day)
    if not serving:
        raise DemoDataError(f"world.yaml: nobody serves {brand.id} on {day}")
    engagement = rng.choices(serving, [e.share for e in serving])[0]
    channel = {"voice": "phone", "chat": "chat"}.get(engagement.scope) or rng.choice(["any", "any", "phone", "chat"])
    focus = rng.random()
    service: int | None = None
    product: int | None = None
    if focus >= 0.2:  # 20% talk about the product only
        roll = rng.random()
        service = MIXED if roll < 0.08 else POSITIVE if rng.random() < world.vendor(engagement.vendor_id).quality \
            else NEGATIVE
    if focus < 0.2 or focus >= 0.45:  # 25% talk about the service only
        product = POSITIVE if rng.random() < brand.quality else NEGATIVE
    site = brand.sites[0] if len(brand.sites) == 1 or rng.random() < 0.6 else brand.sites[1]
    return Review(
        brand=brand.id, site=site, day=day,
        time=f"{rng.randint(6, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
        author=composer.author(rng, "handle" if site in ("forum", "app") and rng.random() < 0.6 else "name"),
        title="", paragraphs=[], stars=3, app_score=6, language="en",
        vendor=engagement.vendor_id if service is not None else None, channel=channel,
        service=service, product=product,
    )


def _write(composer: Composer, rng: random.Random, review: Review, brand: Brand, lang: str,
           seen: set[str]) -> None:
    """Fill the text; bodies are unique so hashed ids never collide on sites without ids."""
    for _ in range(50):
        if lang == "en":
            text = composer.compose(rng, brand=brand.name, sector=brand.sector, service=review.service,
                                    product=review.product, channel=review.channel)
        else:
            text = composer.compose_foreign(rng, lang, service=review.service, product=review.product)
        if "\n\n".join(text.paragraphs) not in seen:
            break
    else:  # tiny banks (foreign) may run out of combinations: a signature line keeps the body unique
        text.paragraphs[-1] += f" ({review.author}, {review.day:%m/%Y})"
    seen.add("\n\n".join(text.paragraphs))
    review.paragraphs, review.language = text.paragraphs, lang
    review.stars = stars_for(rng, text.sentiment)
    review.title = composer.title(rng, review.stars, lang)
    review.app_score = max(0, min(10, review.stars * 2 + rng.choice([-1, 0, 0, 0, 1]) - (review.stars == 5)))


def _syndicate(world: World, rng: random.Random, reviews: list[Review], today: date) -> list[Review]:
    """Copies of reviews posted by the same author on the brand's other site a few days later."""
    two_sites = {b.id: b.sites for b in world.brands if len(b.sites) == 2}
    candidates = [i for i, r in enumerate(reviews) if r.brand in two_sites and r.language == "en"]
    copies = []
    for index in sorted(rng.sample(candidates, min(world.syndicated, len(candidates)))):
        original = reviews[index]
        sites = two_sites[original.brand]
        day = min(today, original.day + timedelta(days=rng.randint(0, 4)))
        paragraphs = list(original.paragraphs)
        title = original.title
        edit = rng.random()
        if edit < 0.2:
            paragraphs[-1] += " Edit: still the same a week later."
        elif edit < 0.35:
            paragraphs = [" ".join(paragraphs)]
            if len(original.paragraphs) == 1:
                paragraphs[0] = paragraphs[0].replace(". ", "! ", 1) if ". " in paragraphs[0] \
                    else paragraphs[0] + " Just my experience."
        elif edit < 0.5:
            title = f"{title}!"
        copies.append(replace(original, site=sites[1] if original.site == sites[0] else sites[0], day=day,
                              title=title, paragraphs=paragraphs, syndicated_of=index, extra={}))
    return copies


def _assign_ids(rng: random.Random, reviews: list[Review]) -> None:
    """Site ids in publication order, like a real platform's counters; the shop shows none."""
    counters = {"trust": rng.randint(100000, 400000), "forum": rng.randint(20000, 90000)}
    for review in sorted(reviews, key=lambda r: (r.day, r.time, r.brand)):
        if review.site in counters:
            counters[review.site] += rng.randint(1, 40)
            review.site_review_id = f"{ID_PREFIX[review.site]}{counters[review.site]}"
        elif review.site == "app":
            review.site_review_id = f"{rng.getrandbits(64):016x}"
