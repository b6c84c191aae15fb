"""A table's live records and hash indexes (storage layer: pure; knows nothing of messages or I/O).

Theory
------
The log decides; this module only replays it. Each record remembers the message id of the
last operation applied to it, and a deleted record leaves that id behind as a tombstone. An
operation carried by message ``m`` is applied only if ``m`` is at least the record's id: so
entries may arrive in any order (a process's own acknowledgement before another's gateway
event, a catch-up after a reconnect, a replay from a snapshot) and every reader still ends with
the state of the log read in message-id order, and applying an entry twice changes nothing.

Unique indexes are enforced where a writer can still say no: before it sends. The log itself
may hold duplicates (two processes racing), so indexes map a value to every id that has it.
Pending writes (sent, not yet acknowledged) hold claims on their unique values so two local
saves of one value cannot both go out.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from discobase import _json
from discobase.errors import StorageCorrupted, UniqueViolation
from discobase.storage.changes import Applied, watched_apply
from discobase.storage.codec import Op, Put
from discobase.storage.snapshot import gc_paused
from discobase.storage.sorted_index import SortedIndex

__all__ = ["TableState", "check_wire", "index_key"]

_MISSING = object()
# How many entries a dict grown one key at a time holds when the next key makes it grow:
# two thirds of its table, which starts at 8 slots and doubles.
_GROWTH_POINTS = tuple(((8 << k) * 2) // 3 for k in range(40))
# Dicts smaller than this grow in a few milliseconds: grow_steps leaves them alone.
_GROW_FROM = 40_000
# Records lacking some fields -> for each, {field: JSON-mode value} to give it.
_Fill = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def index_key(value: Any) -> Any:
    """Return the hashable key of a JSON-mode value (``1``, ``1.0`` and ``True`` stay apart)."""
    kind = type(value)
    if kind is str or kind is int:
        return value
    if value is None:
        return None
    if kind is dict or kind is list:
        # Equal dicts with keys in another order must meet: serialise with sorted keys.
        return (kind.__name__, json.dumps(value, sort_keys=True, separators=(",", ":")))
    return (kind.__name__, _json.dumps_str(value))


def check_wire(
    version: int, raws: Iterable[Any], *, versioned: bool = False
) -> list[tuple[int, int, dict[str, Any] | None]]:
    """Check decoded operation arrays and return them as ``(version, id, data)`` rows.

    Args:
        version: the message id of the entry.
        raws: the decoded arrays.
        versioned: a snapshot's arrays may end with the message id that last changed the
            record; it is used instead of ``version`` then.

    Raises:
        StorageCorrupted: an array is not an operation.
    """
    checked: list[tuple[int, int, dict[str, Any] | None]] = []
    append = checked.append
    # A snapshot's records changed by one entry carry the same version text one after the
    # other: they share one int (3.5 MB less for 100,000 records).
    last_text: Any = _MISSING
    last_at = version
    for raw in raws:
        try:
            kind = raw[0]
            record_id = int(raw[1])
            if kind == "p":
                data = raw[2]
                if type(data) is not dict:
                    raise TypeError("data")
                at = version
                if versioned and len(raw) > 3:
                    if raw[3] != last_text:
                        last_at = int(raw[3])
                        last_text = raw[3]
                    at = last_at
            elif kind == "d":
                data = None
                at = int(raw[2]) if versioned and len(raw) > 2 else version
            else:
                raise ValueError(kind)
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise StorageCorrupted(
                f"entry {version} holds a malformed operation: {str(raw)[:80]}"
            ) from exc
        append((at, record_id, data))
    return checked


class _Index:
    """Map a key to the ids holding it: an int for one id, a set beyond (most keys are one)."""

    __slots__ = ("_map", "_owned")

    def __init__(self) -> None:
        self._map: dict[Any, int | set[int]] = {}
        # In a fork, the keys whose sets are its own (the others are shared with the index
        # it was copied from, and copied before they change); None when every set is.
        self._owned: set[Any] | None = None

    def fork(self) -> _Index:
        """Return a copy whose changes leave this index as it is (sets copied on write)."""
        twin = _Index()
        twin._map = self._map.copy()
        twin._owned = set()
        return twin

    def _own(self, key: Any, held: set[int]) -> set[int]:
        owned = self._owned
        if owned is None or key in owned:
            return held
        owned.add(key)
        mine = self._map[key] = set(held)
        return mine

    def add(self, key: Any, record_id: int) -> None:
        held = self._map.get(key)
        if held is None:
            self._map[key] = record_id
        elif isinstance(held, set):
            self._own(key, held).add(record_id)
        elif held != record_id:
            self._map[key] = {held, record_id}

    def remove(self, key: Any, record_id: int) -> None:
        held = self._map.get(key)
        if held is None:
            return
        if isinstance(held, set):
            held = self._own(key, held)
            held.discard(record_id)
            if len(held) == 1:
                self._map[key] = next(iter(held))
        elif held == record_id:
            del self._map[key]

    def clear(self) -> None:
        self._map.clear()

    def get(self, key: Any) -> Collection[int]:
        held = self._map.get(key)
        if held is None:
            return ()
        if isinstance(held, set):
            return frozenset(held)
        return (held,)


class TableState:
    """The live records of one table, their indexes and the writes still pending.

    Args:
        table: the table's name (for error messages).
        indexes: indexed field name -> unique?
        defaults: JSON-mode defaults of fields that older records may lack (indexed as such).
    """

    def __init__(
        self,
        table: str,
        indexes: Mapping[str, bool],
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.table = table
        self._records: dict[int, dict[str, Any]] = {}
        self._view = MappingProxyType(self._records)
        # Record id -> message id of the last operation applied (kept after a delete). A live
        # record without an entry has the version _floor: the replay position of the snapshot
        # it was loaded from (see load_snapshot), which most records of a large table keep.
        self._versions: dict[int, int] = {}
        self._floor = 0
        # Dict id -> (its size in bytes, slots grow_steps' stand-ins left empty in it).
        self._stand_ins: dict[int, tuple[int, int]] = {}
        self._indexes = {name: _Index() for name in indexes}
        self._unique = [name for name, unique in indexes.items() if unique]
        self._defaults = dict(defaults or {})
        self._indexed = [
            (name, index, self._defaults.get(name, _MISSING))
            for name, index in self._indexes.items()
        ]
        # Pending writes: record id -> stack of (token, data or None for a delete).
        self._pending: dict[int, list[tuple[int, dict[str, Any] | None]]] = {}
        # Unique claims of pending writes: field -> key -> {record id: count}.
        self._claims: dict[str, dict[Any, dict[int, int]]] = {name: {} for name in self._unique}
        self._next_token = 0
        # Field -> {record id: stored value} of the records that carry the field, made by the
        # second scan of that field and kept up to date after it (see column()).
        self._columns: dict[str, dict[int, Any]] = {}
        self._asked: set[str] = set()
        # Counts every change of the records, so a fork knows whether it is still current.
        self._generation = 0
        self._forked_at = -1
        # Fields a record must have, and what gives a record that lacks some of them their
        # values (see fill_missing); None when no field needs it.
        self._fill: tuple[frozenset[str], _Fill] | None = None
        # Indexed field -> its values in order, for range and prefix queries (built on the
        # first one, kept current by applied operations; see sorted_index()).
        self._sorted: dict[str, SortedIndex] = {}
        # Where applied changes go while someone watches the table (storage/changes.py); None
        # keeps the apply path as it is without watchers. A fork's changes wait in _held.
        self._watch: Callable[[list[Applied]], None] | None = None
        self._held: list[Applied] | None = None

    # ------------------------------------------------------------------ reading

    @property
    def records(self) -> Mapping[int, dict[str, Any]]:
        """Return a read-only view of the live records."""
        return self._view

    def get(self, record_id: int) -> dict[str, Any] | None:
        """Return a record's JSON-mode data, or ``None``."""
        return self._records.get(record_id)

    def count(self) -> int:
        """Return how many records are live."""
        return len(self._records)

    @property
    def has_unique(self) -> bool:
        """Tell whether a unique index checks writes before they are sent."""
        return bool(self._unique)

    def column(self, field: str) -> Mapping[int, Any] | None:
        """Return ``{record id: stored value}`` of ``field`` for the live records that have it.

        An unindexed equality query scans this instead of every record's dict: one dense
        array of values, not three dependent lookups in scattered memory per record, several
        times as fast. A column costs about 5 MB per 100,000 records and a dict write per
        applied operation, and building one takes about two scans of the records; so the
        first call for a field returns ``None`` (scan the records) and only a field asked for
        again gets its column, which every applied operation then keeps current.
        """
        column = self._columns.get(field)
        if column is None:
            if field not in self._asked:
                self._asked.add(field)
                return None
            records = self._records
            try:
                # In C, about as long as one scan of the records: a copy of the records' dict
                # has every slot already, so putting the values in inserts nothing.
                column = records.copy()
                column.update(zip(records, map(itemgetter(field), records.values()), strict=True))
            except KeyError:  # some records lack the field (written before it existed)
                absent = _MISSING
                column = {
                    record_id: value
                    for record_id, data in records.items()
                    if (value := data.get(field, absent)) is not absent
                }
            self._columns[field] = column
        return MappingProxyType(column)

    def lookup(self, field: str, value: Any) -> Collection[int] | None:
        """Return the ids whose ``field`` equals ``value`` (JSON-mode); ``None`` if not indexed."""
        index = self._indexes.get(field)
        if index is None:
            return None
        return index.get(index_key(value))

    def sorted_index(self, field: str, key: Callable[[Any], Any]) -> SortedIndex | None:
        """Return the values of an indexed field in order, sorting them on first use.

        Args:
            field: the field; only fields with a (hash) index have a sorted index.
            key: turns a stored JSON value into its sort key, or ``None`` to leave it out;
                the first caller's key is the index's.

        Returns:
            ``None`` when the field is not indexed or its keys do not compare.
        """
        if field not in self._indexes:
            return None
        index = self._sorted.get(field)
        if index is None:
            index = self._sorted[field] = SortedIndex(
                field, self._defaults.get(field, _MISSING), key
            )
        return index if index.build(self._records) else None

    def version(self, record_id: int) -> int | None:
        """Return the message id of the last operation applied to a record (or its delete)."""
        version = self._versions.get(record_id)
        if version is None and record_id in self._records:
            return self._floor
        return version

    # ------------------------------------------------------------------ applying the log

    def clear(self) -> None:
        """Forget every record, version and index entry (pending writes stay)."""
        self._generation += 1
        self._records.clear()
        self._versions.clear()
        self._floor = 0
        for index in self._indexes.values():
            index.clear()
        for column in self._columns.values():
            column.clear()
        for ordered in self._sorted.values():
            ordered.invalidate()

    def load(self, version: int, records: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Take records from a snapshot whose replay starts after message ``version``."""
        self._apply_rows((version, record_id, data) for record_id, data in records)

    def apply(self, version: int, ops: Sequence[Op]) -> int:
        """Apply the operations of the entry at message ``version``, in order.

        Returns:
            How many operations changed the state (older ones are skipped).
        """
        return self._apply_rows(
            (version, op.id, op.data if type(op) is Put else None) for op in ops
        )

    def apply_wire(self, version: int, raws: Iterable[Any], *, versioned: bool = False) -> int:
        """Apply decoded operation arrays (``["p", id, data]``, ``["d", id]``) without copying.

        Args:
            version: the message id of the entry.
            raws: the decoded arrays.
            versioned: a snapshot's arrays may end with the message id that last changed the
                record; it is used instead of ``version`` then.

        Raises:
            StorageCorrupted: an array is not an operation.
        """
        # Every array is checked before any is applied: a malformed entry changes nothing.
        try:
            rows = check_wire(version, raws, versioned=versioned)
        except StorageCorrupted as exc:
            raise StorageCorrupted(f"table {self.table!r}: {exc}") from exc
        return self._apply_rows(rows)

    def load_snapshot(self, replay_from: int, raws: Iterable[Any]) -> int:
        """Apply a piece of a snapshot's operation arrays (see :meth:`apply_wire`).

        Records the snapshot holds as of its replay position keep no entry in the table of
        versions (50 bytes a record, and a third of the dicts that grow, and so resize, with
        every record loaded): their version is the state's floor, the replay position of the
        snapshot loaded into it while it was empty. Any other state takes the pieces as
        :meth:`apply_wire` does.

        Raises:
            StorageCorrupted: an array is not an operation.
        """
        if not self._records and not self._versions:
            self._floor = replay_from
        try:
            rows = check_wire(replay_from, raws, versioned=True)
        except StorageCorrupted as exc:
            raise StorageCorrupted(f"table {self.table!r}: {exc}") from exc
        return self._apply_rows(rows, at_floor=self._floor == replay_from)

    def grow_steps(self, count: int) -> Iterator[None]:
        """Make room for ``count`` more records in steps, yielding after each.

        Python grows a dict by copying it into a table twice as large when it is two thirds
        full: past 700,000 entries that takes 20 ms. The records and each index take a key per
        record loaded, so they would all grow during the same piece of a snapshot's load, one
        event-loop stall of their sum. This grows each dict the next ``count`` keys would make
        grow in a step of its own (inserting ``count`` stand-in keys and taking them out
        again), so the caller can let the loop run in between. For a table nobody sees yet.
        """
        dicts: list[dict[Any, Any]] = [self._records]
        dicts.extend(index._map for index in self._indexes.values())
        for mapping in dicts:
            used = len(mapping)
            if used < _GROW_FROM:
                continue  # growing a smaller dict takes a few milliseconds at most
            # Slots stand-ins left empty count until the dict next grows (its size changes).
            size, empty = self._stand_ins.get(id(mapping), (0, 0))
            if size == sys.getsizeof(mapping):
                used += empty
            if not any(used <= limit < used + count for limit in _GROWTH_POINTS):
                continue
            stand_ins = [object() for _ in range(count)]
            for key in stand_ins:
                mapping[key] = None
            for key in stand_ins:
                del mapping[key]
            self._stand_ins[id(mapping)] = (sys.getsizeof(mapping), count)
            yield

    def apply_checked(self, rows: Iterable[tuple[int, int, dict[str, Any] | None]]) -> int:
        """Apply ``(version, record id, data or None)`` rows made by :func:`check_wire`."""
        return self._apply_rows(rows)

    def fork(self) -> TableState:
        """Return a copy to apply a large entry to a slice at a time, yielding in between.

        Readers keep seeing this state, without any of the entry, until :meth:`adopt` takes
        the copy's records and indexes in one step: the entry is applied all or nothing. The
        copy costs a copy of each dict (in C, about 15 ms per 100,000 records, more per
        record in larger tables) and shares the pending writes, which applying does not
        touch.
        """
        twin = copy.copy(self)
        twin._forked_at = self._generation
        twin._records = self._records.copy()
        twin._view = MappingProxyType(twin._records)
        twin._versions = self._versions.copy()
        twin._indexes = {name: index.fork() for name, index in self._indexes.items()}
        twin._indexed = [(name, twin._indexes[name], default) for name, _, default in self._indexed]
        twin._columns = {name: column.copy() for name, column in self._columns.items()}
        twin._sorted = {}  # the fork's changes reach sorted indexes only through adopt()
        # Watched: the fork's changes wait until it is adopted (and vanish if it is not).
        twin._held = [] if self._watch is not None else None
        twin._watch = None if twin._held is None else twin._held.extend
        return twin

    def adopt(self, twin: TableState) -> bool:
        """Take the records and indexes of a :meth:`fork` made since the last change.

        Returns:
            False, changing nothing, if this state changed after the fork (apply the entry
            here then): the fork would lose that change.
        """
        if twin._forked_at != self._generation or (self._watch is not None and twin._held is None):
            return False  # (a watcher came after the fork: apply here, so it sees the entry)
        self._records, self._view, self._versions = twin._records, twin._view, twin._versions
        self._floor = twin._floor
        for index in twin._indexes.values():
            index._owned = None
        self._indexes, self._indexed = twin._indexes, twin._indexed
        # A column made meanwhile is not in the fork: the next query makes it again.
        self._columns = twin._columns
        for ordered in self._sorted.values():
            ordered.invalidate()  # sorted again by the next range query
        self._generation += 1
        if self._watch is not None and twin._held:
            self._watch(twin._held)
        return True

    def fill_missing(self, fields: Collection[str], fill: _Fill) -> int:
        """Give every record that lacks one of ``fields`` the values ``fill`` makes, once.

        For fields added with a default factory: records written before them lack them, and
        the factory's value is made once per record, when the table opens (for the live
        records) or when a record is applied (for the ones that come later), so every read
        and query sees one stable value. ``fill(records)`` returns, for each record, ``{field:
        JSON-mode value}`` of the fields it can make, and must not raise. The stored log is
        not changed; a snapshot taken later holds the values.

        Returns:
            How many live records were filled.
        """
        wanted = frozenset(fields)
        self._fill = (wanted, fill) if wanted else None
        records = self._records
        lacking = [(rid, data) for rid, data in records.items() if not wanted.issubset(data)]
        if not lacking:
            return 0
        self._generation += 1  # a fork made before must not be adopted over this
        # Only the indexes of filled fields change; the other fields keep their values.
        indexed = [entry for entry in self._indexed if entry[0] in wanted]
        with gc_paused():  # 100,000 new dicts: collections would walk every record
            made = fill([data for _, data in lacking])
            for (record_id, data), values in zip(lacking, made, strict=True):
                if not values:
                    continue
                for field, index, default in indexed:
                    before = data.get(field, default)
                    if before is not _MISSING:
                        index.remove(index_key(before), record_id)
                    after = values.get(field, before)
                    if after is not _MISSING:
                        index.add(index_key(after), record_id)
                records[record_id] = {**data, **values}
        # Columns and sorted indexes of the filled fields are made again when next asked for.
        for field in wanted:
            self._columns.pop(field, None)
            if field in self._sorted:
                self._sorted[field].invalidate()
        return len(lacking)

    def _apply_rows(
        self, rows: Iterable[tuple[int, int, dict[str, Any] | None]], *, at_floor: bool = False
    ) -> int:
        # One loop for every way in: this runs once per record when a snapshot loads or a
        # save_many of 100,000 records is acknowledged, so it keeps to local names. With
        # at_floor, a record put at the floor's version keeps no entry in versions.
        if self._watch is not None:
            return watched_apply(self, rows, at_floor)
        self._generation += 1
        versions = self._versions
        get_version = versions.get
        floor = self._floor
        records = self._records
        indexed = self._indexed
        columns = list(self._columns.items())
        fill = self._fill
        ordered = [sorted_index for sorted_index in self._sorted.values() if sorted_index.built]
        changed = 0
        for version, record_id, data in rows:
            seen = get_version(record_id)
            if seen is None and floor and record_id in records:
                seen = floor
            if seen is not None:
                if version < seen:
                    continue
                # A record is live only if some operation on it was applied before.
                old = records.get(record_id)
                if old is not None:
                    if indexed:
                        self._unindex(record_id, old)
                    if data is None:
                        del records[record_id]
            if at_floor and version == floor and data is not None:
                if seen is not None:
                    versions.pop(record_id, None)
            else:
                versions[record_id] = version
            changed += 1
            if data is not None:
                if fill is not None and not fill[0].issubset(data):
                    data = {**data, **fill[1]([data])[0]}
                records[record_id] = data
                if indexed:
                    for field, index, default in indexed:
                        value = data.get(field, default)
                        if value is not _MISSING:
                            index.add(value if type(value) is str else index_key(value), record_id)
                for field, column in columns:
                    value = data.get(field, _MISSING)
                    if value is _MISSING:
                        column.pop(record_id, None)
                    else:
                        column[record_id] = value
            elif columns:
                for _, column in columns:
                    column.pop(record_id, None)
            if ordered:
                for sorted_index in ordered:
                    sorted_index.touch(record_id, data)
        return changed

    def _apply_one(self, version: int, record_id: int, data: dict[str, Any] | None) -> int:
        return self._apply_rows(((version, record_id, data),))

    def versions_after(self, position: int) -> dict[int, int]:
        """Return record id -> version for every record or tombstone changed after ``position``."""
        versions = self._versions
        recent = {rid: v for rid, v in versions.items() if v > position}
        floor = self._floor
        if floor > position:
            recent.update((rid, floor) for rid in self._records if rid not in versions)
        return recent

    def _index(self, record_id: int, data: Mapping[str, Any]) -> None:
        for field, index, default in self._indexed:
            value = data.get(field, default)
            if value is not _MISSING:
                index.add(value if type(value) is str else index_key(value), record_id)

    def _unindex(self, record_id: int, data: Mapping[str, Any]) -> None:
        for field, index, default in self._indexed:
            value = data.get(field, default)
            if value is not _MISSING:
                index.remove(value if type(value) is str else index_key(value), record_id)

    def _value(self, data: Mapping[str, Any], field: str) -> Any:
        value = data.get(field, _MISSING)
        if value is _MISSING:
            return self._defaults.get(field, _MISSING)
        return value

    # ------------------------------------------------------------------ pending writes

    def _effective(
        self, record_id: int, local: Mapping[int, dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        if record_id in local:
            return local[record_id]
        stack = self._pending.get(record_id)
        if stack:
            return stack[-1][1]
        return self._records.get(record_id)

    def check(self, ops: Sequence[Op]) -> None:
        """Refuse a group that would duplicate a unique value of live or pending records.

        Raises:
            UniqueViolation: naming the field and the value.
        """
        if not self._unique:
            return
        local: dict[int, dict[str, Any] | None] = {}
        local_claims: dict[tuple[str, Any], set[int]] = {}
        for op in ops:
            data = op.data if isinstance(op, Put) else None
            # What the record holds before this op: a value it keeps is no new duplicate (two
            # processes may have saved one value at once; either record stays writable).
            before = self._effective(op.id, local) if data is not None else None
            local[op.id] = data
            if data is None:
                continue
            for field in self._unique:
                value = self._value(data, field)
                if value is _MISSING:
                    continue
                key = index_key(value)
                if before is not None:
                    kept = self._value(before, field)
                    if kept is not _MISSING and index_key(kept) == key:
                        continue
                live = self._indexes[field].get(key)
                claimed = self._claims[field].get(key)
                mine = local_claims.get((field, key))
                if live or claimed or mine:
                    holders = {*live, *(claimed or ()), *(mine or ())}
                    holders.discard(op.id)
                    self._refuse_taken(field, value, key, holders, local)
                if mine is None:
                    local_claims[(field, key)] = {op.id}
                else:
                    mine.add(op.id)

    def _refuse_taken(
        self,
        field: str,
        value: Any,
        key: Any,
        holders: set[int],
        local: Mapping[int, dict[str, Any] | None],
    ) -> None:
        for holder in holders:
            other = self._effective(holder, local)
            if other is not None and index_key(self._value(other, field)) == key:
                raise UniqueViolation(
                    f"{self.table}.{field} is unique and {value!r} is already taken "
                    f"by record {holder}",
                    table=self.table,
                    field=field,
                    value=value,
                )

    def hold(self, ops: Sequence[Op]) -> int:
        """Record a group as pending (after :meth:`check`) and return its token."""
        self._next_token += 1
        token = self._next_token
        if not self._unique:
            return token  # pending values matter only to unique checks
        pending = self._pending
        for op in ops:
            data = op.data if isinstance(op, Put) else None
            stack = pending.get(op.id)
            if stack is None:
                pending[op.id] = [(token, data)]
            else:
                stack.append((token, data))
            if data is not None:
                for field in self._unique:
                    value = self._value(data, field)
                    if value is not _MISSING:
                        held = self._claims[field].setdefault(index_key(value), {})
                        held[op.id] = held.get(op.id, 0) + 1
        return token

    def release(self, token: int, ops: Sequence[Op]) -> None:
        """Forget a pending group (acknowledged and applied, or failed)."""
        if not self._unique:
            return
        pending = self._pending
        for op in ops:
            stack = pending.get(op.id)
            if stack:
                if len(stack) == 1:
                    if stack[0][0] == token:
                        del pending[op.id]
                else:
                    stack[:] = [entry for entry in stack if entry[0] != token]
                    if not stack:
                        del pending[op.id]
            if isinstance(op, Put):
                for field in self._unique:
                    value = self._value(op.data, field)
                    if value is _MISSING:
                        continue
                    key = index_key(value)
                    held = self._claims[field].get(key)
                    if held is None or op.id not in held:
                        continue
                    held[op.id] -= 1
                    if held[op.id] <= 0:
                        del held[op.id]
                    if not held:
                        del self._claims[field][key]

    @property
    def pending_count(self) -> int:
        """Return how many records have writes in flight."""
        return len(self._pending)
