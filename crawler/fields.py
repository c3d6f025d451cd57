"""Turn raw review fields into comparable values: clean text, 0..1 ratings, ISO dates, language.

Everything here is pure and cheap per call; the expensive helpers (date parsers, the language
detector) are built once and reused, because a crawl normalises every review it sees.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta
from w3lib.html import remove_tags, replace_entities

from crawler.items import ReviewItem

if TYPE_CHECKING:
    from dateparser.date import DateDataParser
    from lingua import LanguageDetector

# --------------------------------------------------------------------------- text

_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|li|ul|ol|h[1-6]|blockquote|section|article|tr|table|pre)\b[^>]*>", re.IGNORECASE
)
_HORIZONTAL_WS = re.compile(r"[^\S\n]+")
_PARAGRAPH_GAP = re.compile(r"\n\s*\n+")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(s: str | None) -> str:
    """Plain text with entities decoded and whitespace collapsed, paragraph breaks kept.

    Review bodies arrive as HTML fragments or as JSON strings; both end up as paragraphs
    separated by one blank line. Text is never shortened: the sentiment model and the
    analysts both want the whole review.
    """
    if not s:
        return ""
    text = str(s).replace("\r\n", "\n").replace("\r", "\n")
    if "<" in text:
        text = _BREAK_TAG.sub("\n", text)
        text = _BLOCK_TAG.sub("\n\n", text)
        text = remove_tags(text)
    if "&" in text:
        text = replace_entities(text, remove_illegal=False)
    text = _INVISIBLE.sub("", text)
    text = _HORIZONTAL_WS.sub(" ", text)
    text = _PARAGRAPH_GAP.sub("\n\n", text)
    lines = [line.strip() for line in text.split("\n")]
    return "\n".join(lines).strip()


# --------------------------------------------------------------------------- ratings

_NUMBER = r"[-+]?\d+(?:[.,]\d+)?"
_SCALED = re.compile(rf"^\s*({_NUMBER})\s*(?:/|out\s+of|of|von|sur|de|su)\s*({_NUMBER})\b", re.IGNORECASE)
_FIRST_NUMBER = re.compile(_NUMBER)


def _to_float(value: Any) -> float | None:
    """A finite float from a number or a number-like string ("4,5" is 4.5), else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    else:
        text = str(value).strip()
        match = _FIRST_NUMBER.search(text)
        if not match:
            return None
        result = float(match.group(0).replace(",", "."))
    return result if math.isfinite(result) else None


def parse_rating_text(value: Any) -> tuple[float | None, float | None]:
    """Split a rating such as "4/5", "4.5 out of 5" or "8,5" into (value, best or None)."""
    if value is None or isinstance(value, bool):
        return None, None
    if isinstance(value, int | float):
        return _to_float(value), None
    match = _SCALED.match(str(value))
    if match:
        return _to_float(match.group(1)), _to_float(match.group(2))
    return _to_float(value), None


def rating_scale(value: float | None, worst: Any, best: Any) -> tuple[float | None, float | None]:
    """The (worst, best) a rating is measured on, guessing the usual scales when unstated.

    Star ratings (value <= 5) default to 1..5; larger values to 0..10 or 0..100. A stated
    best without a worst is a star scale (worst 1) when best is 5, otherwise starts at 0.
    """
    lo, hi = _to_float(worst), _to_float(best)
    if hi is None:
        if value is None:
            return lo, hi
        if value <= 5:
            hi = 5.0
        elif value <= 10:
            hi = 10.0
        elif value <= 100:
            hi = 100.0
        else:
            return lo, None
    if lo is None:
        lo = 1.0 if hi == 5.0 and (value is None or value >= 1) else 0.0
    return lo, hi


def normalize_rating(value: Any, worst: Any = None, best: Any = None) -> float | None:
    """Rating mapped to 0..1 on its scale; None when missing, unparseable or out of range."""
    number, stated_best = parse_rating_text(value)
    if number is None:
        return None
    if best is None and stated_best is not None:
        best = stated_best
    lo, hi = rating_scale(number, worst, best)
    if lo is None or hi is None or hi <= lo or not lo <= number <= hi:
        return None
    return round((number - lo) / (hi - lo), 6)


# --------------------------------------------------------------------------- dates

