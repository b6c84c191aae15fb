"""Ordering query results: what ``order_by`` means, whichever path a query takes.

Pure units of ``discobase._ordering`` (the ids come ascending, the tie-break order), and a
range ordered by its own field with a limit, which is read in order from the field's sorted
index (``_matching.first_in_order``), checked against the order the planned path gives,
through writes that leave the index with changes beside its base.
"""

from __future__ import annotations

import functools
import operator as op
import random
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import pytest

import discobase
from discobase import ge, gt, le, lt, startswith
from discobase._binding import binding_of
from discobase._matching import first_in_order
from discobase._ordering import order_ids, parse_order_by
from discobase.errors import InvalidQuery
from tests.unit.tablefakes import StateEngine, StateStore, delete, put

SCORES = {1: 5, 2: 3, 3: 5, 4: None, 5: 3}


def score_of(field: str) -> Callable[[int], Any]:
    # Reading an id's value would be waste: ids order themselves.
    assert field == "score", f"read {field!r}"
    return SCORES.__getitem__


def test_the_names_after_id_never_decide_and_are_checked_all_the_same() -> None:
    known = {"score", "name"}
    assert parse_order_by(["score", "-id", "name"], known) == [("score", False), ("id", True)]
    assert parse_order_by("id", known) == [("id", False)]
    with pytest.raises(InvalidQuery, match="'nmae'"):
        parse_order_by(["id", "nmae"], known)


def test_a_misspelt_order_by_names_the_fields_to_choose_from() -> None:
    # find(quantiy=1) lists the fields; find(order_by="quantiy") said only "no such field".
    with pytest.raises(InvalidQuery) as caught:
        parse_order_by("-scor", {"score", "name"})
    assert str(caught.value) == "cannot order by 'scor': no such field; it may be id, name, score"


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


database = discobase.Database("ordering")


@database.table
class Entry(discobase.Table):
    score: Annotated[int | None, discobase.Index()] = None
    word: Annotated[str, discobase.Index()] = ""


@pytest.fixture
async def store() -> AsyncIterator[StateStore]:
    engine = StateEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    yield engine.stores["entry"]
    await database.close()


def entry(rng: random.Random) -> dict[str, Any]:
    # Few distinct scores (long ties), some None (in no range).
    score = None if rng.random() < 0.1 else rng.randrange(0, 12)
    return {"score": score, "word": rng.choice(["ab", "abc", "b", "ba", "c"]) + str(score)}


_COMPARE = {"ge": op.ge, "gt": op.gt, "le": op.le, "lt": op.lt}


def in_range(operator: discobase.Operator[Any]) -> Callable[[Any], bool]:
    def match(value: Any) -> bool:
        return value is not None and all(_COMPARE[o](value, b) for o, b in operator.parts)

    return match


def expected(
    store: StateStore, field: str, match: Any, order: list[str], offset: int, limit: int
) -> list[int]:
    ids = sorted(i for i, d in store.records().items() if match(d[field]))
    ties_descending = len(order) == 2 and order[1] == "-id"
    ids.sort(reverse=ties_descending)
    ids.sort(key=lambda i: store.records()[i][field], reverse=order[0].startswith("-"))
    return ids[offset : offset + limit]


def expected_all(store: StateStore, order: list[str], offset: int, limit: int) -> list[int]:
    # Every record: those without a score last, in either direction.
    records = store.records()
    ids = sorted(records, reverse=len(order) == 2 and order[1] == "-id")
    scored = [i for i in ids if records[i]["score"] is not None]
    scored.sort(key=lambda i: records[i]["score"], reverse=order[0].startswith("-"))
    return (scored + [i for i in ids if records[i]["score"] is None])[offset : offset + limit]


async def test_a_range_ordered_by_its_field_reads_the_index_in_order(store: StateStore) -> None:
    rng = random.Random(11)
    put(store, {i: entry(rng) for i in range(1, 400)})
    binding = binding_of(Entry)
    orders = [["score"], ["-score"], ["score", "-id"], ["-score", "id"], ["-score", "-id"]]
    for step in range(300):
        low = rng.randrange(-1, 12)
        high = low + rng.randrange(0, 6)
        order = rng.choice(orders)
        offset, limit = rng.choice([0, 0, 3]), rng.choice([0, 1, 5, 20, 500])
        operator = rng.choice([ge(low) & lt(high), gt(low), le(high), ge(low) & le(high)])
        keys = parse_order_by(order, binding.fields)
        # The index answers (not the planned path), and agrees with it.
        assert first_in_order(binding, store, {"score": operator}, keys, 1) is not None
        found = Entry.find(score=operator, order_by=order, limit=limit, offset=offset)
        match = in_range(operator)
        assert [r.id for r in found] == expected(store, "score", match, order, offset, limit)
        every = Entry.find(order_by=order, limit=limit, offset=offset)
        assert [r.id for r in every] == expected_all(store, order, offset, limit)
        prefix = rng.choice(["a", "ab", "b", "c", "z"])
        words = Entry.find(word=startswith(prefix), order_by=["-word"], limit=limit)
        begins = functools.partial(lambda p, w: w.startswith(p), prefix)
        assert [r.id for r in words] == expected(store, "word", begins, ["-word"], 0, limit)
        # Writes between queries: the index keeps them beside its base (stale entries).
        record_id = rng.randrange(1, 450)
        if step % 4 == 0 and record_id in store.records():
            delete(store, record_id)
        else:
            put(store, {record_id: entry(rng)})


