"""The date a sentence states: found by patterns, read by `dateparser`, relative to the page's date.

dateparser's own search reads too much as a date in press text ("May", "second", "4") and is slow on
long pages, so the patterns below find the candidates (full dates, month and year, a month after a
preposition, a year after one, a quarter, and phrases such as "last month") and dateparser reads
each one. When several are stated, the most precise wins, then the first.
"""

from __future__ import annotations

import datetime as dt
import re

import dateparser

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_YEAR = r"(?:19[89]\d|20\d\d)"
_DAY = r"(?:[0-3]?\d)(?:st|nd|rd|th)?"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("day", re.compile(rf"\b{_YEAR}-[01]\d-[0-3]\d\b")),
    ("day", re.compile(rf"\b{_DAY}(?:\s+of)?\s+{_MONTH},?\s+{_YEAR}\b")),
    ("day", re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b")),
    ("month", re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b")),
    ("quarter", re.compile(rf"\b(?:Q([1-4])|([Ff]irst|[Ss]econd|[Tt]hird|[Ff]ourth) quarter of)\s+({_YEAR})\b")),
    ("month", re.compile(rf"\b(?:in|from|since|on|until|by|of|In|From|Since|On|Until|By|Of)\s+(?P<d>(?:early |late |mid-)?{_MONTH})(?!\s*\d)\b")),
    ("month", re.compile(r"\b(?:last|this|next) month\b", re.IGNORECASE)),
    ("day", re.compile(r"\b(?:today|yesterday|tomorrow)\b", re.IGNORECASE)),
    ("year", re.compile(rf"\b(?:in|from|since|until|by|during|of|early|late|mid-?|In|From|Since|Until|By|During)\s+(?P<d>{_YEAR})\b")),
    ("year", re.compile(r"\b(?:last|this|next) year\b", re.IGNORECASE)),
)
_RANK = {"day": 0, "month": 1, "quarter": 1, "year": 2}
_QUARTER_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4}


def find_date(sentence: str, page_date: dt.date | None = None) -> tuple[dt.date | None, str | None]:
    """The sentence's date and its precision ("day", "month", "year"), or (None, None)."""
    base = dt.datetime.combine(page_date, dt.time()) if page_date else None
    found: list[tuple[int, int, dt.date, str]] = []
    for precision, pattern in _PATTERNS:
        for match in pattern.finditer(sentence):
            value = _read(match, precision, base)
            if value is not None:
                kind = "month" if precision == "quarter" else precision
                found.append((_RANK[precision], match.start(), value, kind))
    if not found:
        return None, None
    _, _, value, kind = min(found, key=lambda item: (item[0], item[1]))
    return value, kind


def _read(match: re.Match[str], precision: str, base: dt.datetime | None) -> dt.date | None:
    text = match.group("d") if "d" in match.groupdict() else match.group(0)
    if precision == "quarter":
        number = match.group(1) or _QUARTER_WORDS[match.group(2).lower()]
        return dt.date(int(match.group(3)), 3 * (int(number) - 1) + 1, 1)
    if precision == "year" and text.isdigit():
        return dt.date(int(text), 1, 1)
    text = re.sub(r"^(early|late|mid-)\s*", "", text, flags=re.IGNORECASE)
    settings: dict[str, object] = {"PREFER_DAY_OF_MONTH": "first", "PREFER_DATES_FROM": "past"}
    if base is not None:
        settings["RELATIVE_BASE"] = base
    elif not re.search(r"\d{4}", text):
        return None  # "last month", "in March": nothing to count from
    parsed = dateparser.parse(text, languages=["en"], settings=settings)
    if parsed is None:
        return None
    value = parsed.date()
    if precision == "month":
        value = value.replace(day=1)
    elif precision == "year":
        value = value.replace(month=1, day=1)
    return value