_DATE_LANGUAGES = ["en", "de", "fr", "es", "it", "pt", "nl"]
_FUTURE_TOLERANCE = timedelta(days=1)  # time zones: "today" somewhere may be tomorrow here


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


@lru_cache(maxsize=16)
def _date_parsers(base: datetime) -> tuple[DateDataParser, DateDataParser]:
    """(relative, absolute) parsers anchored at ``base``.

    Building a DateDataParser is cheap (tens of microseconds) once dateparser is imported; what
    is expensive is re-loading languages, which fixed ``languages`` avoids. The cache means one
    pair per crawled page, since every review on a page shares its crawl time.
    """
    from dateparser.date import DateDataParser

    common = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
        "PREFER_DAY_OF_MONTH": "first",
    }
    relative = DateDataParser(languages=_DATE_LANGUAGES, settings={**common, "PARSERS": ["relative-time"]})
    absolute = DateDataParser(
        languages=_DATE_LANGUAGES,
        settings={**common, "PARSERS": ["timestamp", "custom-formats", "absolute-time"]},
    )
    return relative, absolute


def _iso_fast(raw: str) -> date | None:
    """Machine dates (JSON-LD, microdata, APIs) parsed without dateparser."""
    if len(raw) < 10 or not raw[:4].isdigit() or raw[4] != "-":
        return None
    try:
        return datetime.fromisoformat(raw.replace("z", "Z")).date()
    except ValueError:
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            return None


_UNITS = {
    "second": "seconds",
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
}
_SIMPLE_RELATIVE = re.compile(
    r"^(?:(?P<n>an?|one|\d+)\s+(?P<unit>second|minute|hour|day|week|month|year)s?\s+ago"
    r"|(?P<word>today|yesterday|just now|now))$",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


def _simple_relative(text: str, base: datetime) -> date | None:
    """The usual English forum phrases, without dateparser's per-call cost (same results)."""
    match = _SIMPLE_RELATIVE.match(text)
    if match is None:
        return None
    word = (match.group("word") or "").lower()
    if word:
        return (base - timedelta(days=1)).date() if word == "yesterday" else base.date()
    count = match.group("n").lower()
    amount = int(count) if count.isdigit() else 1
    return (base - relativedelta(**{_UNITS[match.group("unit").lower()]: amount})).date()


@lru_cache(maxsize=4096)
def _dateparser_date(text: str, base: datetime) -> tuple[date | None, str]:
    """dateparser for everything else; a string with a year is tried as an absolute date first."""
    relative, absolute = _date_parsers(base)
    order = [(absolute, "exact"), (relative, "relative")]
    if not _YEAR.search(text):
        order.reverse()
    for parser, precision in order:
        try:
            data = parser.get_date_data(text)
        except (ValueError, OverflowError, TypeError):
            continue
        if data.date_obj is not None:
            if precision == "exact" and not any(ch.isdigit() for ch in text):
                precision = "relative"  # a bare weekday ("Monday") is resolved against the crawl time
            return _naive_utc(data.date_obj).date(), precision
    return None, "missing"


def parse_date(raw: str | None, crawled_at: datetime) -> tuple[str | None, str]:
    """(YYYY-MM-DD or None, precision) where precision is exact, relative or missing.

    Relative phrases ("3 weeks ago", "yesterday") are anchored at ``crawled_at``, the time the
    page was fetched, because that is when the site rendered them. Dates after the crawl are
    treated as missing: a review cannot come from the future.
    """
    text = " ".join(str(raw).split()) if raw is not None else ""
    if not text:
        return None, "missing"
    base = _naive_utc(crawled_at).replace(microsecond=0)
    found: date | None = _iso_fast(text)
    precision = "exact"
    if found is None:
        found = _simple_relative(text, base)
        precision = "relative"
    if found is None:
        found, precision = _dateparser_date(text, base)
    if found is None or found > base.date() + _FUTURE_TOLERANCE or found.year < 1990:
        return None, "missing"
    return found.isoformat(), precision


# --------------------------------------------------------------------------- language

_LANGUAGE_NAMES = (
    "ENGLISH",
    "GERMAN",
    "FRENCH",
    "SPANISH",
    "ITALIAN",
    "PORTUGUESE",
    "DUTCH",
    "POLISH",
    "SWEDISH",
    "DANISH",
    "TURKISH",
    "RUSSIAN",
)
_MIN_LETTERS = 3
_DETECT_PREFIX = 300  # characters: enough to decide; detection time grows with length
_LETTER = re.compile(r"[^\W\d_]")


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# The English pre-check. Most crawled reviews are plainly English, and the statistical detector
# costs about a millisecond each; a text is called English without it only when every letter is
# ASCII, enough of its words are English function words and none is a common word of the other
# languages detected. Everything else, and anything short, goes to the detector.
_ENGLISH_WORDS = _word_set("""
the and with this that they them their these those you your yours not but from been were what when
which who whom whose how why would could should very just about because after again than then only
still even never ever into out did does didn't don't doesn't it's i'm i've i'd i'll won't can't
wasn't isn't aren't couldn't wouldn't haven't hasn't it its has had our ours she him his are there
here where while some any every really too much is was have for my to of at on we will be me do i
""")
_OTHER_WORDS = _word_set("""
der das und ist nicht ich sie mit ein eine einen einem sehr auf zu von den dem des wir habe hatte
noch aber kein keine wie bei nach auch nur schon wurde mein meine
le les et est une des pas je ne que qui du au avec pour tres ce il elle nous vous sur mais cette
mon ma mes tout bien fait ont sont etait
el los las una muy por para del pero esta estoy todo nada nunca fue
di che non sono molto ma gli della questo questa anche
os um uma muito com mas nao foi meu minha
het een niet ik van met voor zijn maar ook dat dit wel geen
och att det ett jag inte som har var mycket
og ikke til af jeg meget
nie jest na sie jak tak
ve bir icin cok ama ben
""")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-zA-Z]")
_ENGLISH_MIN_WORDS = 5
_ENGLISH_MIN_SHARE = 0.2


