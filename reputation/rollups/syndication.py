"""Syndicated reviews: the same review copied to several sites must count once.

A review is a copy of an earlier one when both are about the same brand, carry the same
``author_hash``, were published within :data:`WINDOW_DAYS` days of each other, and their normalised
texts are equal or near-equal (Jaccard similarity of word shingles >= :data:`SIMILARITY_THRESHOLD`).

Speed: only reviews whose author wrote another review of the same brand within the window can
be copies, so SQL narrows the candidates first (usually a tiny fraction of the table) and streams
them one (author, brand) group at a time; within a group every pair in the window is compared
with the exact Jaccard similarity of the shingle sets (groups are a handful of reviews, so this
beats a global MinHash index in time and keeps memory to one group). Copies form clusters;
every copy links to the cluster's original: the earliest published (undated: first seen), then
first seen, then smallest id;
``similarity`` is the copy's Jaccard similarity to that original.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from typing import Any

import sqlite_utils

WINDOW_DAYS = 14
SHINGLE_WORDS = 3
SIMILARITY_THRESHOLD = 0.5

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Candidate:
    """A review that might be a copy: its id, author, brand, date and text."""

    id: str
    author_hash: str
    brand_id: str
    day: date
    first_seen: str
    text: str


@dataclass(frozen=True)
class Duplicate:
    review_id: str
    original_id: str
    similarity: float


def normalise(text: str) -> list[str]:
    """Words of the text, case-folded and stripped of punctuation and accents' compatibility forms."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def shingle_keys(words: list[str], size: int = SHINGLE_WORDS) -> set[tuple[str, ...]]:
    """Overlapping runs of ``size`` words as tuples (no string joining); a text shorter than
    that is one shingle."""
    if len(words) <= size:
        return {tuple(words)} if words else set()
    return set(zip(*(words[i:] for i in range(size)), strict=False))


def jaccard(a: set[Any], b: set[Any]) -> float:
    if not a and not b:
        return 0.0
    if a is b:  # the same text, shingled once
        return 1.0
    return len(a & b) / len(a | b)


def find_duplicates(
    candidates: Iterable[Candidate],
    *,
    threshold: float = SIMILARITY_THRESHOLD,
    window_days: int = WINDOW_DAYS,
) -> list[Duplicate]:
    """Link every copy among ``candidates`` to its original; originals themselves are not listed.

    Copies share author and brand, so texts are only compared within an (author, brand) group.
    Groups are small (one person's reviews of one brand), so exact Jaccard similarity on every
    pair in the window is cheaper than a global MinHash index, and memory holds one group at a
    time when the candidates arrive grouped, as :func:`candidate_reviews` yields them.
    """

    def key(c: Candidate) -> tuple[str, str]:
        return (c.author_hash, c.brand_id)

    if isinstance(candidates, Sequence):  # already in memory: group it ourselves
        candidates = sorted(candidates, key=key)
    duplicates: list[Duplicate] = []
    for _key, members in groupby(candidates, key=key):
        duplicates.extend(_group_duplicates(list(members), threshold, window_days))
    return duplicates


def _group_duplicates(group: list[Candidate], threshold: float, window_days: int) -> list[Duplicate]:
    """Copies within one (author, brand) group, each linked to its cluster's earliest member."""
    ordered = sorted(group, key=lambda c: (c.day, c.first_seen, c.id))
    if len(ordered) < 2:
        return []
    by_text: dict[str, set[tuple[str, ...]]] = {}  # copies usually repeat the text: shingle it once
    for c in ordered:
        if c.text not in by_text:
            by_text[c.text] = shingle_keys(normalise(c.text))
    sets = [by_text[c.text] for c in ordered]
    parent = list(range(len(ordered)))  # union-find; the root is always the earliest member

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    matched: set[int] = set()
    for index in range(1, len(ordered)):
        if not sets[index]:
            continue
        for other in range(index - 1, -1, -1):  # earlier reviews only, nearest first
            if (ordered[index].day - ordered[other].day).days > window_days:
                break
            if jaccard(sets[index], sets[other]) < threshold:
                continue
            a, b = root(index), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
            matched.add(index)
    duplicates = []
    for index in sorted(matched):
        original = root(index)
        if original != index:
            similarity = jaccard(sets[index], sets[original])  # to the original, not the closest copy
            duplicates.append(Duplicate(ordered[index].id, ordered[original].id, round(similarity, 6)))
    return duplicates