async def test_other_orders_and_filters_are_planned(store: StateStore) -> None:
    binding = binding_of(Entry)
    put(store, {1: {"score": 3, "word": "x"}, 2: {"score": 1, "word": "y"}})
    put(store, {3: {"score": None, "word": "z"}})
    by_word = parse_order_by("word", binding.fields)
    by_score = parse_order_by("score", binding.fields)
    assert first_in_order(binding, store, {"score": ge(0)}, by_word, 5) is None
    assert first_in_order(binding, store, {"score": 3}, by_score, 5) is None
    # Every record, ordered: the index holds those with a value, and a record without one
    # comes after them (then the query is planned).
    assert first_in_order(binding, store, {}, by_score, 2) == [2, 1]
    assert first_in_order(binding, store, {}, by_score, 3) is None
    assert [r.id for r in Entry.find(order_by="-score", limit=3)] == [1, 2, 3]
    assert [r.id for r in Entry.find(score=ge(0), order_by="word", limit=1)] == [1]


def test_a_nan_comes_last_with_the_nones() -> None:
    # It compares with no number, so among them it would land anywhere.
    values = {1: 2.0, 2: float("nan"), 3: None, 4: -1.0, 5: float("inf"), 6: float("nan")}
    for descending, numbers in ((False, [4, 1, 5]), (True, [5, 1, 4])):
        ordered = order_ids(list(values), [("x", descending)], lambda f: values.__getitem__)
        assert ordered == [*numbers, 2, 3, 6]


def test_an_order_by_with_no_order_or_a_name_twice_is_refused() -> None:
    known = {"score", "name"}
    with pytest.raises(InvalidQuery, match="a list of them, most significant first"):
        parse_order_by({"score", "name"}, known)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match=r"descending\), not \{'score': -1\}"):
        parse_order_by({"score": -1}, known)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="'score' twice"):
        parse_order_by(["score", "-score"], known)
    assert parse_order_by(["score", "id", "-score"], known) == [("score", False), ("id", False)]
    with pytest.raises(InvalidQuery, match="a field name or a sequence"):
        parse_order_by(5, known)  # type: ignore[arg-type]


def test_values_that_do_not_compare_say_why_and_what_to_do() -> None:
    values: dict[int, Any] = {1: 3, 2: "x"}
    with pytest.raises(InvalidQuery, match=r"do not compare \(.*'<'.*\).*one zone"):
        order_ids([1, 2], [("x", False)], lambda f: values.__getitem__)


def reference_order(
    ids: list[int], keys: list[tuple[str, bool]], values: dict[str, dict[int, Any]]
) -> list[int]:
    # The plain way: one stable sort a key, least significant first, a flag placing None
    # and NaN last in either direction.
    ordered = sorted(ids)
    for field, descending in reversed(keys):
        if field == "id":
            ordered.sort(reverse=descending)
            continue

        def key(record_id: int, field: str = field, descending: bool = descending) -> Any:
            value = values[field][record_id]
            return (not descending, 0) if value is None or value != value else (descending, value)

        ordered.sort(key=key, reverse=descending)
    return ordered


def test_the_first_of_an_order_are_the_first_of_the_whole_order() -> None:
    # A limit picks its records with a heap once it is a small share of the ids: the same
    # records, in the same order, ties and None and NaN placed as the whole sort places them.
    rng = random.Random(8)
    choices: list[Any] = [None, float("nan"), 0, 1, 1.5, 2, 3, 7]
    for _ in range(300):
        ids = sorted(rng.sample(range(1, 2000), rng.randrange(0, 400)))
        values = {f: {i: rng.choice(choices) for i in ids} for f in ("a", "b")}
        keys = rng.choice(
            [
                [("a", False)],
                [("a", True)],
                [("a", True), ("b", False)],
                [("b", False), ("id", True)],
            ]
        )
        readers = {field: column.__getitem__ for field, column in values.items()}
        whole = order_ids(ids, keys, readers.__getitem__)
        assert whole == reference_order(ids, keys, values)
        for first in (0, 1, 3, 10, len(ids)):
            assert order_ids(ids, keys, readers.__getitem__, first) == whole[:first]
