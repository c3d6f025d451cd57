"""Plain-text helpers around the model: sentences, the vendor's names, pronouns, English or not, masking.

Pages are split with `sentencex` (Wikimedia's rule-based segmenter) after line breaks, since headings,
logo-wall captions and list items are sentences of their own on a vendor's site. The relation
classifier never sees company names: the candidate brand, the vendor and every other organisation are
replaced by the markers below, so what it learns is the wording around them, not the names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import sentencex

#: Longest sentence read; longer run-on text is cut (the encoder reads 256 tokens at most).
MAX_SENTENCE_CHARS = 600
TARGET_MARK = "[TARGET]"
VENDOR_MARK = "[VENDOR]"
ORG_MARK = "[ORG]"

_LINES = re.compile(r"\s*\n\s*")
_WORD = re.compile(r"\w+", re.UNICODE)
# Trailing words of a vendor's name that are not what people call it ("Customer Care", "Ltd").
_GENERIC = frozenset({
    "contact", "contacts", "centre", "centres", "center", "centers", "customer", "customers", "care", "cx",
    "connect", "teleservices", "call", "calls", "solutions", "outsourcing", "bpo", "support", "services",
    "service", "group", "interactive", "voice", "ltd", "plc", "inc", "llc", "limited", "co", "company",
    "corp", "corporation", "holdings", "global", "international", "gmbh", "sa", "the",
})
_JOINERS = frozenset({"&", "and", "+", ",", "-"})
# First-person references to the page's owner; all-capital "US" is the country.
_PRONOUN = re.compile(r"(?<!\w)(?:[Ww]e|[Uu]s|[Oo]urs?|[Oo]urselves|WE|OUR)(?!\w)")
# Small words almost every English sentence of six lower-case words or more contains two of.
_ENGLISH = frozenset({
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "by", "from", "its", "it", "is",
    "are", "was", "were", "has", "have", "had", "will", "would", "as", "at", "our", "we", "us", "that",
    "which", "this", "their", "his", "her", "after", "since", "new", "how", "who", "be", "been", "not", "no",
    "than", "into", "over", "about", "all",
})


def split_sentences(text: str) -> list[str]:
    """The sentences of a page's text, stripped, in order; line breaks always end a sentence."""
    sentences: list[str] = []
    for line in _LINES.split(text.replace("\r", "\n")):
        line = " ".join(line.split())
        if not line:
            continue
        for chunk in sentencex.segment("en", line):
            chunk = chunk.strip()
            while len(chunk) > MAX_SENTENCE_CHARS:
                cut = chunk.rfind(" ", 0, MAX_SENTENCE_CHARS)
                cut = cut if cut > MAX_SENTENCE_CHARS // 2 else MAX_SENTENCE_CHARS
                sentences.append(chunk[:cut].strip())
                chunk = chunk[cut:].strip()
            if chunk:
                sentences.append(chunk)
    return sentences


def vendor_aliases(name: str, extra: Iterable[str] = ()) -> list[str]:
    """The vendor's full name, and shorter forms without generic trailing words, longest first.

    "Harbor & Finch Customer Care" gives "Harbor & Finch Customer Care", "Harbor & Finch Customer",
    "Harbor & Finch"; a form left with generic words only ("Customer") is not an alias.
    """
    found: list[str] = []
    for given in (name, *extra):
        words = given.split()
        while words:
            alias = " ".join(words)
            core = [w for w in _WORD.findall(alias.lower()) if w not in _GENERIC]
            if not core:
                break
            if len(alias) >= 3 and alias not in found:
                found.append(alias)
            if words[-1].lower().strip(".,") not in _GENERIC:
                break  # "Harbor & Finch" stays whole: "Harbor" alone may be someone else
            words = words[:-1]
            while words and words[-1].lower() in _JOINERS:
                words = words[:-1]
    return sorted(found, key=len, reverse=True)


def find_names(sentence: str, names: Sequence[str]) -> list[tuple[int, int]]:
    """Non-overlapping spans where any of ``names`` occurs as whole words (longest names win)."""
    spans: list[tuple[int, int]] = []
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        pattern = re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)", re.IGNORECASE)
        for match in pattern.finditer(sentence):
            if not any(s < match.end() and match.start() < e for s, e in spans):
                spans.append((match.start(), match.end()))
    return sorted(spans)


def find_pronouns(sentence: str) -> list[tuple[int, int]]:
    """Spans of we/us/our: the vendor speaking of itself on its own pages."""
    return [(m.start(), m.end()) for m in _PRONOUN.finditer(sentence)]


def looks_english(sentence: str) -> bool:
    """False for text mostly in other scripts, or six lower-case words or more (names left out) with none of
    the common English words, or with only one and a letter English does not use ("in" is German too)."""
    letters = [ch for ch in sentence if ch.isalpha()]
    if not letters:
        return False
    if sum(ch.isascii() for ch in letters) / len(letters) < 0.6:
        return False
    words = [w for w in _WORD.findall(sentence) if w.islower()]
    if len(words) < 6:
        return True
    hits = sum(w in _ENGLISH for w in words)
    return hits >= 2 or (hits == 1 and all(ch.isascii() for ch in letters))


def masked(sentence: str, target: tuple[int, int], vendor: Sequence[tuple[int, int]],
           others: Sequence[tuple[int, int]], *, vendor_is_name: bool) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """The sentence with the target, the vendor's names and other organisations replaced by markers.

    Returns the new text and the character spans of the target marker and of the vendor (its marker,
    or the pronouns left in place when the vendor speaks of itself).
    """
    pieces: list[tuple[int, int, str]] = [(target[0], target[1], TARGET_MARK)]
    for s, e in vendor:
        pieces.append((s, e, VENDOR_MARK if vendor_is_name else ""))
    for s, e in others:
        pieces.append((s, e, ORG_MARK))
    pieces.sort()
    out: list[str] = []
    target_spans: list[tuple[int, int]] = []
    vendor_spans: list[tuple[int, int]] = []
    pos = 0
    length = 0
    for s, e, mark in pieces:
        if s < pos:  # overlaps a piece already replaced
            continue
        out.append(sentence[pos:s])
        length += s - pos
        kept = mark or sentence[s:e]
        if mark == TARGET_MARK:
            target_spans.append((length, length + len(kept)))
        elif mark in (VENDOR_MARK, ""):
            vendor_spans.append((length, length + len(kept)))
        out.append(kept)
        length += len(kept)
        pos = e
    out.append(sentence[pos:])
    return "".join(out), target_spans, vendor_spans
