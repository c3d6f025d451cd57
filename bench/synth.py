"""Deterministic synthetic data: review texts for the scoring benchmark and whole databases.

Texts come from the demo site's own composer (demo_world.text), mixed in length
from one-liners to multi-paragraph reviews long enough to need several model windows.
Databases are written straight into the product schema with executemany in large
transactions, so a million reviews take seconds to a minute, not hours.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

MODEL_ID = "bench/synthetic"
MODEL_REVISION = "synthetic-1"
N_VENDORS = 12
N_BRANDS = 48
CHUNK = 50_000
FIRST_DAY = date(2023, 1, 1)
LAST_DAY = date(2026, 6, 30)
AS_OF = date(2026, 7, 15)  # after every synthetic date


class TextMaker:
    """Review texts of the demo world's brands, in four length classes."""

    def __init__(self, seed: int = 11) -> None:
        from demo_world.text import Composer
        from demo_world.world import load_world

        self.rng = random.Random(seed)
        self.composer = Composer.load()
        self.brands = load_world().brands

    def _review(self) -> str:
        rng = self.rng
        brand = rng.choice(self.brands)
        focus = rng.random()
        service = None if focus < 0.2 else rng.choice([1, -1, -1, 0])
        product = None if 0.2 <= focus < 0.45 else rng.choice([1, -1])
        text = self.composer.compose(
            rng,
            brand=brand.name,
            sector=brand.sector,
            service=service,
            product=product,
            channel=rng.choice(["any", "phone", "chat"]),
        )
        return "\n\n".join(text.paragraphs)

    def text(self) -> str:
        """One review: 25% one-liners, 45% ordinary, 22% multi-paragraph, 8% very long."""
        roll = self.rng.random()
        if roll < 0.25:
            if self.rng.random() < 0.5:
                return self.composer.title(self.rng, self.rng.randint(1, 5))
            return self._review().split(". ")[0].rstrip(".") + "."
        if roll < 0.70:
            return self._review()
        parts = self.rng.randint(2, 4) if roll < 0.92 else self.rng.randint(8, 16)
        return "\n\n".join(self._review() for _ in range(parts))


def review_texts(n: int, seed: int = 11) -> list[str]:
    """``n`` deterministic review texts (same seed, same texts)."""
    maker = TextMaker(seed)
    return [maker.text() for _ in range(n)]


def _registry(rng: random.Random) -> tuple[list[tuple[Any, ...]], ...]:
    vendors = [(f"vendor-{v:02d}", f"Vendor {v:02d} Contact", None, None) for v in range(N_VENDORS)]
    brands = [(f"brand-{b:03d}", f"Brand {b:03d}", f"https://brand-{b:03d}.example") for b in range(N_BRANDS)]
    engagements: list[tuple[Any, ...]] = []
    sources: list[tuple[Any, ...]] = []
    for b, (brand_id, _, _) in enumerate(brands):
        first = vendors[b % N_VENDORS][0]
        if b % 4 == 0:  # a quarter of brands switched vendor mid-period
            second = vendors[(b + 5) % N_VENDORS][0]
            engagements.append(
                (len(engagements) + 1, first, brand_id, "2021-01-01", "2024-12-31", "all", 1.0, None)
            )
            engagements.append((len(engagements) + 1, second, brand_id, "2025-01-01", None, "all", 1.0, None))
        elif b % 7 == 0:  # split contracts by channel
            second = vendors[(b + 3) % N_VENDORS][0]
            engagements.append(
                (len(engagements) + 1, first, brand_id, "2021-01-01", None, "voice", 0.6, None)
            )
            engagements.append(
                (len(engagements) + 1, second, brand_id, "2021-01-01", None, "chat", 0.4, None)
            )
        else:
            engagements.append((len(engagements) + 1, first, brand_id, "2020-06-01", None, "all", 1.0, None))
        for site in ("trust", "shop")[: 1 + rng.randint(0, 1)]:
            url = f"http://127.0.0.1/{site}/{brand_id}/"
            sources.append(
                (hashlib.sha256(url.encode()).hexdigest()[:16], brand_id, url, "auto", 24.0, None, None)
            )
    return vendors, brands, engagements, sources