def looks_english(sample: str) -> bool:
    """True when ``sample`` is English beyond doubt (see above); False means "ask the detector"."""
    text = sample.replace("\u2019", "'")
    if _NON_ASCII_LETTER.search(text):
        return False
    words = _WORD.findall(text.lower())
    if len(sample) >= _DETECT_PREFIX:
        words = words[:-1]  # the sample may end inside a word, whose stub could be anything
    if len(words) < _ENGLISH_MIN_WORDS:
        return False
    english = 0
    for word in words:
        if word in _OTHER_WORDS:
            return False
        if word in _ENGLISH_WORDS:
            english += 1
    return english >= 2 and english >= _ENGLISH_MIN_SHARE * len(words)


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    """Built on first use: low-accuracy mode is ~5x faster and needs far less memory."""
    from lingua import Language, LanguageDetectorBuilder

    languages = [getattr(Language, name) for name in _LANGUAGE_NAMES]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


def detect_language(text: str | None) -> str | None:
    """ISO 639-1 code (lowercase) of the text, or None when there is too little text to tell."""
    if not text:
        return None
    sample = text[:_DETECT_PREFIX]
    if len(_LETTER.findall(sample)) < _MIN_LETTERS:
        return None
    if looks_english(sample):
        return "en"
    language = _detector().detect_language_of(sample)
    if language is None:
        return None
    return str(language.iso_code_639_1.name).lower()


# --------------------------------------------------------------------------- items


def normalize_item(item: ReviewItem, crawled_at: datetime) -> ReviewItem:
    """Fill the derived fields of ``item`` in place (and return it for chaining)."""
    item.body = clean_text(item.body) or None
    item.title = clean_text(item.title) or None
    item.author = clean_text(item.author) or None
    value, stated_best = parse_rating_text(item.rating_value)
    if value is not None:
        if item.rating_max is None and stated_best is not None:
            item.rating_max = stated_best
        item.rating_value = value
        item.rating_min, item.rating_max = rating_scale(value, item.rating_min, item.rating_max)
        item.rating = normalize_rating(value, item.rating_min, item.rating_max)
    else:
        item.rating_value = None
        item.rating = None
    item.published_at, item.date_precision = parse_date(item.date_raw, crawled_at)
    # the body alone when it is long enough: short titles ("Still waiting") mislead the detector
    body = item.body or ""
    text = body if len(body) >= 40 else " ".join(part for part in (item.title, item.body) if part)
    item.language = detect_language(text)
    return item
