"""Near-duplicate detection: copies link to their original, look-alikes that are not copies do not."""

from __future__ import annotations

from datetime import date

from reputation.syndication import Candidate, find_duplicates, normalise, shingles

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
    assert shingles(["a", "b"]) == {"a b"}
    assert shingles(["a", "b", "c", "d"]) == {"a b c", "b c d"}


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
