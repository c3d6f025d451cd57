"""From page evidence to engagement candidates: (vendor, brand, relation, date, scope, evidence, URL, confidence).

Structured evidence comes first (case-study schema.org ``about``/``sameAs``, client logo walls,
case-study titles), then sentences through the sentence model. Every mention that does not
become a candidate is counted by reason (``Proposal.dropped``): nothing is dropped silently.
One event read twice (a press release and its line on the news page) is one candidate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from urllib.parse import urlsplit

from crawler.discovery.names import Company, NameIndex, domain_of, normalise_name
from crawler.discovery.pages import CASE_STUDY_PATH, CLIENT_WALL, PageEvidence
from crawler.discovery.sentences import SentenceModel, aliases_of

# Confidence of structured evidence: a logo on a client wall says "client", not since when.
LOGO_CONFIDENCE = 0.75
CASE_STUDY_CONFIDENCE = 0.8
SCHEMA_ORG_CONFIDENCE = 0.8
# Sentence relations below this are kept, counted and listed only on request (low confidence).
PROPOSE_CONFIDENCE = 0.5
STORE_MIN_CONFIDENCE = 0.2  # below this a sentence relation is counted (below_confidence), not stored


@dataclass(frozen=True)
class Candidate:
    vendor_id: str
    brand_name: str
    brand_id: str | None
    relation: str          # started | renewed | expanded | ended | client
    event_date: str | None  # ISO date
    scope: str
    evidence: str
    url: str
    confidence: float

    def key(self) -> tuple[str, str, str, str, str]:
        """One event: the same brand, relation, scope and month (a release and its news line agree)."""
        month = (self.event_date or "")[:7]
        return (self.vendor_id, normalise_name(self.brand_name), self.relation, month, self.scope)


@dataclass
class Proposal:
    candidates: list[Candidate] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    sentences: int = 0


def _month_first(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _is_company(name: str, companies: Iterable[Company], index: NameIndex) -> bool:
    key = normalise_name(name)
    return any(key == normalise_name(a) for c in companies for a in aliases_of(c.name)) or index.match(name) is not None


def propose(vendor: Company, pages: Sequence[PageEvidence], *, brands: Iterable[Company],
            vendors: Iterable[Company], model: SentenceModel) -> Proposal:
    """Candidates for one vendor from its crawled pages (brands: the registry's, for matching)."""
    brand_list, vendor_list = list(brands), list(vendors)
    brand_index, vendor_index = NameIndex(brand_list), NameIndex(vendor_list)
    known = [b.name for b in brand_list]
    out = Proposal()
    found: list[Candidate] = []
    own_host = domain_of(vendor.website)

    def add(name: str, relation: str, day: str | None, scope: str, evidence: str, url: str, confidence: float,
            same_as: Sequence[str] = ()) -> None:
        if _is_company(name, vendor_list, vendor_index) or any(domain_of(u) == own_host for u in same_as if own_host):
            out.dropped["vendor_name"] += 1  # the vendor itself or a competitor: never its own client
            return
        brand = brand_index.match(name, same_as)
        found.append(Candidate(vendor.id, brand.name if brand else name, brand.id if brand else None, relation,
                               day, scope, evidence, url, round(confidence, 3)))

    for page in pages:
        path = urlsplit(page.url).path
        client_page = bool(CASE_STUDY_PATH.search(path) or CLIENT_WALL.search(path))
        for m in page.mentions:
            if m.how == "logo_wall":
                add(m.name, "client", None, "all", f"client logo: {m.name}", page.url, LOGO_CONFIDENCE)
            elif m.how == "schema_org":
                if not client_page:
                    out.dropped["schema_org_outside_client_pages"] += 1
                    continue
                add(m.name, "client", m.date, "all", f"schema.org Organization: {m.name}", page.url,
                    SCHEMA_ORG_CONFIDENCE, m.same_as)
            elif m.how == "case_study":
                named = brand_index.find_in(m.name)
                if not named:
                    out.dropped["case_study_without_known_brand"] += 1
                    continue
                for company, _words in named:
                    add(company.name, "client", m.date, "all", page.title, page.url, CASE_STUDY_CONFIDENCE)
        first_person = own_host is None or domain_of(page.url) == own_host
        for sentence in page.sentences:
            out.sentences += 1
            day = date.fromisoformat(sentence.date) if sentence.date else None
            relations = model.extract(sentence.text, vendor.name, known, page_date=day,
                                      first_person=first_person, min_confidence=0.0)
            if not relations:
                out.dropped["sentence_without_relation"] += 1
            for rel in relations:
                if rel.confidence < STORE_MIN_CONFIDENCE:
                    out.dropped["below_confidence"] += 1
                    continue
                when = sentence.date or _month_first(rel.date)
                if rel.relation == "client":
                    when = None  # "X is our client" dates nothing; a client line is one per brand
                add(rel.brand, rel.relation, when, rel.scope, rel.evidence or sentence.text, page.url, rel.confidence)
    out.candidates = merge(found, out.dropped)
    return out


def merge(candidates: Iterable[Candidate], dropped: Counter[str]) -> list[Candidate]:
    """One candidate per event; the most confident reading wins, the rest are counted as duplicates."""
    best: dict[tuple[str, str, str, str, str], Candidate] = {}
    for c in candidates:
        held = best.get(c.key())
        if held is None:
            best[c.key()] = c
            continue
        dropped["duplicate_evidence"] += 1
        winner = c if c.confidence > held.confidence else held
        # a second, independent reading of the same event raises confidence a little
        best[c.key()] = replace(winner, confidence=round(min(1.0, max(c.confidence, held.confidence) + 0.05), 3),
                                event_date=held.event_date or c.event_date)
    return sorted(best.values(), key=lambda c: (c.brand_name, c.event_date or "", c.relation))
