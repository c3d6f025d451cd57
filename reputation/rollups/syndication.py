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

A rebuild keeps each group's result (table ``review_copy_groups``) with a fingerprint of what the
author index says about the group (:func:`group_key`); while it matches, the group's texts are
neither read nor compared again (:func:`find_duplicates_saved`). Triggers on reviews (storage
migration 13) drop a group's result when one of its reviews' text or id changes.
"""

from __future__ import annotations

import hashlib
import json
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


# Close members whose texts are fetched in one query; bounds memory to this many reviews' texts.
TEXT_BATCH = 2_000

# Changes with the matching rules (and the Unicode tables normalise() uses), so saved results go
# stale with them.
_RULES_KEY = hashlib.blake2b(
    repr(
        (WINDOW_DAYS, SHINGLE_WORDS, SIMILARITY_THRESHOLD, _WORD.pattern, unicodedata.unidata_version)
    ).encode(),
    digest_size=32,
).digest()


@dataclass(frozen=True)
class _Member:
    """A review of an (author, brand) group as the index gives it: rowid, no id or text yet."""

    rowid: int
    author_hash: str
    brand_id: str
    day: date
    first_seen: str


def group_key(members: Sequence[_Member]) -> bytes:
    """Fingerprint of one group's close members (rowids, days, first-seen times, in order) under
    the current rules, read from the index alone.

    What it leaves out, a member's id and text, can only change through an UPDATE or DELETE of
    the review, and storage's triggers on reviews then delete the group's saved result (see the
    migration that adds review_copy_groups); a new review changes the members, so the key.
    """
    digest = hashlib.blake2b(digest_size=16, key=_RULES_KEY)
    digest.update(repr([(m.rowid, m.day.toordinal(), m.first_seen) for m in members]).encode("utf-8"))
    return digest.digest()


# (author hash, brand id, group key, copies as JSON [[review id, original id, similarity], ...])
SavedGroup = tuple[str, str, bytes, str]


@dataclass
class SavedSearch:
    """The outcome of :func:`find_duplicates_saved`: the links, and how the saved results must change."""

    duplicates: list[Duplicate]
    fresh: list[SavedGroup]  # groups searched afresh (new or changed), to save
    stale: list[tuple[str, str]]  # (author, brand) of saved groups that have no candidates now


def find_duplicates_saved(
    db: sqlite_utils.Database, scope_sql: str, params: dict[str, Any], saved: Iterable[SavedGroup]
) -> SavedSearch:
    """:func:`find_duplicates` over :func:`candidate_reviews`, reusing each (author, brand)
    group's saved result while its :func:`group_key` still matches: texts are read and compared
    only in groups that are new or changed, so an unchanged group costs two index reads.

    ``saved`` must come in (author hash, brand id) order, as the saved table's primary key reads
    it: it is merged with the groups (which come in that order too) like two sorted lists, so
    neither is held in memory whole. The links come out in group order, as find_duplicates gives them.
    """
    out = SavedSearch([], [], [])
    by_group: list[list[Duplicate]] = []  # filled in group order; a changed group's slot waits for its texts
    todo: list[tuple[int, bytes, list[_Member]]] = []
    todo_members = 0
    saved_rows = iter(saved)
    pending = next(saved_rows, None)
    for members in _member_groups(db, scope_sql, params):
        key = (members[0].author_hash, members[0].brand_id)
        while pending is not None and (pending[0], pending[1]) < key:
            out.stale.append((pending[0], pending[1]))
            pending = next(saved_rows, None)
        fingerprint = group_key(members)
        if pending is not None and (pending[0], pending[1]) == key and pending[2] == fingerprint:
            by_group.append([Duplicate(*link) for link in json.loads(pending[3])])
        else:
            by_group.append([])
            todo.append((len(by_group) - 1, fingerprint, members))
            todo_members += len(members)
            if todo_members >= TEXT_BATCH:
                _search_groups(db, todo, by_group, out.fresh)
                todo, todo_members = [], 0
        if pending is not None and (pending[0], pending[1]) == key:
            pending = next(saved_rows, None)
    _search_groups(db, todo, by_group, out.fresh)
    while pending is not None:
        out.stale.append((pending[0], pending[1]))
        pending = next(saved_rows, None)
    out.duplicates = [d for found in by_group for d in found]
    return out


def _search_groups(
    db: sqlite_utils.Database,
    todo: list[tuple[int, bytes, list[_Member]]],
    by_group: list[list[Duplicate]],
    fresh: list[SavedGroup],
) -> None:
    """Read the texts of changed groups in one query, compare them, and note the results to save."""
    slots = {(members[0].author_hash, members[0].brand_id): (index, key) for index, key, members in todo}
    candidates = _with_texts(db, [m for _i, _k, members in todo for m in members])
    for (author, brand), group in groupby(candidates, key=lambda c: (c.author_hash, c.brand_id)):
        index, fingerprint = slots[(author, brand)]
        found = _group_duplicates(list(group), SIMILARITY_THRESHOLD, WINDOW_DAYS)
        by_group[index] = found
        links = [[d.review_id, d.original_id, d.similarity] for d in found]
        fresh.append((author, brand, fingerprint, json.dumps(links)))


def candidate_reviews(
    db: sqlite_utils.Database, scope_sql: str, params: dict[str, Any]
) -> Iterator[Candidate]:
    """Reviews whose author wrote another review of the same brand within the window.

    ``scope_sql`` is a WHERE condition over ``reviews r`` (the as-of filter). Pairing, dates and
    their order come from the covering index on (author_hash, brand_id, published_at,
    first_seen) alone; the exact window rule (:func:`_close_in_time`) is applied in Python as
    the rows stream in, one (author, brand) group at a time, and only the reviews that pass it
    are read from the table, for their ids and bodies, :data:`TEXT_BATCH` at a time. (A window
    pre-filter in SQL cost more than it saved: the index rows are cheap, the table rows are not.)
    """
    pending: list[_Member] = []
    for members in _member_groups(db, scope_sql, params):
        pending.extend(members)
        if len(pending) >= TEXT_BATCH:  # only at a group's end, so groups stay whole and in order
            yield from _with_texts(db, pending)
            pending = []
    yield from _with_texts(db, pending)


def _member_groups(
    db: sqlite_utils.Database, scope_sql: str, params: dict[str, Any]
) -> Iterator[list[_Member]]:
    """The close-in-time members of each (author, brand) group with two or more, in group order."""
    day_sql = "COALESCE(substr(r.published_at, 1, 10), substr(r.first_seen, 1, 10))"
    sql = f"""
        WITH pair AS (
            SELECT author_hash, brand_id FROM reviews
            WHERE author_hash IS NOT NULL
            GROUP BY author_hash, brand_id HAVING count(*) > 1
        )
        SELECT r.rowid, r.author_hash, r.brand_id, {day_sql} AS day, r.first_seen
        FROM pair JOIN reviews r ON r.author_hash = pair.author_hash AND r.brand_id = pair.brand_id
        WHERE {scope_sql}
        ORDER BY r.author_hash, r.brand_id, day, r.first_seen, r.rowid
    """
    for _key, rows in groupby(db.execute(sql, params), key=lambda row: (row[1], row[2])):
        members = []
        for rid, author, brand, day_raw, first_seen in rows:
            try:
                members.append(_Member(rid, author, brand, date.fromisoformat(day_raw), first_seen))
            except (TypeError, ValueError):
                continue
        close = list(_close_in_time(members))
        if close:
            yield close


def _close_in_time(group: list[_Member]) -> Iterator[_Member]:
    """Members of one (author, brand) group, in day order, that have a neighbour within the window."""
    for i, c in enumerate(group):
        before = i > 0 and (c.day - group[i - 1].day).days <= WINDOW_DAYS
        after = i + 1 < len(group) and (group[i + 1].day - c.day).days <= WINDOW_DAYS
        if before or after:
            yield c


def _with_texts(db: sqlite_utils.Database, members: list[_Member]) -> Iterator[Candidate]:
    """The members as candidates, with the id and body read by rowid in one query."""
    if not members:
        return
    texts = {
        rid: (review_id, text)
        for rid, review_id, text in db.execute(
            "SELECT rowid, id, COALESCE(body, '') FROM reviews WHERE rowid IN (SELECT value FROM json_each(?))",
            [json.dumps([m.rowid for m in members])],
        )
    }
    for m in members:
        if m.rowid in texts:  # else deleted since the index was read (outside a transaction): gone
            review_id, text = texts[m.rowid]
            yield Candidate(review_id, m.author_hash, m.brand_id, m.day, m.first_seen, text)


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
