"""Ordering query results: what ``order_by`` means, whichever path a query takes.

Pure units of ``discobase.query``'s ordering (the ids come ascending, the tie-break order).
"""

from __future__ import annotations

from typing import Any

import pytest

from discobase.errors import InvalidQuery
from discobase.query import order_ids, parse_order_by

SCORES = {1: 5, 2: 3, 3: 5, 4: None, 5: 3}


def score_of(record_id: int, field: str) -> Any:
    # Reading an id's value would be waste: ids order themselves.
    assert field == "score", f"read {field!r}"
    return SCORES[record_id]


def test_the_names_after_id_never_decide_and_are_checked_all_the_same() -> None:
    known = {"score", "name"}
    assert parse_order_by(["score", "-id", "name"], known) == [("score", False), ("id", True)]
    assert parse_order_by("id", known) == [("id", False)]
    with pytest.raises(InvalidQuery, match="'nmae'"):
        parse_order_by(["id", "nmae"], known)


def test_ordering_by_id_reads_no_value() -> None:
    ids = [1, 2, 3, 4, 5]
    assert order_ids(ids, [("id", False)], score_of) == [1, 2, 3, 4, 5]
    assert order_ids(ids, [("id", True)], score_of) == [5, 4, 3, 2, 1]
    assert ids == [1, 2, 3, 4, 5]  # the caller's list is left as it was


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ([("score", False)], [2, 5, 1, 3, 4]),
        ([("score", False), ("id", True)], [5, 2, 3, 1, 4]),
        ([("score", True)], [1, 3, 2, 5, 4]),
        ([("score", True), ("id", True)], [3, 1, 5, 2, 4]),
    ],
)
def test_ties_go_by_id_in_the_direction_asked_and_none_comes_last(
    keys: list[tuple[str, bool]], expected: list[int]
) -> None:
    assert order_ids([1, 2, 3, 4, 5], keys, score_of) == expected
