"""Normalisation: text cleaning, rating scales, dates anchored at crawl time, language."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.extractors import extract_reviews
from crawler.fields import (
    _DETECT_PREFIX,
    _LETTER,
    _MIN_LETTERS,
    clean_text,
    detect_language,
    looks_english,
    normalize_item,
    normalize_rating,
    parse_date,
)
from crawler.items import ReviewItem

CRAWLED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
PAGES = Path(__file__).parent / "pages"
DEMO_SENTENCES = Path(__file__).parent.parent / "demo_world" / "data" / "sentences.yaml"

# ----------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-03", "2024-05-03"),
        ("2024-05-01T09:15:00Z", "2024-05-01"),
        ("2024-04-29T08:00:00+02:00", "2024-04-29"),
        ("3 May 2024", "2024-05-03"),
        ("May 3, 2024", "2024-05-03"),
    ],
)
def test_absolute_dates_are_exact(raw: str, expected: str) -> None:
    assert parse_date(raw, CRAWLED) == (expected, "exact")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3 weeks ago", "2024-05-11"),
        ("yesterday", "2024-05-31"),
        ("2 months ago", "2024-04-01"),
        ("today", "2024-06-01"),
        ("vor 3 Wochen", "2024-05-11"),
        ("il y a 2 jours", "2024-05-30"),
    ],
)
def test_relative_dates_are_anchored_at_crawl_time(raw: str, expected: str) -> None:
    assert parse_date(raw, CRAWLED) == (expected, "relative")


def test_relative_date_follows_a_different_crawl_time() -> None:
    assert parse_date("yesterday", datetime(2023, 1, 1, 8, 0)) == ("2022-12-31", "relative")


@pytest.mark.parametrize("raw", [None, "", "   ", "garbage text", "2024-13-45", "2099-01-01", "in 3 days"])
def test_missing_garbage_and_future_dates_are_missing(raw: str | None) -> None:
    assert parse_date(raw, CRAWLED) == (None, "missing")


# ----------------------------------------------------------------------------- ratings


@pytest.mark.parametrize(
    ("value", "worst", "best", "expected"),
    [
        (5, 1, 5, 1.0),
        (1, 1, 5, 0.0),
        (4, 1, 5, 0.75),
        (4, None, None, 0.75),  # star scale assumed: 1..5
        ("4", None, 5, 0.75),
        (9, 0, 10, 0.9),
        (0, 0, 10, 0.0),
        (7, None, None, 0.7),  # above 5 with no scale: 0..10
        (85, 0, 100, 0.85),
        (85, None, None, 0.85),
        ("4/5", None, None, 0.75),
        ("4.5 out of 5", None, None, 0.875),
        ("8,5", 0, 10, 0.85),
        ("3,5 / 5", None, None, 0.625),
    ],
)
def test_rating_scales(value: object, worst: object, best: object, expected: float) -> None:
    assert normalize_rating(value, worst, best) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "worst", "best"),
    [(None, None, None), ("", None, None), ("n/a", None, 5), (6, 1, 5), (-1, 0, 10), (3, 5, 5), (500, None, None)],
)
def test_missing_and_out_of_range_ratings_are_none(value: object, worst: object, best: object) -> None:
    assert normalize_rating(value, worst, best) is None


# ----------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The agent was friendly and fixed my booking in five minutes.", "en"),
        ("Der Kundenservice hat meine E-Mail erst nach zwei Wochen beantwortet.", "de"),
        ("Le service client ne répond jamais aux messages, c'est vraiment décevant.", "fr"),
        ("Nadie contesta el teléfono y el chat no funciona nunca.", "es"),
    ],
)
def test_language_detection(text: str, code: str) -> None:
    assert detect_language(text) == code


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"abcdefghijklmnopqrstuvwxyz '.,!?0123456789", " the ", " and ", " was ",
                                 " very ", " staff ", " it ", " i ", " der ", " le "]), max_size=60).map("".join))
def test_english_found_without_counting_letters_has_letters_enough(text: str) -> None:
    """detect_language answers "en" for an ASCII text that looks English before it counts letters:
    safe because such a text always has the letters the count asks for."""
    sample = text[:_DETECT_PREFIX]
    if looks_english(sample):
        assert len(_LETTER.findall(sample)) >= _MIN_LETTERS
        assert detect_language(text) == "en"


@pytest.mark.parametrize("text", [None, "", "👍👍🔥", "ok", "!!! 5/5"])
def test_too_little_text_has_no_language(text: str | None) -> None:
    assert detect_language(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "I was on hold for 40 minutes before the call dropped, and nobody called me back.",
        "The phone agent, Ellie, hung up when I asked for a supervisor.",  # the detector says Danish
        "The sofa is worse than what I had before.",  # the detector says German
        "Support didn’t reply to my emails for weeks. Avoid if you can!",
    ],
)
def test_plain_english_is_recognised_without_the_detector(text: str) -> None:
    assert looks_english(text)
    assert detect_language(text) == "en"


@pytest.mark.parametrize(
    "text",
    [
        "Nadie contesta el telefono y el chat no funciona nunca.",  # Spanish without its accents
        "De klantenservice reageert niet en ik wacht al twee weken.",
        "Il servizio clienti non risponde mai alle email, sono molto deluso.",
        "Kundtjansten svarar aldrig och jag har vantat i tre veckor.",
        "Obsluga klienta jest fatalna, nikt nie odpowiada na maile.",
        "Musteri hizmetleri hic cevap vermiyor, cok kotu bir deneyim.",
        "Top Service, alles super gelaufen, gerne wieder.",
        "The product is good mais le service client est nul et personne ne repond.",  # mixed
        "Thanks, it was great!",  # too short to be sure
        "The café was fine and the staff were friendly.",  # a non-ASCII letter: the detector decides
    ],
)
def test_anything_not_plainly_english_goes_to_the_detector(text: str) -> None:
    assert not looks_english(text)


def test_demo_foreign_sentences_never_pass_as_english_even_without_accents() -> None:
    foreign = yaml.safe_load(DEMO_SENTENCES.read_text(encoding="utf-8"))["foreign"]
    checked = 0
    for language, groups in foreign.items():
        sentences = [s for group in groups.values() for s in group]
        for sentence in [*sentences, " ".join(sentences)]:
            stripped = "".join(c for c in unicodedata.normalize("NFKD", sentence) if not unicodedata.combining(c))
            assert not looks_english(sentence) and not looks_english(stripped), sentence
            checked += 1
        assert detect_language(" ".join(sentences)) == language
    assert checked > 30


def test_a_word_cut_at_the_sample_end_does_not_count() -> None:
    english = "The agent was helpful and the refund came through within a week, which is what they said. "
    text = english * 3 + " " * (300 - len(english * 3) - 2) + "ma" + "ny more words"
    assert len(text) > 300 and text[:300].endswith(" ma")  # "ma" alone is a French/Italian word
    assert looks_english(text[:300])
    assert detect_language(text) == "en"


# ----------------------------------------------------------------------------- text


def test_clean_text_decodes_entities_strips_tags_and_keeps_paragraphs() -> None:
    raw = "<div>\n  <p>Fast &amp; friendly&nbsp;agent.</p>\n\n\n  <p>Second   para<br>next line &lt;3</p></div>"
    assert clean_text(raw) == "Fast & friendly agent.\n\nSecond para\nnext line <3"


def test_clean_text_keeps_unknown_entities_and_plain_text() -> None:
    assert clean_text("R&D team &bogus; fixed it") == "R&D team &bogus; fixed it"
    assert clean_text("  spaced\tout \r\n\r\n\r\nnext  ") == "spaced out\n\nnext"
    assert clean_text(None) == ""


def test_clean_text_never_truncates() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 400 for i in range(30)]
    cleaned = clean_text("".join(f"<p>{p}</p>" for p in paragraphs))
    assert cleaned.split("\n\n") == [p.strip() for p in paragraphs]
    assert len(cleaned) > 60_000


# ----------------------------------------------------------------------------- items


def test_normalize_item_fills_derived_fields() -> None:
    item = ReviewItem(
        title=" Service client  nul ",
        body="<p>Le service client ne répond jamais aux messages.</p><p>Très d&eacute;cevant.</p>",
        author=" lucie ",
        rating_value=2,
        rating_max=10,
        rating_min=0,
        date_raw="2024-04-29T08:00:00+02:00",
    )
    assert normalize_item(item, CRAWLED) is item
    assert item.title == "Service client nul"
    assert item.body == "Le service client ne répond jamais aux messages.\n\nTrès décevant."
    assert item.author == "lucie"
    assert item.rating == pytest.approx(0.2)
    assert (item.published_at, item.date_precision) == ("2024-04-29", "exact")
    assert item.language == "fr"


def test_normalize_item_fills_default_star_scale_and_missing_date() -> None:
    item = ReviewItem(body="Great help on the phone, thanks!", rating_value=4)
    normalize_item(item, CRAWLED)
    assert (item.rating_min, item.rating_max, item.rating) == (1.0, 5.0, 0.75)
    assert (item.published_at, item.date_precision) == (None, "missing")
    assert item.language == "en"


def test_forum_page_end_to_end_with_relative_dates() -> None:
    result = extract_reviews((PAGES / "forum.html").read_bytes(), "http://127.0.0.1:8000/forum/northwind-air/")
    items = [normalize_item(item, CRAWLED) for item in result.reviews]
    assert [(i.published_at, i.date_precision) for i in items] == [
        ("2024-05-11", "relative"),
        ("2024-05-31", "relative"),
        ("2024-04-01", "relative"),
    ]
    assert [i.rating for i in items] == [0.25, 1.0, 0.0]
    assert [i.language for i in items] == ["en", "en", "es"]


def test_normalize_item_reads_a_scale_written_into_the_rating() -> None:
    item = ReviewItem(body="Ganz okay, aber die Hotline war lange besetzt.", rating_value="3,5 von 5")  # type: ignore[arg-type]
    normalize_item(item, CRAWLED)
    assert (item.rating_value, item.rating_min, item.rating_max) == (3.5, 1.0, 5.0)
    assert item.rating == pytest.approx(0.625)
    assert item.language == "de"
