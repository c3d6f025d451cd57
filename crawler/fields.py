"""Turn raw review fields into comparable values: clean text, 0..1 ratings, ISO dates, language.

Everything here is pure and cheap per call; the expensive helpers (date parsers, the language
detector) are built once and reused, because a crawl normalises every review it sees.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, NamedTuple

from dateutil.relativedelta import relativedelta
from w3lib.html import replace_entities

from crawler.items import ReviewItem

if TYPE_CHECKING:
    from dateparser.date import DateDataParser
    from lingua import LanguageDetector

# --------------------------------------------------------------------------- text

# Markup is told from text the way a browser does it, with one difference: a "<" starts markup
# only when an HTML element name (or a comment, doctype or CDATA section) follows, because review
# text is full of "<3", "<10 to >20" and "a<b and c>d" that a browser would also half-swallow.
# Everything else is left to html.parser, a real tokenizer (quoted ">" in attributes, script and
# style bodies, comments); entities are decoded afterwards by w3lib, which keeps unknown ones.


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


_HTML_ELEMENTS = _names("""
a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big blink
blockquote body br button canvas caption center cite code col colgroup data datalist dd del details
dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form frame frameset h1 h2 h3
h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend li link main map mark
marquee menu meta meter nav nobr noembed noframes noscript object ol optgroup option output p param
picture plaintext pre progress q rp rt ruby s samp script search section select slot small source
span strike strong style sub summary sup svg math table tbody td template textarea tfoot th thead
time title tr track tt u ul var video wbr xmp
""")
_BLOCK_ELEMENTS = _names("""
address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header hr
li main nav ol p pre section table tr ul
""")
_CELL_ELEMENTS = frozenset({"td", "th"})
_HIDDEN_ELEMENTS = frozenset({"script", "style", "template"})  # their content is code, not text
_MARKUP_START = re.compile(
    r"<(?:!--|!doctype\b|!\[CDATA\[|!\[(?:end)?if\b|\?xml\b"
    r"|/?(?P<name>[A-Za-z][A-Za-z0-9]*(?P<custom>[:-][A-Za-z0-9_.:-]*)?)(?=[\s/>]|$))",
    re.IGNORECASE,
)
# Stand-ins for "&" and for a "<" that is text, while html.parser runs. They are noncharacters,
# which never survive into the text (see _INVALID), so they cannot collide with the input.
_AMP = "\ufdd0"
_LT = "\ufdd1"

# Invalid in interchanged text: lone surrogates (JSON allows "\ud800") and noncharacters. The
# full class is slow on long text; the common case (nothing beyond U+1FFFD) takes the small one.
_INVALID_BMP = re.compile("[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
_HIGH_PLANES = re.compile("[\U0001fffe-\U0010ffff]")
_INVALID = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17))
    + "]"
)
# Invisible junk only: control characters, zero-width space, word joiner, byte-order mark, soft
# hyphen, invisible math operators, interlinear annotations. Format characters that change how
# text reads stay: ZWJ (emoji sequences), ZWNJ (Persian, Indic), bidi marks, variation selectors.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f\x80-\x84\x86-\x9f\u00ad\u200b\u2060-\u2064\ufeff\ufff9-\ufffb]"
)
_BREAK_FOR = {"\r": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n", "\x0b": " ", "\x0c": " "}
_LINE_BREAKS = re.compile("[\r\x85\u2028\u2029\x0b\x0c]")
_HORIZONTAL_WS = re.compile(r"[^\S\n]+")
_SPACE_RUN = re.compile(" {2,}")
_PARAGRAPH_GAP = re.compile(r"\n\s*\n+")


def _replace_invalid(text: str) -> tuple[str, int]:
    """``text`` with invalid code points replaced by U+FFFD, and how many there were."""
    if text.isascii():
        return text, 0
    pattern = _INVALID if _HIGH_PLANES.search(text) else _INVALID_BMP
    return pattern.subn("\ufffd", text)


def _normalize_breaks(text: str) -> str:
    """Unicode line and paragraph separators, CR, NEL, VT and FF as the "\n" and " " we split on."""
    return _LINE_BREAKS.sub(lambda match: _BREAK_FOR[match.group()], text)


class CleanText(NamedTuple):
    """Cleaned text and how many invalid code points in it were replaced with U+FFFD."""

    text: str
    replaced: int


class _TextCollector(HTMLParser):
    """Keeps the text between tags; block elements become paragraph breaks, <br> a line break."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._mark(tag, opening=True)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN_ELEMENTS:
            self._mark(tag, opening=True)

    def handle_endtag(self, tag: str) -> None:
        self._mark(tag, opening=False)

    def _mark(self, tag: str, *, opening: bool) -> None:
        if tag in _HIDDEN_ELEMENTS:
            self._hidden = max(0, self._hidden + (1 if opening else -1))
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append("\n\n")
        elif tag in _CELL_ELEMENTS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)

    def unknown_decl(self, data: str) -> None:
        if data.upper().startswith("CDATA[") and not self._hidden:
            self.parts.append(data[6:])


