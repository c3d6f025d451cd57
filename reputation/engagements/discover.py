"""Discover a vendor's client brands from its own site (and pages the user names); store candidates."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crawler.discovery.candidates import PROPOSE_CONFIDENCE, propose
from crawler.discovery.launch import Target, run_discovery_crawl
from crawler.discovery.names import Company
from crawler.discovery.sentences import KeywordRelationModel, SentenceModel
from reputation.engagements.store import save_candidates
from storage.database import connect
from storage.errors import BadValueError, NotFoundError

INTERIM_MODEL = "keyword"  # --sentence-model keyword: the interim cue matcher, no trained weights


@dataclass
class VendorDiscovery:
    vendor_id: str
    status: str
    pages: int = 0
    sentences: int = 0
    new: int = 0
    seen_before: int = 0
    proposed: int = 0       # candidates at or above PROPOSE_CONFIDENCE
    low_confidence: int = 0
    robots_refused: int = 0  # pages robots.txt kept the crawl from
    dropped: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        if self.status != "ok":
            return f"{self.vendor_id}: {self.status}"
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()))
        return (f"{self.vendor_id}: ok, {self.pages} pages, {self.sentences} sentences; {self.proposed} candidates "
                f"proposed, {self.low_confidence} low-confidence ({self.new} new, {self.seen_before} seen before)"
                + (f"; {self.robots_refused} pages refused by robots.txt" if self.robots_refused else "")
                + (f"; not proposed: {drops}" if drops else ""))


def load_sentence_model(name: str | None = None) -> tuple[SentenceModel, str]:
    """(model, its name): the project's relation model, or the interim cue matcher.

    ``keyword`` asks for the cue matcher. With no name the relation model is used where it is
    installed and trained; otherwise the cue matcher stands in, and its name says why, so the
    output always shows which model read the sentences.
    """
    if name == INTERIM_MODEL:
        return KeywordRelationModel(), KeywordRelationModel.name
    try:
        import relations  # torch: loaded only when sentences are classified
    except ImportError as exc:
        if name:
            raise BadValueError(f"sentence model {name!r} needs the relations package, which is not installed") from exc
        return KeywordRelationModel(), f"{KeywordRelationModel.name} (the relations package is not installed)"
    try:
        model = relations.RelationModel.load(name) if name else relations.RelationModel.load()
    except relations.RelationModelError as exc:  # missing or unreadable weights
        if name:
            raise BadValueError(f"cannot load sentence model {name!r}: {exc}") from exc
        return KeywordRelationModel(), f"{KeywordRelationModel.name} (relation model unavailable: {exc})"
    return model, str(getattr(model, "name", "relations"))


def _companies(db: Any, table: str) -> list[Company]:
    return [Company(*row) for row in db.execute(f"SELECT id, name, website FROM {table} ORDER BY id").fetchall()]


def discover(db_path: str | os.PathLike[str], vendor_ids: Sequence[str] | None, *, urls: Sequence[str] = (),
             sites: Mapping[str, str] | None = None, model: SentenceModel | None = None,
             settings: Mapping[str, Any] | None = None, timeout: float | None = None) -> list[VendorDiscovery]:
    """Crawl the vendors' sites (``sites`` overrides a vendor's website; ``urls`` adds pages) and store candidates.

    ``vendor_ids`` None means every vendor. Raises NotFoundError for an unknown vendor.
    """
    path = str(db_path)
    db = connect(path)
    try:
        vendors = _companies(db, "vendors")
        brands = _companies(db, "brands")
    finally:
        db.close()
    by_id = {v.id: v for v in vendors}
    chosen = list(vendor_ids) if vendor_ids is not None else [v.id for v in vendors]
    unknown = [v for v in chosen if v not in by_id]
    if unknown:
        raise NotFoundError(f"unknown vendor {', '.join(map(repr, unknown))} (see `reputation vendors list`)")
    if urls and len(chosen) != 1:
        raise BadValueError("--url needs exactly one vendor: whose pages are they?")
    results: dict[str, VendorDiscovery] = {}
    targets, site_of = [], {}
    for vid in chosen:
        site = (sites or {}).get(vid) or by_id[vid].website
        start = ([site] if site else []) + list(urls)
        if not start:
            results[vid] = VendorDiscovery(vid, "skipped: the vendor has no website in the registry; give --url")
            continue
        site_of[vid] = site
        targets.append(Target(vid, tuple(start)))
    crawls = run_discovery_crawl(targets, db_path=path, settings=settings, timeout=timeout) if targets else {}
    if model is None and crawls:
        model, _name = load_sentence_model()
    db = connect(path)
    try:
        for vid, crawl in crawls.items():
            result = results[vid] = VendorDiscovery(vid, crawl.status, pages=crawl.counts.get("pages", 0),
                                                    robots_refused=crawl.counts.get("robots_forbidden", 0))
            if not crawl.pages:
                continue
            assert model is not None
            vendor = by_id[vid]
            proposal = propose(Company(vendor.id, vendor.name, site_of[vid] or vendor.website), crawl.pages,
                               brands=brands, vendors=vendors, model=model)
            result.sentences, result.dropped = proposal.sentences, proposal.dropped
            result.new, result.seen_before = save_candidates(db, proposal.candidates)
            result.proposed = sum(1 for c in proposal.candidates if c.confidence >= PROPOSE_CONFIDENCE)
            result.low_confidence = len(proposal.candidates) - result.proposed
            if not proposal.candidates and result.status == "ok":
                result.status = f"empty: {result.pages} pages read, no client or engagement evidence on them"
    finally:
        db.close()
    return [results[v] for v in chosen]
