"""Near-duplicate detection: copies link to their original, look-alikes that are not copies do not."""

from __future__ import annotations

from datetime import date
from typing import Any

from conftest import Builder

from reputation.rollups.syndication import Candidate, find_duplicates, normalise, shingle_keys

TEXT = (
    "I waited forty minutes on hold before an agent picked up, and then she transferred me twice. "
    "Nobody could tell me where my refund was. The chat support was no better and closed my ticket."
)
EDITED = (
    "I waited forty five minutes on hold before an agent picked up, and then she transferred me twice! "
    "Nobody could tell me where my refund was. The chat support was no better and closed my ticket."
)
OTHER = "Fast delivery and the jacket fits well. Would order from this shop again without hesitation."


def cand(rid: str, text: str, day: date, author: str = "a1", brand: str = "shop") -> Candidate:
    return Candidate(rid, author, brand, day, day.isoformat() + "T00:00:00+00:00", text)


def test_normalise_ignores_case_and_punctuation() -> None:
    assert normalise("Great  SERVICE!!  Thanks.") == ["great", "service", "thanks"]
    assert shingle_keys(["a", "b"]) == {("a", "b")}
    assert shingle_keys(["a", "b", "c", "d"]) == {("a", "b", "c"), ("b", "c", "d")}


def test_exact_copy_links_to_earliest() -> None:
    found = find_duplicates(
        [cand("late", TEXT.upper(), date(2024, 3, 5)), cand("early", TEXT, date(2024, 3, 1))]
    )
    assert [(d.review_id, d.original_id, d.similarity) for d in found] == [("late", "early", 1.0)]


def test_same_day_tie_goes_to_smallest_id() -> None:
    found = find_duplicates([cand("r2", TEXT, date(2024, 3, 1)), cand("r1", TEXT, date(2024, 3, 1))])
    assert [(d.review_id, d.original_id) for d in found] == [("r2", "r1")]


def test_lightly_edited_copy_is_linked() -> None:
    found = find_duplicates([cand("a", TEXT, date(2024, 3, 1)), cand("b", EDITED, date(2024, 3, 10))])
    assert [(d.review_id, d.original_id) for d in found] == [("b", "a")]
    assert 0.5 <= found[0].similarity < 1.0


def test_three_copies_all_link_to_the_first() -> None:
    found = find_duplicates(
        [
            cand("c", TEXT, date(2024, 3, 9)),
            cand("a", TEXT, date(2024, 3, 1)),
            cand("b", EDITED, date(2024, 3, 4)),
        ]
    )
    assert sorted((d.review_id, d.original_id) for d in found) == [("b", "a"), ("c", "a")]


def test_not_linked_other_author_other_brand_late_or_different_text() -> None:
    found = find_duplicates(
        [
            cand("a", TEXT, date(2024, 3, 1)),
            cand("other-author", TEXT, date(2024, 3, 2), author="a2"),
            cand("other-brand", TEXT, date(2024, 3, 2), brand="bank"),
            cand("thirty-days", TEXT, date(2024, 3, 31)),
            cand("different", OTHER, date(2024, 3, 3)),
        ]
    )
    assert found == []


def test_fourteen_days_is_still_inside_the_window() -> None:
    found = find_duplicates([cand("a", TEXT, date(2024, 3, 1)), cand("b", TEXT, date(2024, 3, 15))])
    assert [(d.review_id, d.original_id) for d in found] == [("b", "a")]


def test_candidate_query_keeps_exactly_the_reviews_close_in_time() -> None:
    """The SQL pre-filter must not lose a review the exact rule keeps, odd dates included."""
    from datetime import timedelta
    from itertools import groupby

    from reputation.rollups.syndication import WINDOW_DAYS, candidate_reviews
    from storage.database import connect

    make = Builder(connect(":memory:")).brand("shop")
    start = date(2024, 1, 1)
    # author -> published dates: gaps on both sides of the window, a run of close ones,
    # an undated review (falls back to first_seen), an impossible date and a lone review
    plans: dict[str, list[int | str | None]] = {
        "a": [0, 14, 29, 60, 61, 200],
        "b": [0, 15, 31],
        "c": [0, None, 100],
        "d": ["2024-02-30", 10, 40],
        "e": [5],
    }
    rows = []
    for author, days in plans.items():
        for k, day in enumerate(days):
            published = (
                day if isinstance(day, str) or day is None else (start + timedelta(days=day)).isoformat()
            )
            rows.append({
                "id": f"{author}{k}", "author_hash": author, "published_at": published,
                "first_seen": "2024-01-10T08:00:00+00:00",
            })  # fmt: skip
            make.review("shop", published, review_id=f"{author}{k}", author=author, body=f"text {author} {k}",
                        precision="missing" if published is None else "exact", seen="2024-01-10", model=None)
    scope = "r.first_seen < :next_day AND (r.published_at IS NULL OR r.published_at < :next_day)"
    found = {c.id for c in candidate_reviews(make.db, scope, {"next_day": "2025-01-01"})}

    def day_of(row: dict[str, Any]) -> date | None:
        try:
            return date.fromisoformat((row["published_at"] or row["first_seen"])[:10])
        except ValueError:
            return None

    expected = set()
    for _author, members in groupby(rows, key=lambda r: r["author_hash"]):
        dated = sorted((d, r["id"]) for r in members if (d := day_of(r)) is not None)
        for i, (d, rid) in enumerate(dated):
            near = [
                abs((d - other).days) <= WINDOW_DAYS
                for other, _ in dated[max(i - 1, 0) : i] + dated[i + 1 : i + 2]
            ]
            if any(near):
                expected.add(rid)
    assert found == expected
    assert found == {"a0", "a1", "a3", "a4", "c0", "c1"}  # c1 is undated: its first_seen, 9 days after c0
    assert shingle_keys(["a", "b", "c", "d"]) == {("a", "b", "c"), ("b", "c", "d")}