def _protect_text_lt(text: str) -> str:
    """Every "<" that does not open markup becomes _LT, so the parser reads it as text."""

    def keep_or_protect(match: re.Match[str]) -> str:
        start = _MARKUP_START.match(text, match.start())
        if start is not None:
            name = start.group("name")
            if name is None or start.group("custom") or name.lower() in _HTML_ELEMENTS:
                return "<"
        return _LT

    return re.sub("<", keep_or_protect, text)


def _strip_markup(text: str) -> str:
    """Text content of an HTML fragment; characters outside markup are all kept."""
    parser = _TextCollector()
    parser.feed(_protect_text_lt(text.replace("&", _AMP)))
    parser.close()
    joined = "".join(parser.parts)
    return joined.replace(_AMP, "&").replace(_LT, "<")


def clean_text_counted(s: str | None) -> CleanText:
    """Plain text with entities decoded and whitespace collapsed, paragraph breaks kept.

    Review bodies arrive as HTML fragments or as JSON strings; both end up as paragraphs
    separated by one blank line. Text is never shortened: the sentiment model and the
    analysts both want the whole review. Lone surrogates and noncharacters (before or after
    entity decoding) become U+FFFD and are counted, so the caller can record them.
    """
    if not s:
        return CleanText("", 0)
    if s.isascii() and s.isprintable() and "<" not in s and "&" not in s:
        # one line of plain ASCII (most names, titles and short reviews): only spaces to tidy,
        # exactly as the steps below would (tests/test_text_cleaning.py holds the two equal)
        return CleanText((_SPACE_RUN.sub(" ", s) if "  " in s else s).strip(), 0)
    return _clean_any(str(s))


def _clean_any(s: str) -> CleanText:
    """``clean_text_counted`` of any text, one step at a time."""
    text, replaced = _replace_invalid(s)
    text = _normalize_breaks(text.replace("\r\n", "\n"))
    if "<" in text:
        text = _strip_markup(text)
    if "&" in text:
        # invisible characters go before entities are decoded too: removed only afterwards, one
        # inside a would-be entity ("&#\x080") leaves "&#0", which a second cleaning would decode
        text = _INVISIBLE.sub("", text)
        before = text.count("\ufffd")
        text = replace_entities(text, remove_illegal=False)  # "&#xD800;" and "&#0;" become U+FFFD
        text = _replace_invalid(text)[0]  # "&#xFDD0;" decodes to a noncharacter
        replaced += text.count("\ufffd") - before
        text = _normalize_breaks(text)
    text = _INVISIBLE.sub("", text)
    text = _HORIZONTAL_WS.sub(" ", text)
    text = _PARAGRAPH_GAP.sub("\n\n", text)
    lines = [line.strip() for line in text.split("\n")]
    return CleanText("\n".join(lines).strip(), replaced)


def clean_text(s: str | None) -> str:
    """``clean_text_counted`` without the count, for callers that need only the text."""
    return clean_text_counted(s).text


# --------------------------------------------------------------------------- ratings

_NUMBER = r"[-+]?\d+(?:[.,]\d+)?"
_SCALED = re.compile(rf"^\s*({_NUMBER})\s*(?:/|out\s+of|of|von|sur|de|su)\s*({_NUMBER})\b", re.IGNORECASE)
_FIRST_NUMBER = re.compile(_NUMBER)


