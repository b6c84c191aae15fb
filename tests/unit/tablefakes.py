"""An in-memory stand-in for the storage engine, for testing the public API without Discord.

It keeps the storage contract (``open_table`` -> a store with ``records``, ``lookup``,
``new_id``, ``get``, ``count``, ``submit``) and nothing else: writes resolve on the next loop
turn, or fail with ``fail_next``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from discobase.errors import UniqueViolation
from discobase.storage.catalog import TableEntry, schema_hash
from discobase.storage.codec import Delete, Put
from discobase.storage.rows import Records
from discobase.storage.snapshot import decode_records, encode_records
from discobase.storage.state import TableState


class FakeStore:
    """One table's records and indexes, in memory."""

    def __init__(self, spec: Any, ids: itertools.count[int]) -> None:
        self.spec = spec
        self.channel_id = 1000 + next(ids)
        self._ids = ids
        self._records: dict[int, dict[str, Any]] = {}
        self.lookups: list[tuple[str, Any]] = []
        self.batches: list[list[Any]] = []
        self.fail_next: BaseException | None = None
        self.held: list[asyncio.Future[None]] | None = None
        self._asked: set[str] = set()

    def new_id(self) -> int:
        return next(self._ids)

    def new_ids(self, count: int) -> list[int]:
        return [next(self._ids) for _ in range(count)]

    def get(self, record_id: int) -> dict[str, Any] | None:
        return self._records.get(record_id)

    def records(self) -> Mapping[int, dict[str, Any]]:
        return self._records

    def count(self) -> int:
        return len(self._records)

    def lookup(self, field: str, value: Any) -> Collection[int] | None:
        if field not in self.spec.indexes:
            return None
        self.lookups.append((field, value))
        return {i for i, d in self._records.items() if d.get(field) == value}

    def column(self, field: str) -> Mapping[int, Any] | None:
        # As the real store: the first scan of a field reads the records, later ones a column.
        if field not in self._asked:
            self._asked.add(field)
            return None
        return {i: d[field] for i, d in self._records.items() if field in d}

    def put_now(self, record_id: int, data: dict[str, Any]) -> None:
        """Store a record as if another process had written it."""
        self._records[record_id] = data

    def submit_later(self, chunks: Iterator[list[Any]], count: int) -> asyncio.Future[None]:
        return self.submit([op for chunk in chunks for op in chunk])

    def submit(self, ops: Sequence[Any]) -> asyncio.Future[None]:
        for field, unique in self.spec.indexes.items():
            if not unique:
                continue
            touched = {op.id for op in ops}
            taken = {d.get(field) for i, d in self._records.items() if i not in touched}
            for op in ops:
                value = getattr(op, "data", {}).get(field)
                if value is not None and value in taken:
                    raise UniqueViolation(
                        f"duplicate {field}", table=self.spec.name, field=field, value=value
                    )
                taken.add(value)
        self.batches.append(list(ops))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        failure, self.fail_next = self.fail_next, None
        if failure is not None:
            future.set_exception(failure)
            return future
        for op in ops:
            data = getattr(op, "data", None)
            if data is None:
                self._records.pop(op.id, None)
            else:
                self._records[op.id] = data
        if self.held is not None:
            self.held.append(future)
        else:
            future.set_result(None)
        return future


class FakeEngine:
    """The storage engine's contract over :class:`FakeStore` tables."""

    def __init__(self) -> None:
        self.stores: dict[str, FakeStore] = {}
        self.closed = False
        self.batches_entered = 0
        self._ids = itertools.count(1 << 40)

    async def open_table(self, spec: Any) -> FakeStore:
        store = self.stores.get(spec.name)
        if store is None:
            store = self.stores[spec.name] = FakeStore(spec, self._ids)
        return store

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        self.batches_entered += 1
        yield

    def open_batch_check(self) -> None:
        return None  # writes here are never held by a block, so awaiting one never hangs

    async def on_event(self, name: str, data: Any) -> None:
        pass

    async def catch_up(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


class StateStore:
    """A table store over a real TableState (hash and sorted indexes, compact records): every
    query takes the path a connected database takes; writes are applied on submit."""

    def __init__(self, spec: Any, ids: itertools.count[int]) -> None:
        self.spec = spec
        self.state = TableState(spec.name, spec.indexes, spec.defaults())
        self._ids = ids
        self._version = itertools.count(1)
        self.batches: list[list[Any]] = []

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
        self.batches.append(list(ops))
        self.state.apply(next(self._version), ops)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def reload(self) -> None:
        """Open the table again from a snapshot of it, as a fresh process would."""
        stream = encode_records(self.state.frozen_records(), {})
        self.state = TableState(self.spec.name, self.spec.indexes, self.spec.defaults())
        floor = next(self._version)  # later writes are later in the log
        for chunk in decode_records(stream):
            self.state.load_snapshot(floor, chunk)


class StateEngine:
    """The storage engine's contract over :class:`StateStore` tables."""

    def __init__(self) -> None:
        self.stores: dict[str, StateStore] = {}
        self._ids = itertools.count(1)

    async def open_table(self, spec: Any) -> StateStore:
        store = self.stores.get(spec.name)
        if store is None:
            store = self.stores[spec.name] = StateStore(spec, self._ids)
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


class Text(str):
    """A subclass of a JSON type: marshal cannot hold it, so its record stays a dict."""


def stored(*records: dict[str, Any]) -> Records:
    """Return compact records holding ``records`` under ids 1, 2, ..."""
    held = Records()
    for record_id, data in enumerate(records, 1):
        held.put(record_id, data)
    return held


_versions = itertools.count(1 << 30)


def put(store: StateStore, records: dict[int, dict[str, Any]]) -> None:
    """Apply records as another process's log entry would (no validation on the way)."""
    store.state.apply(next(_versions), [Put(i, data) for i, data in records.items()])


def delete(store: StateStore, *record_ids: int) -> None:
    """Delete records as another process's log entry would."""
    store.state.apply(next(_versions), [Delete(i) for i in record_ids])


def string_schema(fields: Mapping[str, bool]) -> dict[str, Any]:
    """Return the JSON schema of a table whose fields are strings (name -> has a default)."""
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in fields},
        "required": [name for name, has_default in fields.items() if not has_default],
    }


def catalog_entry(fields: dict[str, bool], renames: dict[str, str] | None = None) -> TableEntry:
    """Return the catalog's entry of table ``t`` of string fields, with its rename links."""
    schema = string_schema(fields)
    return TableEntry("t", 1, schema, schema_hash(schema), fields, {}, 1, 1, renames or {})
