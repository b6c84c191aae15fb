"""Whatever path find() takes, it returns what the planned path returns (a review's tests).

``find(field=<range>, order_by=field, limit=n)`` and ``find(order_by=field, limit=n)`` are
read in order from the field's sorted index (``_matching.first_in_order``). The planned path
selects the ids, orders them (``_ordering.order_ids``), pages them and skips unreadable
records; ``find(order_by=...)`` without a limit always takes it, so a page of it is the
reference the index's answer is checked against, for every kind of field that has an order,
through writes that leave changes beside the index's base, deletes, rebuilds and reloads.
The last four pin bugs the review found, since mended: a record known to be unreadable
counted in the offset, a TypeError (not InvalidQuery) for naive and aware datetimes, and stored
values the model reads but the index has no key for, ordered last.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gc
import random
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import pytest
from pydantic import ConfigDict, create_model, field_validator

import discobase
from discobase import _json, ge, gt, le, lt
from discobase._binding import binding_of
from discobase._collector import QUIET_PAGE, gc_paused
from discobase._matching import first_in_order
from discobase._ordering import parse_order_by
from discobase._plain_records import _page_makers, direct_page_loader
from discobase.storage.snapshot import decode_records, encode_records
from discobase.storage.state import TableState
from tests.unit.tablefakes import StateEngine, StateStore, delete, put

database = discobase.Database("review")

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
MINUS5 = dt.timezone(dt.timedelta(hours=-5, minutes=-30))


@database.table
class Floaty(discobase.Table):
    x: Annotated[float | None, discobase.Index()] = None


@database.table
class Texty(discobase.Table):
    x: Annotated[str, discobase.Index()] = ""


@database.table
class Aware(discobase.Table):
    x: Annotated[dt.datetime, discobase.Index()]


@database.table
class Naive(discobase.Table):
    x: Annotated[dt.datetime | None, discobase.Index()] = None


@database.table
class Day(discobase.Table):
    x: Annotated[dt.date, discobase.Index()]


@database.table
class Money(discobase.Table):
    x: Annotated[decimal.Decimal, discobase.Index()]


@database.table
class Span(discobase.Table):
    x: Annotated[dt.timedelta, discobase.Index()]


@database.table
class Defaulted(discobase.Table):
    # Records written before the field lack it: they are read with 7.
    x: Annotated[int, discobase.Index()] = 7
    word: str = ""


@database.table
class Unique(discobase.Table):
    x: Annotated[int, discobase.Index(unique=True)]


@database.table
class Loose(discobase.Table):
    model_config = ConfigDict(extra="allow")
    x: Annotated[int, discobase.Index()]


@database.table
class Checked(discobase.Table):
    # Not a plain model: every record is validated.
    x: Annotated[int, discobase.Index()]
    word: str = ""

    @field_validator("word")
    @classmethod
    def lower(cls, value: str) -> str:
        return value.lower()


@database.table
class Moved(discobase.Table):
    # Older records hold the value under "old".
    x: Annotated[int | None, discobase.Index(), discobase.Renamed("old")] = None


@database.table
class Entry(discobase.Table):
    score: Annotated[int | None, discobase.Index()] = None
    word: str = ""


@database.table
class Stamp(discobase.Table):
    when: Annotated[dt.datetime, discobase.Index()]


@database.table
class Amount(discobase.Table):
    x: Annotated[float, discobase.Index()]


@database.table
class Count(discobase.Table):
    n: Annotated[int, discobase.Index()]


def reload(store: StateStore) -> None:
    """Open the table again from a snapshot of it, as a fresh process would (at the first
    version, so that every later put() of tablefakes is later)."""
    stream = encode_records(store.state.frozen_records(), {})
    store.state = TableState(store.spec.name, store.spec.indexes, store.spec.defaults())
    for chunk in decode_records(stream):
        store.state.load_snapshot(1, chunk)  # later writes (put) have later versions


@pytest.fixture
async def engine() -> AsyncIterator[StateEngine]:
    engine = StateEngine()
    await database._use_storage(engine)  # type: ignore[arg-type]
    yield engine
    await database.close()


def stored(model: type[discobase.Table], value: Any) -> dict[str, Any]:
    # The JSON-mode dict a record with this value is stored as (infinities as strings, ...).
    data: dict[str, Any] = _json.loads(model.model_validate({"x": value}).model_dump_json())
    return data


def ids_of(found: Any) -> list[int]:
    return [record.id for record in found]


# Each kind of field: its model, and what makes a random value of it (few distinct values:
# long ties), plus range operands.
def _float(rng: random.Random) -> Any:
    return rng.choice([None, float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1.5, -2.0, 3])


def _text(rng: random.Random) -> Any:
    return rng.choice(["", "a", "ab", "b", "é", "Z", "\U0001f600", "a\x00"])


def _aware(rng: random.Random) -> Any:
    # The same instant in several offsets, and a few others.
    base = dt.datetime(2024, 1, 1, 12, tzinfo=UTC) + dt.timedelta(hours=rng.randrange(3))
    return base.astimezone(rng.choice([UTC, PLUS2, MINUS5]))


def _naive(rng: random.Random) -> Any:
    if rng.random() < 0.15:
        return None
    return dt.datetime(2024, 1, 1) + dt.timedelta(minutes=rng.randrange(4), microseconds=1)


def _day(rng: random.Random) -> Any:
    return dt.date(2023, 12, 30) + dt.timedelta(days=rng.randrange(4))


def _money(rng: random.Random) -> Any:
    return decimal.Decimal(rng.choice(["1.5", "1.50", "-0.00", "0", "1E+1", "10", "-3.25"]))


def _span(rng: random.Random) -> Any:
    return dt.timedelta(seconds=rng.choice([-86395, -1, 0, 1, 60, 3600, 90000]))


def _int(rng: random.Random) -> Any:
    return rng.randrange(-2, 5)


KINDS: list[tuple[type[discobase.Table], Callable[[random.Random], Any], list[Any]]] = [
    (Floaty, _float, [-1, 0, 1.5, float("inf")]),
    (Texty, _text, ["a", "b", "é"]),
    (
        Aware,
        _aware,
        [dt.datetime(2024, 1, 1, 13, tzinfo=PLUS2), dt.datetime(2024, 1, 1, 13, tzinfo=UTC)],
    ),
    (Naive, _naive, [dt.datetime(2024, 1, 1, 0, 2)]),
    (Day, _day, [dt.date(2024, 1, 1)]),
    (Money, _money, [decimal.Decimal("1.5"), 0]),
    (Span, _span, [dt.timedelta(0), dt.timedelta(seconds=60)]),
    (Defaulted, _int, [0, 7]),
    (Checked, _int, [0, 3]),
    (Loose, _int, [1]),
]


def _random_range(rng: random.Random, operands: list[Any]) -> Any:
    low, high = sorted(rng.sample(operands, 2) if len(operands) > 1 else operands * 2)
    return rng.choice([ge(low), gt(low), le(high), lt(high), ge(low) & le(high)])


def _record(
    model: type[discobase.Table], make: Callable[[random.Random], Any], rng: random.Random
) -> dict[str, Any]:
    # A stored record of the model (some written before a field, some with extra fields).
    if model is Defaulted and rng.random() < 0.3:
        return {"word": "old"}  # written before the field
    if model is Loose and rng.random() < 0.3:
        return {"x": make(rng), "other": rng.random()}
    data = stored(model, make(rng))
    if model is Defaulted:
        data["word"] = ""
    return data


@pytest.mark.parametrize(
    ("model", "make", "operands"), KINDS, ids=lambda k: getattr(k, "__name__", "")
)
async def test_every_ordered_kind_reads_from_the_index_what_the_planned_path_gives(
    engine: StateEngine,
    model: type[discobase.Table],
    make: Callable[[random.Random], Any],
    operands: list[Any],
) -> None:
    rng = random.Random(model.__name__)
    store = engine.stores[binding_of(model).name]
    put(store, {i: _record(model, make, rng) for i in range(1, 120)})
    binding = binding_of(model)
    orders = [["x"], ["-x"], ["x", "-id"], ["-x", "id"], ["-x", "-id"], ["x", "id", "-x"]]
    answered = 0
    for step in range(60):
        order = rng.choice(orders)
        offset, limit = rng.choice([0, 0, 2, 500]), rng.choice([0, 1, 3, 30, 10**9])
        operator = _random_range(rng, operands)
        keys = parse_order_by(order, binding.fields)
        try:
            reference = ids_of(model.find(x=operator, order_by=order))
        except discobase.InvalidQuery:
            reference = None  # a bound that does not compare with the values
        if reference is not None:
            found = model.find(x=operator, order_by=order, limit=limit, offset=offset)
            assert ids_of(found) == reference[offset : offset + limit], (operator, order)
            answered += first_in_order(binding, store, {"x": operator}, keys, 1) is not None
        every = model.find(order_by=order, limit=limit, offset=offset)
        assert ids_of(every) == ids_of(model.find(order_by=order))[offset : offset + limit]
        # Writes between queries: changes beside the base, deletes, records rewritten.
        record_id = rng.randrange(1, 140)
        if step % 5 == 0 and record_id in store.records():
            delete(store, record_id)
        else:
            put(store, {record_id: _record(model, make, rng)})
        if step == 30:
            reload(store)  # a fresh process: the index is built again from a snapshot
    assert answered  # the index answered (it is not all the planned path)


async def test_a_unique_index_and_many_changes_that_rebuild_the_index(
    engine: StateEngine,
) -> None:
    rng = random.Random(5)
    store = engine.stores["unique"]
    values = rng.sample(range(100_000), 6000)
    put(store, {i: {"x": v} for i, v in enumerate(values[:100], 1)})
    assert ids_of(Unique.find(order_by="-x", limit=5)) == ids_of(Unique.find(order_by="-x"))[:5]
    # More changes than the index keeps beside its base: it is dropped and sorted again.
    put(store, {i: {"x": v} for i, v in enumerate(values[100:], 1)})
    for order in (["x"], ["-x"], ["-x", "-id"]):
        for offset, limit in ((0, 7), (5990, 20), (3, 0)):
            found = Unique.find(order_by=order, limit=limit, offset=offset)
            assert ids_of(found) == ids_of(Unique.find(order_by=order))[offset : offset + limit]
            ranged = Unique.find(x=ge(50_000), order_by=order, limit=limit, offset=offset)
            whole = Unique.find(x=ge(50_000), order_by=order)
            assert ids_of(ranged) == ids_of(whole)[offset : offset + limit]


async def test_a_renamed_field_orders_older_records_by_their_former_name(
    engine: StateEngine,
) -> None:
    store = engine.stores["moved"]
    put(store, {1: {"old": 5}, 2: {"x": 3}, 3: {"old": 9}, 4: {"x": None}, 5: {"x": 4}})
    for order in (["x"], ["-x"], ["-x", "-id"]):
        planned = ids_of(Moved.find(order_by=order))
        assert ids_of(Moved.find(order_by=order, limit=2)) == planned[:2]
        assert (
            ids_of(Moved.find(x=ge(4), order_by=order, limit=2))
            == ids_of(Moved.find(x=ge(4), order_by=order))[:2]
        )
    assert ids_of(Moved.find(order_by="-x", limit=2)) == [3, 1]


async def test_an_unreadable_record_in_the_page_sends_the_query_the_planned_way(
    engine: StateEngine,
) -> None:
    store = engine.stores["entry"]
    put(store, {1: {"score": 1, "word": "a"}, 2: {"score": 2, "word": 5}, 3: {"score": 3}})
    for _ in range(2):  # the record not yet known to be unreadable, then known
        assert ids_of(Entry.find(order_by="score", limit=2)) == [1, 3]
        assert ids_of(Entry.find(score=ge(0), order_by="-score", limit=2)) == [3, 1]


async def test_a_known_unreadable_record_is_not_counted_in_the_offset(
    engine: StateEngine,
) -> None:
    store = engine.stores["entry"]
    put(store, {1: {"score": 1, "word": 5}, 2: {"score": 2}, 3: {"score": 3}})
    assert ids_of(Entry.find()) == [2, 3]  # record 1 is now known to be unreadable
    planned = ids_of(Entry.find(order_by="score"))[1:2]
    assert planned == [3]
    assert ids_of(Entry.find(order_by="score", limit=1, offset=1)) == planned
    assert ids_of(Entry.find(score=ge(0), order_by="score", limit=1, offset=1)) == planned


async def test_naive_and_aware_datetimes_in_one_field_are_an_invalid_query(
    engine: StateEngine,
) -> None:
    store = engine.stores["stamp"]
    put(store, {i: {"when": f"2024-01-0{i}T00:00:00"} for i in range(1, 4)})
    assert ids_of(Stamp.find(order_by="when", limit=2)) == [1, 2]  # the index is built
    put(store, {4: {"when": "2024-01-05T00:00:00+00:00"}})
    with pytest.raises(discobase.InvalidQuery, match="do not compare"):
        Stamp.find(order_by="when")
    with pytest.raises(discobase.InvalidQuery, match="do not compare"):
        Stamp.find(order_by="when", limit=2)


async def test_a_value_the_model_reads_but_the_index_cannot_key_keeps_its_place(
    engine: StateEngine,
) -> None:
    store = engine.stores["amount"]
    put(store, {1: {"x": 1.0}, 2: {"x": "0.5"}, 3: {"x": 2.0}})
    assert [r.x for r in Amount.find()] == [1.0, 0.5, 2.0]  # every record is readable
    assert ids_of(Amount.find(order_by="x")) == [2, 1, 3]
    assert ids_of(Amount.find(order_by="x", limit=1)) == [2]


async def test_a_bool_stored_in_an_int_field_is_ordered_as_the_planned_path_orders_it(
    engine: StateEngine,
) -> None:
    store = engine.stores["count"]
    put(store, {1: {"n": 1}, 2: {"n": 2}, 3: {"n": True}})
    assert [r.n for r in Count.find()] == [1, 2, 1]
    assert ids_of(Count.find(order_by="n")) == [1, 3, 2]
    assert ids_of(Count.find(order_by="n", limit=2)) == [1, 3]


async def test_a_page_of_many_records_holds_the_collector_off_and_gives_it_back(
    engine: StateEngine,
) -> None:
    store = engine.stores["entry"]
    put(store, {i: {"score": i % 50, "word": "w"} for i in range(1, QUIET_PAGE + 10)})
    assert gc.isenabled()
    found = Entry.find(order_by="-score", limit=QUIET_PAGE + 5)
    assert ids_of(found) == ids_of(Entry.find(order_by="-score"))[: QUIET_PAGE + 5]
    assert gc.isenabled()
    # A failure inside a hold gives the collector back too, and nested holds count.
    with pytest.raises(KeyError):
        binding_of(Entry).load_page([*range(1, QUIET_PAGE + 1), 10**9], store.records())
    assert gc.isenabled()
    with gc_paused():
        with pytest.raises(ZeroDivisionError), gc_paused():
            1 / 0  # noqa: B018
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_compiled_page_makers_take_any_field_name_as_a_key() -> None:
    names = ("a", "class", "b'c", 'd"e', "f\\g", "h\ni", "ü", "_0", "values", "record_id")
    evil = "'); import os; ('"
    dicts, privates = _page_makers(Entry, names, {"_x": evil, "_id": None})
    row = tuple(range(len(names)))
    assert dicts([row, row]) == [dict(zip(names, row, strict=True))] * 2
    assert privates([4, 5]) == [{"_x": evil, "_id": 4}, {"_x": evil, "_id": 5}]
    assert _page_makers(Entry, (), {"_id": None})[0]([(), ()]) == [{}, {}]  # no field
    definitions: dict[str, Any] = {"class": (int, 0), "values": (str, "")}
    odd = create_model("Odd", __base__=discobase.Table, **definitions)
    loader = direct_page_loader(odd)
    assert loader is not None
    made = loader([1, 2], {1: {"class": 1, "values": "v"}, 2: {"class": 2, "values": "w"}})
    assert made is not None
    assert [(r.model_dump()["class"], r.model_dump()["values"], r.id) for r in made] == [
        (1, "v", 1),
        (2, "w", 2),
    ]


async def test_a_model_that_is_not_plain_loads_its_first_page_by_validating(
    engine: StateEngine,
) -> None:
    store = engine.stores["checked"]
    put(store, {1: {"x": 2, "word": "AB"}, 2: {"x": 1, "word": "Cd"}})
    binding = binding_of(Checked)
    found = Checked.find(order_by="x", limit=2)  # the binding's first read is a page
    assert [(r.id, r.word) for r in found] == [(2, "cd"), (1, "ab")]
    assert binding._direct_page is None  # the _first_ loaders replaced themselves
    assert [r.word for r in binding.load_page([1], store.records())] == ["ab"]


async def test_an_unreadable_record_among_the_first_of_a_limit_takes_no_place(
    engine: StateEngine,
) -> None:
    # The planned path orders only as far as the limit: a record found unreadable there
    # leaves the next one to take its place, not a short page.
    store = engine.stores["entry"]
    put(store, {i: {"score": 1, "word": f"w{i:03d}"} for i in range(1, 61)})
    put(store, {2: {"score": "one", "word": "w002"}})  # not an int: unreadable
    for _ in range(2):  # the record not yet known to be unreadable, then known
        assert ids_of(Entry.find(order_by="word", limit=3)) == [1, 3, 4]
        assert ids_of(Entry.find(word=ge("w"), order_by=["-score", "word"], limit=3)) == [1, 3, 4]