def make_database(path: Path, n_reviews: int, *, seed: int = 5, text_pool: int = 2_000) -> Path:
    """A product database at ``path`` holding ``n_reviews`` reviews, each with one sentiment row.

    About 2% of reviews are syndicated copies (same author, brand and text a few days apart),
    3% are non-English, 10% carry relative dates and 3% no date, as crawls of real sites do.
    """
    from storage.database import connect

    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    rng = random.Random(seed)
    texts = review_texts(text_pool, seed)
    db = connect(path)
    conn = db.conn
    conn.execute("PRAGMA synchronous = OFF")
    # 256 MB of page cache: the randomly keyed indexes (id, author) stay in memory while loading
    conn.execute("PRAGMA cache_size = -262144")
    vendors, brands, engagements, sources = _registry(rng)
    conn.execute("BEGIN")
    # columns named: later migrations add columns (with defaults) to these tables
    conn.executemany(_insert_sql("vendors", ("id", "name", "website", "notes")), vendors)
    conn.executemany(_insert_sql("brands", ("id", "name", "website")), brands)
    engagement_columns = (
        "id",
        "vendor_id",
        "brand_id",
        "start_date",
        "end_date",
        "scope",
        "share",
        "evidence_url",
    )
    conn.executemany(_insert_sql("engagements", engagement_columns), engagements)
    source_columns = (
        "id",
        "brand_id",
        "url",
        "layout",
        "crawl_interval_hours",
        "last_crawl_at",
        "last_crawl_status",
    )
    conn.executemany(_insert_sql("sources", source_columns), sources)
    conn.execute(
        "INSERT INTO crawl_runs (id, stage, started_at, finished_at, status) VALUES (1, 'crawl', ?, ?, 'ok')",
        ("2026-06-30T00:00:00+00:00", "2026-06-30T01:00:00+00:00"),
    )
    conn.execute("COMMIT")
    span = (LAST_DAY - FIRST_DAY).days
    days = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(span + 8)]
    n_authors = max(10, int(n_reviews * 0.8))
    gen = np.random.default_rng(seed)
    written = 0
    while written < n_reviews:
        rows = _chunk(gen, written, min(CHUNK, n_reviews - written), sources, texts, days, n_authors)
        conn.execute("BEGIN")
        conn.executemany(_insert_sql("reviews", REVIEW_COLUMNS), rows[0])
        conn.executemany(_insert_sql("review_sentiment", SENTIMENT_COLUMNS), rows[1])
        conn.execute("COMMIT")
        written += len(rows[0])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


REVIEW_COLUMNS = (
    "id", "source_id", "brand_id", "url", "site_review_id", "author_hash", "title", "body", "body_hash",
    "previous_body_hashes", "rating", "rating_value", "rating_min", "rating_max", "published_at", "date_precision",
    "date_raw", "language", "extractor", "first_seen", "last_seen", "first_crawl_run_id", "last_crawl_run_id",
)  # fmt: skip
SENTIMENT_COLUMNS = (
    "review_id", "model_id", "model_revision", "body_hash", "label", "probabilities", "score", "cs_relevance",
    "cs_label", "cs_score", "cs_sentences", "language", "flags", "scored_at", "other_score",
)  # fmt: skip


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """Named columns, so later migrations that add columns do not break the generator."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


_PROBABILITIES = json.dumps({"negative": 0.2, "neutral": 0.3, "positive": 0.5})
_CS_SENTENCES = json.dumps(["The agent was helpful."])
_SCORED_AT = "2026-06-30T12:00:00+00:00"


def _chunk(
    gen: np.random.Generator,
    first: int,
    size: int,
    sources: list[tuple[Any, ...]],
    texts: list[str],
    days: list[str],
    n_authors: int,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for reviews and review_sentiment, drawn with numpy (row-by-row random is the slow part)."""
    source_ix = gen.integers(0, len(sources), size)
    author_ix = gen.integers(0, n_authors, size)
    text_ix = gen.integers(0, len(texts), size)
    day_ix = gen.integers(0, len(days) - 8, size)
    copy = gen.random(size) < 0.02
    copy[0] = False
    precision_roll = gen.random(size)
    foreign = gen.random(size) < 0.03
    langs = gen.choice(np.array(["de", "fr", "es"]), size)
    stars = gen.integers(1, 6, size)
    score = gen.uniform(-1, 1, size)
    relevance = gen.random(size)
    cs_score = gen.uniform(-1, 1, size)
    for c in np.flatnonzero(copy):  # a syndicated copy: same author, brand, text, a few days later
        source_ix[c], author_ix[c], text_ix[c] = source_ix[c - 1], author_ix[c - 1], text_ix[c - 1]
        day_ix[c] = day_ix[c - 1] + gen.integers(0, 5)
    reviews, scores = [], []
    for k in range(size):
        i = first + k
        source = sources[source_ix[k]]
        roll = precision_roll[k]
        precision = "missing" if roll < 0.03 else "relative" if roll < 0.13 else "exact"
        published = None if precision == "missing" else days[day_ix[k]]
        language = str(langs[k]) if foreign[k] else "en"
        review_id = f"h:{i:032x}"
        body_hash = f"{i * 2654435761 % (1 << 64):016x}{i:016x}"
        seen = f"{published or days[-1]}T12:00:00+00:00"
        star = int(stars[k])
        reviews.append((
            review_id, source[0], source[1], f"http://127.0.0.1/r/{i}", None, f"{author_ix[k]:032x}", None,
            texts[text_ix[k]], body_hash, "[]", (star - 1) / 4, star, 1, 5, published, precision, None,
            language, "jsonld", seen, seen, 1, 1,
        ))  # fmt: skip
        s = float(score[k])
        cs = relevance[k] >= 0.5
        cs_value = float(cs_score[k]) if cs else None
        scores.append((
            review_id, MODEL_ID, MODEL_REVISION, body_hash,
            "positive" if s > 0.33 else "negative" if s < -0.33 else "neutral", _PROBABILITIES, s,
            float(relevance[k]), ("positive" if cs_value > 0 else "negative") if cs_value is not None else None,
            cs_value, _CS_SENTENCES if cs else None, language, "[]", _SCORED_AT, s if not cs else s * 0.5,
        ))  # fmt: skip
    return reviews, scores
