"""Company names compared the way people write them: legal suffixes, case, '&' and punctuation aside.

``cleanco`` strips legal forms ("Ltd", "Inc.", "GmbH"); ``rapidfuzz`` scores what is left, so
"Fennel Bank plc" on a press release matches the registry's "Fennel Bank". A website in a
``sameAs`` link matches a brand's website outright.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cleanco import basename
from rapidfuzz import fuzz, process

MATCH_THRESHOLD = 90.0  # token-sort ratio (0..100) at which two cleaned names are the same company


def normalise_name(name: str) -> str:
    """'Harbor & Finch Customer Care Ltd.' -> 'harbor and finch customer care'."""
    text = name.replace("&", " and ").replace("’", "'")
    text = basename(text) or text
    text = re.sub(r"[^\w\s]", " ", text.casefold())
    return re.sub(r"\s+", " ", text).strip()


def domain_of(url: str | None) -> str | None:
    """'https://www.fennel-bank.example/x' -> 'fennel-bank.example'."""
    if not url:
        return None
    host = urlsplit(url if "//" in url else "//" + url).hostname or ""
    return host.removeprefix("www.") or None


@dataclass(frozen=True)
class Company:
    """A registry company (a brand or a vendor): id, display name, website."""

    id: str
    name: str
    website: str | None = None


class NameIndex:
    """Find the registry company a written name or a ``sameAs`` URL refers to."""

    def __init__(self, companies: Iterable[Company]) -> None:
        self.companies = list(companies)
        self._names = {c.id: normalise_name(c.name) for c in self.companies}
        self._by_domain = {d: c for c in self.companies if (d := domain_of(c.website))}
        self._by_id = {c.id: c for c in self.companies}

    def match(self, name: str, same_as: Iterable[str] = ()) -> Company | None:
        for url in same_as:
            found = self._by_domain.get(domain_of(url) or "")
            if found is not None:
                return found
        key = normalise_name(name)
        if not key or not self._names:
            return None
        best = process.extractOne(key, self._names, scorer=fuzz.token_sort_ratio, score_cutoff=MATCH_THRESHOLD)
        return self._by_id[best[2]] if best else None

    def find_in(self, text: str) -> list[tuple[Company, str]]:
        """Registry companies named in a text (the gazetteer): (company, the words that named it)."""
        plain = " " + normalise_name(text) + " "
        out = []
        for company in self.companies:
            key = self._names[company.id]
            if key and f" {key} " in plain:
                out.append((company, company.name))
        return out