def _to_float(value: Any) -> float | None:
    """A finite float from a number or a number-like string ("4,5" is 4.5), else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:  # an integer past float range (JSON allows any length): not a rating
            return None
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
    from dateparser.date import DateDataParser  # heavy (~0.5 s): only once a crawl parses a date

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
            found = _naive_utc(data.date_obj).date()
            if precision == "exact" and not any(ch.isdigit() for ch in text):
                precision = "relative"  # a bare weekday ("Monday") is resolved against the crawl time
            elif precision == "exact" and data.period in ("month", "year"):
                # "June 2018" / "2018": the day (and month) are unknown, not the first of it
                precision = str(data.period)
                found = found.replace(day=1) if data.period == "month" else found.replace(month=1, day=1)
            return found, precision
    return None, "missing"


DATE_PRECISIONS = ("exact", "month", "year", "relative", "missing")


def parse_date(raw: str | None, crawled_at: datetime) -> tuple[str | None, str]:
    """(YYYY-MM-DD or None, precision): exact, month ("June 2018"), year, relative or missing.

    Month and year precision store the first day of the period.

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
    from lingua import Language, LanguageDetectorBuilder  # heavy: only when a text needs detecting

    languages = [getattr(Language, name) for name in _LANGUAGE_NAMES]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


_UNDETERMINED = "und"  # ISO 639-2 "undetermined": text, but too little to tell its language
_CONFIDENT_LETTERS = 20
_CONFIDENT_WORDS = 3
_SCRIPTS = (  # scripts that name their language outright (the detector knows none of them)
    (re.compile("[\u3040-\u30ff]"), "ja"),  # kana before Han: Japanese mixes both
    (re.compile("[\uac00-\ud7af\u1100-\u11ff]"), "ko"),
    (re.compile("[\u4e00-\u9fff\u3400-\u4dbf]"), "zh"),
)
_OTHER_SCRIPT = re.compile("[\u0370-\u03ff\u0590-\u06ff\u0900-\u0dff\u0e00-\u0eff]")  # Greek, Hebrew, Arabic, Indic, Thai


def detect_language(text: str | None) -> str | None:
    """ISO 639-1 code (lowercase) of the text; "und" when it is too short to tell; None when no text.

    A two-word review ("Top app") gets "und" rather than a confident wrong guess, and
    Chinese, Japanese and Korean are known by their script.
    """
    if not text:
        return None
    sample = text[:_DETECT_PREFIX]
    ascii_only = sample.isascii()
    if ascii_only and looks_english(sample):
        return "en"  # five English words or more pass every check below: no need to count letters
    letters = _LETTER.findall(sample)
    if len(letters) < _MIN_LETTERS:
        return None
    if not ascii_only:  # the script checks can only match outside ASCII
        for script, code in _SCRIPTS:
            if len(script.findall(sample)) * 2 >= len(letters):
                return code
        if len(_OTHER_SCRIPT.findall(sample)) * 2 >= len(letters):
            return _UNDETERMINED
        if looks_english(sample):  # curly quotes, dashes or emoji in an English text
            return "en"
    if len(letters) < _CONFIDENT_LETTERS and len(sample.split()) < _CONFIDENT_WORDS:
        return _UNDETERMINED
    language = _detector().detect_language_of(sample)
    if language is None:
        return None
    return str(language.iso_code_639_1.name).lower()


# --------------------------------------------------------------------------- items


def normalize_item(item: ReviewItem, crawled_at: datetime) -> ReviewItem:
    """Fill the derived fields of ``item`` in place (and return it for chaining)."""
    return normalize_item_counted(item, crawled_at).item


class NormalizedItem(NamedTuple):
    """The normalised item and how many invalid characters its texts had replaced with U+FFFD."""

    item: ReviewItem
    replaced: int


def normalize_item_counted(item: ReviewItem, crawled_at: datetime) -> NormalizedItem:
    """``normalize_item``, also counting the invalid characters replaced in body, title, author and reply."""
    cleaned = [clean_text_counted(text) for text in (item.body, item.title, item.author, item.reply)]
    item.body, item.title, item.author, item.reply = (c.text or None for c in cleaned)
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
    return NormalizedItem(item, sum(c.replaced for c in cleaned))
