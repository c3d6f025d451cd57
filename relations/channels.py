"""Which channels a sentence ties to an engagement: a documented rule, not a trained head.

Channel words in press text are few and unambiguous ("live chat", "email", "social media", "phone
lines", "calls"), so a word list is exact where a head would only approximate it; the held-out
figures in the model card measure it. Scope is "all" when the sentence names no channel, names
several, or says so ("omnichannel", "all channels", "every channel").
"""

from __future__ import annotations

import re

from relations.types import SCOPE_ALL

_WORDS: dict[str, re.Pattern[str]] = {
    "chat": re.compile(r"\b(?:live[- ]?chat|web[- ]?chat|chat(?:s|bot)?|messaging|whatsapp|in-app messag\w*|sms|text messages?)\b", re.I),
    "voice": re.compile(r"\b(?:voice|phones?|telephon\w*|helplines?|hotlines?|calls?|call[- ]cent(?:re|er)s?|phone lines?|inbound|outbound)\b", re.I),
    "email": re.compile(r"\b(?:e-?mails?)\b", re.I),
    "social": re.compile(r"\b(?:social(?: media)?|twitter|facebook|instagram|tiktok)\b", re.I),
}
_ALL = re.compile(r"\b(?:omni-?channel|all (?:of its |their |our )?channels|every channel|multichannel)\b", re.I)


def find_channels(sentence: str) -> tuple[str, ...]:
    """The channels the sentence names, in a fixed order; () when it names none."""
    return tuple(name for name, pattern in _WORDS.items() if pattern.search(sentence))


def scope_of(sentence: str, channels: tuple[str, ...]) -> str:
    """One channel's name when exactly one is named, else "all"."""
    if _ALL.search(sentence) or len(channels) != 1:
        return SCOPE_ALL
    return channels[0]
