"""Split review text into sentences.

Reviews are messy: paragraphs and bullet lines, "!!!", emoji used as full stops, abbreviations
("Mr.", "e.g.", "a.m."), prices ("$4.99") and long rants without any punctuation. The boundary
rules come from `sentencex` (Wikimedia's rule-based segmenter, fast on long text); this module
adds what reviews need on top: line breaks as boundaries, "!!!", "..." and emoji followed by a
capital as boundaries, punctuation-only fragments glued back on, and a length cap so that one run-on
"sentence" never exceeds what a sentence encoder reads.
"""

from __future__ import annotations

import re

import sentencex

#: Longest piece returned; longer run-on text is cut at the last comma or space before it.
#: 600 characters stays inside the 256-token window of the MiniLM encoders.
MAX_SENTENCE_CHARS = 600

_BLANK_LINES = re.compile(r"\n\s*\n")
# A single line break ends a sentence unless the next line carries on in lower case
# (hard-wrapped text); "- ", "* ", "• " bullets always start a new line item.
_LINE_BREAK = re.compile(r"\n(?=\s*(?:[-*•·]\s|[^\sa-z]))")
_EMOJI = (
    "\U0001f300-\U0001faff"  # pictographs, emoticons, transport, supplemental symbols
    "\u2600-\u27bf"  # misc symbols and dingbats
    "\u2b50\u2b55\u2705\u274c\u203c\u2049"
)
# Boundaries sentencex leaves joined ("Bad!!! I hate it", "Meh... I left", "Love it 😍 Staff..."):
# "!" or "?", an ellipsis, or an emoji (with its variation selector / skin tone), then a space and
# a capital letter or an opening quote.
_EXTRA_STOP = re.compile(
    rf"(?:(?<=[!?…])|(?<=\.\.\.)|(?<=[{_EMOJI}\ufe0f\U0001f3fb-\U0001f3ff]))\s+(?=[A-Z\"“‘(])"
)
_HAS_WORD = re.compile(r"\w")


def split_sentences(text: str) -> list[str]:
    """Return the sentences of ``text``, stripped, in order; [] for empty or blank text."""
    if not text or not text.strip():
        return []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    sentences: list[str] = []
    for paragraph in _BLANK_LINES.split(text):
        for line in _LINE_BREAK.split(paragraph):
            line = " ".join(line.split())  # hard-wrapped lines and runs of spaces -> one space
            if not line:
                continue
            for chunk in sentencex.segment("en", line):
                for piece in _EXTRA_STOP.split(chunk):
                    _append(sentences, piece.strip())
    return [cut for sentence in sentences for cut in _cap_length(sentence)]


def _append(sentences: list[str], piece: str) -> None:
    """Add ``piece``; a fragment with no word character ("!!!", an emoji) joins the previous one."""
    if not piece:
        return
    if sentences and not _HAS_WORD.search(piece):
        sentences[-1] = f"{sentences[-1]} {piece}"
    else:
        sentences.append(piece)


def _cap_length(sentence: str, limit: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Cut an over-long run-on sentence at commas or spaces so every piece fits ``limit``."""
    pieces: list[str] = []
    rest = sentence
    while len(rest) > limit:
        window = rest[:limit]
        cut = window.rfind(", ")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = limit - 1  # one unbroken token longer than the limit
        pieces.append(rest[: cut + 1].strip())
        rest = rest[cut + 1 :].strip()
    if rest:
        pieces.append(rest)
    return pieces