def candidate_reviews(
    db: sqlite_utils.Database, scope_sql: str, params: dict[str, str]
) -> Iterator[Candidate]:
    """Reviews whose author wrote another review of the same brand within the window.

    ``scope_sql`` is a WHERE condition over ``reviews r`` (the as-of filter). Pairing, dates and
    the window test come from the covering index on (author_hash, brand_id, published_at,
    first_seen), so the table is read only for the bodies of the few rows that survive; rows
    stream in (author, brand, day) order, so only one author's group is held at a time.
    SQL keeps every row that might have a neighbour within the window (a gap it cannot
    compute, such as one to a day that is not a plain ISO date, counts as near);
    :func:`_close_in_time` then applies the exact rule in Python.
    """
    day_sql = "COALESCE(substr(r.published_at, 1, 10), substr(r.first_seen, 1, 10))"
    sql = f"""
        WITH pair AS (
            SELECT author_hash, brand_id FROM reviews
            WHERE author_hash IS NOT NULL
            GROUP BY author_hash, brand_id HAVING count(*) > 1
        ), member AS (
            SELECT r.rowid AS rid, r.author_hash, r.brand_id, {day_sql} AS day, r.first_seen
            FROM pair JOIN reviews r ON r.author_hash = pair.author_hash AND r.brand_id = pair.brand_id
            WHERE {scope_sql}
        ), dated AS (
            SELECT *, CASE WHEN date(day) = day THEN julianday(day) END AS jd FROM member
        ), near AS (
            SELECT rid, author_hash, brand_id, day, first_seen,
                   lag(rid) OVER w IS NOT NULL AND NOT COALESCE(jd - lag(jd) OVER w > {WINDOW_DAYS}, 0)
                   OR lead(rid) OVER w IS NOT NULL AND NOT COALESCE(lead(jd) OVER w - jd > {WINDOW_DAYS}, 0)
                   AS close
            FROM dated
            WINDOW w AS (PARTITION BY author_hash, brand_id ORDER BY day, first_seen, rid)
        )
        SELECT r.id, n.author_hash, n.brand_id, n.day, n.first_seen, COALESCE(r.body, '') AS text
        FROM near n JOIN reviews r ON r.rowid = n.rid
        WHERE n.close
        ORDER BY n.author_hash, n.brand_id, n.day, n.first_seen, r.id
    """
    group: list[Candidate] = []
    for rid, author, brand, day_raw, first_seen, text in db.execute(sql, params):
        try:
            day = date.fromisoformat(day_raw)
        except (TypeError, ValueError):
            continue
        candidate = Candidate(rid, author, brand, day, first_seen, text)
        if group and (group[0].author_hash, group[0].brand_id) != (author, brand):
            yield from _close_in_time(group)
            group = []
        group.append(candidate)
    yield from _close_in_time(group)


def _close_in_time(group: list[Candidate]) -> Iterator[Candidate]:
    """Members of one (author, brand) group that have a neighbour within the window."""
    for i, c in enumerate(group):
        before = i > 0 and (c.day - group[i - 1].day).days <= WINDOW_DAYS
        after = i + 1 < len(group) and (group[i + 1].day - c.day).days <= WINDOW_DAYS
        if before or after:
            yield c


def frozen_duplicates(db: sqlite_utils.Database, scope_sql: str, params: dict[str, Any]) -> list[Duplicate]:
    """Copy links saved by ``reputation purge`` (the purge erases the author hash they were found by).

    Only links whose two reviews are both in scope count, as for links found afresh.
    """
    original_scope = scope_sql.replace("r.", "o.")
    rows = db.execute(
        "SELECT p.review_id, p.original_id, p.similarity FROM purged_review_copies p "
        "JOIN reviews r ON r.id = p.review_id JOIN reviews o ON o.id = p.original_id "
        f"WHERE {scope_sql} AND {original_scope} ORDER BY p.review_id",
        params,
    )
    return [Duplicate(review_id, original_id, similarity) for review_id, original_id, similarity in rows]
