"""Change feeds: ``Model.watch()`` and ``db.watch()`` (public API layer: turns the storage
layer's applied changes into typed `Change` objects delivered to async iterators).

Storage reports, after each apply, which records it changed and how (see
``discobase.storage.changes``), whatever brought the entry: this process's own write, a
gateway event, a gap check or a catch-up after a reconnect. This module keeps one bounded
queue per watcher, filters changes into it in the apply's turn (cheap: JSON-mode dicts, no
model is built), and builds the records only when the consumer asks for the next change.

A table is watched (its state reports changes) only while a watcher wants it; without one,
the state's apply path is as it was. A watcher that nobody references any more is forgotten
(the hub holds it weakly), and a table nobody watches is unhooked at its next change.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, Self, TypeVar

from discobase._binding import as_id, id_of
from discobase.errors import DatabaseError, InvalidQuery, UnreadableRecord, UsageError
from discobase.operators import Operator
from discobase.query import MISSING, json_equal
from discobase.storage.changes import Applied
from discobase.storage.state import TableState

if TYPE_CHECKING:
    from pydantic import BaseModel

    from discobase._binding import TableBinding

__all__ = ["MAX_PENDING", "Change", "ChangeHub", "Watch", "WatchOverflow"]

# A table's class (a discobase.Table; this module knows tables only through their bindings).
T = TypeVar("T", bound="BaseModel")

#: Changes a watcher holds that its consumer has not taken yet; one more raises
#: `WatchOverflow` in the consumer (after the ones it holds). Set ``watch.max_pending``.
MAX_PENDING = 100_000

_Match = Callable[[int, Mapping[str, Any]], bool]
_log = logging.getLogger("discobase.watch")


class WatchOverflow(DatabaseError):
    """A change feed's consumer fell behind: more changes waited for it than its watcher may
    hold (``max_pending``). It is raised once, after the changes held were yielded, so
    everything up to there was delivered; read the tables again and start a new ``watch()``.

    Attributes:
        pending: how many changes the watcher held when it overflowed.
    """

    def __init__(self, message: str, *, pending: int) -> None:
        super().__init__(message)
        self.pending = pending


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """One insert, update or delete of a record, as this process applied it.

    Attributes:
        kind: ``"insert"`` (a record this process did not hold), ``"update"`` or
            ``"delete"``.
        table: the record's table (its class).
        record: the record after the change; for a delete, the record as it was last.
        previous: the record before the change (updates and deletes), ``None`` for an
            insert.
        position: the message id of the log entry that made the change (for a repair entry,
            the deleted entry it stands for): the changes to one record come in increasing
            position.
    """

    kind: Literal["insert", "update", "delete"]
    table: type[T]
    record: T
    previous: T | None
    position: int

    @property
    def id(self) -> int:
        """Return the changed record's id."""
        # As Table.id, which it is: None only once the record was deleted since.
        return id_of(self.record)  # type: ignore[return-value]


