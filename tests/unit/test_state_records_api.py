"""What the public API gives back from a real TableState, whose records are held compactly
(storage/rows.py): valid instances of the model, independent of what is stored, and a record
that does not fit reported once however often it is read."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest

import discobase
from discobase.storage.codec import Put
from discobase.storage.snapshot import decode_records, encode_records
from discobase.storage.state import TableState


class Store:
    """A table store over a real TableState; writes are applied on submit."""

    def __init__(self, spec: Any, ids: itertools.count[int]) -> None:
        self.spec = spec
        self.state = TableState(spec.name, spec.indexes)
        self._ids = ids
        self._version = itertools.count(1)

    def new_id(self) -> int:
        return next(self._ids)

    def new_ids(self, count: int) -> list[int]:
        return [next(self._ids) for _ in range(count)]

    def get(self, record_id: int) -> dict[str, Any] | None:
        return self.state.get(record_id)

    def records(self) -> Mapping[int, dict[str, Any]]:
        return self.state.records

    def count(self) -> int:
        return self.state.count()

    def lookup(self, field: str, value: Any) -> Collection[int] | None:
        return self.state.lookup(field, value)

    def column(self, field: str) -> Mapping[int, Any] | None:
        return self.state.column(field)

    def submit_later(self, chunks: Iterator[list[Any]], count: int) -> asyncio.Future[None]:
        return self.submit([op for chunk in chunks for op in chunk])

    def submit(self, ops: Sequence[Any]) -> asyncio.Future[None]:
        self.state.check(ops)
        self.state.apply(next(self._version), ops)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def reload(self) -> None:
        """Open the table again from a snapshot of it, as a fresh process would."""
        stream = encode_records(self.state.frozen_records(), {})
        self.state = TableState(self.spec.name, self.spec.indexes)
        floor = next(self._version)  # later writes are later in the log
        for chunk in decode_records(stream):
            self.state.load_snapshot(floor, chunk)


class Engine:
    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}
        self._ids = itertools.count(1)

    async def open_table(self, spec: Any) -> Store:
        store = self.stores.get(spec.name)
        if store is None:
            store = self.stores[spec.name] = Store(spec, self._ids)
        return store

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        yield

    def open_batch_check(self) -> None:
        return None

    async def on_event(self, name: str, data: Any) -> None:
        pass

    async def catch_up(self) -> None:
        pass

    async def close(self) -> None:
        pass


database = discobase.Database("compact records")


@database.table
class Flat(discobase.Table):
    """Plain scalars: found records are built without validation (see _plain_records)."""

    name: Annotated[str, discobase.Index()]
    age: int
    score: float
    ok: bool
    note: str | None = None


@database.table
class Nested(discobase.Table):
    """Lists and dicts: found records are validated."""

    name: Annotated[str, discobase.Index()]
    tags: list[str] = []
    meta: dict[str, list[int]] = {}


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    made = Engine()
    await database._use_storage(made)  # type: ignore[arg-type]
    yield made
    await database.close()


async def test_found_records_are_valid_and_changing_them_changes_nothing_stored(
    engine: Engine,
) -> None:
    await Flat.save_many([Flat(name=f"f{i}", age=i, score=i / 2, ok=i % 2 == 0) for i in range(50)])
    await Nested.save_many(
        [Nested(name=f"n{i}", tags=["a", str(i)], meta={"k": [i, -i]}) for i in range(50)]
    )
    for store in engine.stores.values():
        store.reload()
    [flat] = Flat.find(name="f7")
    [nested] = Nested.find(name="n7")
    for found, model in ((flat, Flat), (nested, Nested)):
        assert type(found) is model
        assert model.model_validate(found.model_dump()).model_dump() == found.model_dump()
    assert (flat.age, flat.score, flat.ok, flat.note) == (7, 3.5, False, None)
    assert (nested.tags, nested.meta) == (["a", "7"], {"k": [7, -7]})
    flat_stored = dict(engine.stores["flat"].get(flat.id) or {})
    nested_stored = engine.stores["nested"].get(nested.id)
    flat.age, flat.note = 70, "changed"
    nested.tags.append("changed")
    nested.meta["k"].append(0)
    nested.meta["new"] = []
    assert engine.stores["flat"].get(flat.id) == flat_stored
    assert nested_stored == {"name": "n7", "tags": ["a", "7"], "meta": {"k": [7, -7]}}
    assert engine.stores["nested"].get(nested.id) == nested_stored
    [again] = Flat.find(name="f7")
    [nested_again] = Nested.find(name="n7")
    assert again.age == 7 and again.note is None and again is not flat
    assert nested_again.tags == ["a", "7"] and nested_again.meta == {"k": [7, -7]}
    await flat.update()
    assert Flat.find(name="f7")[0].age == 70  # saved: now it is stored


async def test_a_stored_record_that_does_not_fit_is_reported_once(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    await Flat(name="fits", age=1, score=1.0, ok=True).save()
    store = engine.stores["flat"]
    store.state.apply(10**9, [Put(4242, {"name": "bad", "age": "many"})])
    with caplog.at_level(logging.WARNING, logger="discobase.table"):
        for _ in range(3):
            assert [r.name for r in Flat.find()] == ["fits"]
            assert Flat.find(name="bad") == []
    reports = [r for r in caplog.records if "4242" in r.getMessage()]
    assert len(reports) == 1
    store.state.apply(10**9 + 1, [Put(4242, {"name": "bad", "age": "still many"})])
    with caplog.at_level(logging.WARNING, logger="discobase.table"):
        assert [r.name for r in Flat.find()] == ["fits"]
    assert len([r for r in caplog.records if "4242" in r.getMessage()]) == 2  # rewritten
