"""How much of one text the model reads: a cap so that one huge input cannot stall a batch.

Why a cap at all: windows (windows.py) make cost linear in length, but linear is still too much
for a pasted log or a scraped page body of a megabyte: about 600 windows of 512 tokens and
14,000 sentences for the customer-service detector, minutes of CPU and most of a gigabyte for one
"review". Why 20,000 characters: English runs about 4-5 characters a token, so the cap is some
4,500 tokens, a dozen overlapping 512-token windows (stride a quarter of the window), and two to
three hundred sentences of at most ``sentences.MAX_SENTENCE_CHARS`` for the detector. That is
several times the longest review the supported sites accept, so real reviews are never cut; only
outliers are, and they say so with a ``capped`` flag. Callers keep the whole text stored.
"""

from __future__ import annotations

#: Characters of one text that are scored; the rest is left unread (see the module docstring).
MAX_TEXT_CHARS = 20_000

#: The flag a capped text carries in predictions and in the scoring job's stored rows.
CAPPED_FLAG = "capped"

# A cut that would split a word steps back to the last whitespace, if one lies this close.
_WORD_SLACK = 200


def cap_text(text: str, max_chars: int | None = MAX_TEXT_CHARS) -> tuple[str, bool]:
    """The prefix of ``text`` that is scored, and whether anything was cut off.

    ``max_chars=None`` means no cap. The cut falls on whitespace when one lies within the last
    200 characters of the prefix, so a capped text never ends in half a word.
    """
    if max_chars is not None and max_chars < 1:
        raise ValueError(f"max_chars must be at least 1 or None, got {max_chars}")
    if max_chars is None or len(text) <= max_chars:
        return text, False
    prefix = text[:max_chars]
    if not text[max_chars].isspace():
        tail = max(0, max_chars - _WORD_SLACK)
        for index in range(max_chars - 1, tail - 1, -1):
            if prefix[index].isspace():
                prefix = prefix[:index]
                break
    return prefix.rstrip(), True