class Watch(Generic[T]):
    """An async iterator of `Change` objects, from the moment it was made.

    Made by `Table.watch()` or `Database.watch()`; iterate it with ``async for``. It ends
    when the database closes (after the changes it holds) or when `close()` is called (use
    ``async with Model.watch() as changes:`` to close it when the block ends).

    Attributes:
        max_pending: how many changes it holds for a consumer that does not keep up before
            it raises `WatchOverflow` (default `MAX_PENDING`).
    """

    def __init__(
        self,
        hub: ChangeHub,
        binding: TableBinding[Any] | None,
        match: _Match | None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._hub = hub
        self._binding = binding
        self._match = match
        self.max_pending = max_pending
        self._queue: deque[tuple[TableBinding[Any], Applied]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._overflow: WatchOverflow | None = None

    def __repr__(self) -> str:
        what = "every table" if self._binding is None else f"table {self._binding.name!r}"
        return f"<Watch {what} pending={len(self._queue)}{' closed' if self._closed else ''}>"

    @property
    def pending(self) -> int:
        """Return how many changes wait for the consumer."""
        return len(self._queue)

    def wants(self, binding: TableBinding[Any]) -> bool:
        """Tell whether this watcher wants the changes of ``binding``'s table."""
        return not self._closed and (self._binding is None or self._binding is binding)

    def push(self, binding: TableBinding[Any], applied: list[Applied]) -> None:
        """Queue the changes that pass the filter (called in the apply's turn)."""
        if self._closed:
            return
        match = self._match
        if match is None:
            taken = [(binding, change) for change in applied]
        else:
            taken = [
                (binding, change)
                for change in applied
                if (change.new is not None and match(change.record_id, change.new))
                or (change.old is not None and match(change.record_id, change.old))
            ]
        if not taken:
            return
        if len(self._queue) + len(taken) > self.max_pending:
            # Never dropped in silence: the consumer gets what it holds, then this error.
            self._overflow = WatchOverflow(
                f"a watcher of {'the database' if self._binding is None else self._binding.name}"
                f" fell behind: more than {self.max_pending} changes were waiting for it; "
                "read the tables again (find()) and start a new watch()",
                pending=len(self._queue),
            )
            self._closed = True
            self._hub.forget(self)
        else:
            self._queue.extend(taken)
        self._wake()

    def close(self) -> None:
        """Stop watching: iteration ends once the changes already held are taken."""
        if not self._closed:
            self._closed = True
            self._hub.forget(self)
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Change[T]:
        queue = self._queue
        while True:
            while queue:
                binding, applied = queue.popleft()
                change = _change(binding, applied)
                if change is not None:
                    return change
            overflow, self._overflow = self._overflow, None
            if overflow is not None:
                self._closed = True
                raise overflow  # once; the iterator is exhausted after it
            if self._closed:
                raise StopAsyncIteration
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class ChangeHub:
    """A database's watchers, and the tables their states report changes of.

    Args:
        tables: the database's tables by name (its own mapping: tables registered later are
            watched too).
    """

    def __init__(self, tables: Mapping[str, TableBinding[Any]]) -> None:
        self._tables = tables
        self._watchers: weakref.WeakSet[Watch[Any]] = weakref.WeakSet()

    def add(self, watcher: Watch[Any]) -> None:
        """Start delivering to ``watcher`` and hook the tables it wants."""
        self._watchers.add(watcher)
        for binding in self._tables.values():
            if watcher.wants(binding):
                self.attach(binding)

    def forget(self, watcher: Watch[Any]) -> None:
        """Stop delivering to ``watcher`` (its tables are unhooked at their next change)."""
        self._watchers.discard(watcher)

    def attach(self, binding: TableBinding[Any]) -> None:
        """Hook ``binding``'s open table if a watcher wants it (a table opened late, too)."""
        state = getattr(binding.store, "state", None)
        if not isinstance(state, TableState):
            return
        if any(watcher.wants(binding) for watcher in list(self._watchers)):
            if not state.watched:
                state.watch(partial(self._deliver, binding, state))

    def _deliver(
        self, binding: TableBinding[Any], state: TableState, applied: list[Applied]
    ) -> None:
        wanted = False
        for watcher in list(self._watchers):
            if watcher.wants(binding):
                wanted = True
                try:
                    watcher.push(binding, applied)
                except Exception:  # noqa: BLE001 - storage's apply must never fail for a watcher
                    _log.exception("watcher %r failed to take a change; it is closed", watcher)
                    watcher.close()
        if not wanted:
            state.watch(None)  # nobody watches any more: the plain apply path again

    def close(self) -> None:
        """End every watcher (each still yields what it holds) and unhook every table."""
        for watcher in list(self._watchers):
            watcher.close()
        for binding in self._tables.values():
            state = getattr(binding.store, "state", None)
            if isinstance(state, TableState):
                state.watch(None)


def _change(binding: TableBinding[Any], applied: Applied) -> Change[Any] | None:
    """Build the records of a change; ``None`` when its record cannot be read (reported)."""
    record_id, old, new = applied.record_id, applied.old, applied.new
    previous = None
    if old is not None:
        try:
            previous = binding.load(record_id, old)
        except UnreadableRecord:
            previous = None
    if new is None:
        if previous is None:
            return None  # a delete of a record that could not be read (reported)
        return Change("delete", binding.model, previous, previous, applied.position)
    try:
        record = binding.load(record_id, new)
    except UnreadableRecord:
        return None  # skipped, as queries skip it (logged once, naming it)
    kind: Literal["insert", "update"] = "insert" if old is None else "update"
    return Change(kind, binding.model, record, previous, applied.position)


def watch_table(
    hub: ChangeHub, binding: TableBinding[Any], fields: Mapping[str, Any]
) -> Watch[Any]:
    """Return a watcher of one table's changes that match ``fields`` (see `Table.watch`).

    Args:
        hub: the watchers of the table's database.
        binding: the table.
        fields: the filter, as `Table.find()` takes it.

    Raises:
        NotConnected, TableNotBuilt: the table is not open.
        InvalidQuery: an unknown field, a value it cannot hold, an operator that does not fit.
    """
    store = binding.require_store()
    watcher: Watch[Any] = Watch(hub, binding, _compile(binding, store, fields))
    hub.add(watcher)
    return watcher


def watch_database(hub: ChangeHub, max_pending: int = MAX_PENDING) -> Watch[Any]:
    """Return a watcher of every table's changes (see `Database.watch`).

    Args:
        hub: the watchers of the database, which is ready.
        max_pending: see `Watch`.

    Raises:
        UsageError: ``max_pending`` is not a positive int.
    """
    if not isinstance(max_pending, int) or max_pending < 1:
        raise UsageError(f"max_pending must be a positive int, not {max_pending!r}")
    watcher: Watch[Any] = Watch(hub, None, None, max_pending)
    hub.add(watcher)
    return watcher


def _compile(binding: TableBinding[Any], store: Any, fields: Mapping[str, Any]) -> _Match | None:
    """Turn a filter into a test of one record's JSON-mode data, or ``None`` for no filter.

    Raises:
        InvalidQuery: as `Table.find()` does.
    """
    if not fields:
        return None
    conditions = dict(fields)
    wanted_id: int | None = None
    has_id = "id" in conditions and "id" not in binding.fields
    if has_id:
        value = conditions.pop("id")
        if isinstance(value, Operator):
            raise InvalidQuery(
                f"{binding.model.__name__}.watch() matches id by equality only, not {value!r}"
            )
        wanted_id = as_id(value)
    tests: list[Any] = []
    if any(isinstance(value, Operator) for value in conditions.values()):
        from discobase._conditions import compile_conditions

        tests, _ = compile_conditions(binding, store, conditions)
    values = {name: binding.query_value(name, value) for name, value in conditions.items()}
    if any(type(value) is list for value in values.values()):
        from discobase._conditions import set_equalities

        tests = [*tests, *set_equalities(binding, values)]
    equal = list(values.items())
    defaults = binding.defaults

    def match(record_id: int, data: Mapping[str, Any]) -> bool:
        if has_id and record_id != wanted_id:
            return False
        for field, value in equal:
            stored = data.get(field, MISSING)
            if stored is MISSING:
                stored = defaults.get(field, MISSING)
            if stored is MISSING or not json_equal(stored, value):
                return False
        try:
            return all(test.match(data.get(test.field, test.default)) for test in tests)
        except InvalidQuery:  # values that do not compare (naive against aware): no match
            return False

    return match
