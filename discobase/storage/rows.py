"""A table's records, held compactly (storage layer: pure; knows nothing of messages or I/O).

Theory
------
A record is a small dict of JSON values. Held as Python objects, five short fields cost about
560 bytes: the dict (184), each string (49 bytes of header beside its characters), the
allocator's rounding. Held as one ``bytes`` object, marshal's encoding of the record's values,
the same record costs about 100 bytes. Each record is a *row*:

- ``marshal.dumps(values)``, a tuple of its values, when its keys are the table's *shape*: the
  keys, in order, of the first record put into an empty table, which every record one model
  writes shares;
- ``marshal.dumps(record)``, the whole dict, when its keys are others (a record written before
  a field was added), a third larger;
- the dict itself when marshal cannot hold a value (only a subclass of a JSON type could be).

marshal, not JSON: it is exact for every value a record may hold (integers of any size, any
float, lone surrogates), it decodes in C in about 400 ns a record, and nothing it writes leaves
the process (its format is the running Python's own).

Reading a record decodes a new dict, so a caller that changes what it read never changes the
stored record. A dict handed out by a point read (``get``) is kept while anyone else holds it:
a record read twice without a change in between is the same object both times, as when the
dicts themselves were stored (``table.py`` tells a record rewritten since it last read it by
``is``). Every so often the dicts nobody else holds are dropped (a reference count is how a
dict, which takes no weak reference, can be held weakly).

A query's page of records is decoded at once (``page``, ``decode_page``): the values of each
row, in C, for the caller to make its own records of; nothing of it is kept.
"""

from __future__ import annotations

import marshal
import sys
from collections import deque
from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from itertools import repeat
from operator import itemgetter
from typing import Any, cast

from discobase._collector import QUIET_PAGE, gc_paused

__all__ = ["FrozenRecords", "Records", "RecordsView"]

Row = bytes | dict[str, Any]
_dumps = marshal.dumps
_loads = marshal.loads
_MISSING: Any = object()
# marshal's codes of a tuple, with and without the flag of an object referred to again.
_TUPLE_CODES = frozenset(code | flag for code in b"()" for flag in (0, 0x80))
# The handed-out dicts kept before the first sweep (then twice the ones a sweep keeps).
_SWEEP_FROM = 1024


def _idle_references() -> int:
    # What sys.getrefcount reports for a dict only the cache holds, as the sweep calls it
    # (one more than the cache's own reference on CPython up to 3.13: the argument's).
    cache: dict[int, dict[str, Any]] = {0: {}}
    return sys.getrefcount(cache[0])


_IDLE = _idle_references()


def _run(steps: Iterator[Any]) -> None:
    """Run an iterator of steps to its end (in C), keeping nothing."""
    deque(steps, maxlen=0)


def _decode(row: Row, shape: tuple[str, ...] | None) -> dict[str, Any]:
    if type(row) is bytes:
        value = _loads(row)
        if type(value) is tuple:
            assert shape is not None
            return dict(zip(shape, value, strict=True))
        return value  # type: ignore[no-any-return]
    return row  # type: ignore[return-value]


class Records:
    """The live records of a table, keyed by id, each held as a compact row."""

    __slots__ = ("_handed", "_keys", "_odd", "_rows", "_shape", "_sweep_at")

    def __init__(self) -> None:
        self._rows: dict[int, Row] = {}
        self._shape: tuple[str, ...] | None = None
        self._keys: tuple[str, ...] = ()  # the shape, or nothing while there is none
        # Whether a row not of the shape was put since the last clear(): while none was, a
        # scan decodes every row in C (see _values).
        self._odd = False
        # Dicts handed out by get(), while someone may hold them (see the module docstring).
        self._handed: dict[int, dict[str, Any]] = {}
        self._sweep_at = _SWEEP_FROM

    @property
    def rows(self) -> dict[int, Row]:
        """Return the rows themselves (to grow the dict ahead of a load)."""
        return self._rows

    @property
    def handed(self) -> dict[int, dict[str, Any]]:
        """Return the dicts handed out (to forget the one of a record the caller changes)."""
        return self._handed

    @property
    def shape(self) -> tuple[str, ...] | None:
        """Return the keys a record's row holds only the values of."""
        return self._shape

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._rows

    def encode(self, data: dict[str, Any]) -> Row:
        """Return the row of a record (the first record of an empty table with fields sets the
        shape)."""
        shape = self._shape
        if shape is None and data:
            shape = self._shape = self._keys = tuple(data)
        try:
            if tuple(data) == shape:
                row = _dumps(tuple(data.values()))
            else:
                self._odd = True
                row = _dumps(data)
        except ValueError:  # a value marshal cannot hold: keep the dict itself
            self._odd = True
            return data
        # marshal grows its buffer past the small-object allocator's limit and shrinks it at
        # the end, which leaves the row in a malloc block: 16 bytes more each than a copy.
        return memoryview(row).tobytes()

    def decode(self, row: Row) -> dict[str, Any]:
        """Return a new dict of a row's record."""
        return _decode(row, self._shape)

    def put(self, record_id: int, data: dict[str, Any]) -> None:
        """Store a record (its row), replacing what the id held."""
        self._rows[record_id] = self.encode(data)
        if self._handed:
            self._handed.pop(record_id, None)

    def delete(self, record_id: int) -> None:
        """Forget a record the id holds."""
        del self._rows[record_id]
        if self._handed:
            self._handed.pop(record_id, None)

    def get(self, record_id: int) -> dict[str, Any] | None:
        """Return a record, the same dict as last time while someone holds that one."""
        # (What a query returning records runs for each: _decode is inlined.)
        handed = self._handed
        data = handed.get(record_id)
        if data is not None:
            return data
        row = self._rows.get(record_id)
        if not isinstance(row, bytes):
            return row  # None, or a dict kept as it is
        value = _loads(row)
        # A row of the shape holds exactly its values (see encode).
        data = dict(zip(self._keys, value)) if type(value) is tuple else value  # noqa: B905
        handed[record_id] = data
        if len(handed) > self._sweep_at:
            self._sweep()
        return data

    def page(self, ids: Sequence[int]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]] | None:
        """Return the shape and the values of the records ``ids``, each a tuple in the shape's
        order, or ``None`` when one of them is not held as a row of the shape.

        A query's page of records, decoded in C without a dict per record (the caller makes
        what it needs of the values); nothing is kept, unlike `get`.

        Raises:
            KeyError: an id is not a live record.
        """
        return self.decode_page(list(map(self._rows.__getitem__, ids)))

    def decode_page(self, rows: list[Row]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]] | None:
        """Return the shape and the values of live rows (see `page`), or ``None``."""
        if len(rows) >= QUIET_PAGE:
            # A tuple a row, none in a cycle: collections meanwhile would only walk them.
            with gc_paused():
                return self._decode_page(rows)
        return self._decode_page(rows)

    def _decode_page(self, rows: list[Row]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]] | None:
        # Among a million rows each is a cache miss away: a first loop that only reads their
        # lengths has many of those misses under way at once, where marshal's loop over them
        # would wait for each in turn (5 us less for a page of 100).
        _run(map(len, rows))
        if not self._odd:  # every row is marshal's tuple of the shape's values (see encode)
            return self._keys, list(map(_loads, cast("list[bytes]", rows)))
        if not all(type(row) is bytes for row in rows):
            return None  # a dict kept as it is
        values = list(map(_loads, cast("list[bytes]", rows)))
        if not all(type(value) is tuple for value in values):
            return None
        return self._keys, values

    def field_values(self, field: str, default: Any) -> Iterator[Any]:
        """Yield every record's value of ``field`` (``default`` if it lacks it), in the order of
        `rows`; a row of the shape gives its value by position, without a dict."""
        shape = self._shape
        rows = self._rows
        if not self._odd:  # in C
            if shape is None or field not in shape:
                return repeat(default, len(rows))
            packed = cast("Iterable[bytes]", rows.values())
            return map(itemgetter(shape.index(field)), map(_loads, packed))
        return (data.get(field, default) for data in _values_of_any(rows, self._keys))

    def peek(self, record_id: int) -> dict[str, Any] | None:
        """Return a record without keeping the dict made for it (for the state's own use)."""
        data = self._handed.get(record_id)
        if data is not None:
            return data
        row = self._rows.get(record_id)
        return None if row is None else _decode(row, self._shape)

    def _sweep(self) -> None:
        handed = self._handed
        count = sys.getrefcount
        for record_id in [i for i in handed if count(handed[i]) <= _IDLE]:
            del handed[record_id]
        self._sweep_at = max(_SWEEP_FROM, 2 * len(handed))

    def items(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield every record with its id, each in a new dict (none of them kept)."""
        return zip(self._rows.keys(), _values(self._rows, self._keys, self._odd))  # noqa: B905

    def values(self) -> Iterator[dict[str, Any]]:
        """Yield every record, each in a new dict (none of them kept)."""
        return _values(self._rows, self._keys, self._odd)

    def copy(self) -> Records:
        """Return a copy whose changes leave these records as they are (in C: rows are
        immutable, and the dicts handed out stay the same objects in both)."""
        twin = Records()
        twin._rows = self._rows.copy()
        twin._shape, twin._keys, twin._odd = self._shape, self._keys, self._odd
        twin._handed = self._handed.copy()
        twin._sweep_at = self._sweep_at
        return twin

    def clear(self) -> None:
        """Forget every record (the next one put sets the shape)."""
        self._rows.clear()
        self._handed.clear()
        self._shape, self._keys, self._odd = None, (), False

    def frozen(self) -> FrozenRecords:
        """Return a read-only copy of the records that later changes leave as it is."""
        return FrozenRecords(self._rows.copy(), self._keys, self._odd)

    def column(self, field: str) -> dict[int, Any]:
        """Return ``{record id: value}`` of ``field`` for the records that have it.

        A row of the shape gives its value by position, without building the record's dict.
        """
        shape = self._shape
        at = shape.index(field) if shape is not None and field in shape else -1
        rows = self._rows
        if not self._odd:  # in C
            if at < 0:
                return {}
            packed = cast("Iterable[bytes]", rows.values())
            values = map(itemgetter(at), map(_loads, packed))
            return dict(zip(rows.keys(), values))  # noqa: B905
        found: dict[int, Any] = {}
        loads = _loads
        for record_id, row in self._rows.items():
            value: Any
            if type(row) is bytes:
                value = loads(row)
                if type(value) is tuple:
                    if at >= 0:
                        found[record_id] = value[at]
                    continue
            else:
                value = row
            held = value.get(field, _MISSING)
            if held is not _MISSING:
                found[record_id] = held
        return found

    def lacking(self, wanted: frozenset[str]) -> list[tuple[int, dict[str, Any]]]:
        """Return the records that lack one of ``wanted`` (rows of the shape are decoded only
        when the shape lacks one)."""
        shape = self._shape
        shaped_lack = shape is not None and not wanted.issubset(shape)
        if not self._odd:
            return list(self.items()) if shaped_lack else []
        found: list[tuple[int, dict[str, Any]]] = []
        for record_id, row in self._rows.items():
            if type(row) is bytes and row[0] in _TUPLE_CODES:
                if shaped_lack:
                    found.append((record_id, _decode(row, shape)))
                continue
            data = _decode(row, shape)
            if not wanted.issubset(data):
                found.append((record_id, data))
        return found

    def forget_shape(self) -> None:
        """Let the next record put set the shape again. Only for a caller about to put again
        every record whose row is of the shape (see ``TableState.fill_missing``)."""
        self._shape, self._keys = None, ()


def _values(rows: Mapping[int, Row], keys: tuple[str, ...], odd: bool) -> Iterator[Any]:
    if not odd:
        # Every row is marshal's tuple of the shape's values: decoded in C, 40% faster.
        packed = cast("Iterable[bytes]", rows.values())
        return map(dict, map(zip, repeat(keys), map(_loads, packed)))
    return _values_of_any(rows, keys)


def _values_of_any(rows: Mapping[int, Row], keys: tuple[str, ...]) -> Iterator[Any]:
    loads = _loads
    for row in rows.values():
        if type(row) is bytes:
            value = loads(row)
            if type(value) is tuple:
                value = dict(zip(keys, value, strict=True))
            yield value
        else:
            yield row


class _Items(ItemsView[int, dict[str, Any]]):
    def __init__(self, view: RecordsView) -> None:
        super().__init__(view)
        self._records = view._records

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return self._records.items()


class _Values(ValuesView[dict[str, Any]]):
    def __init__(self, view: RecordsView) -> None:
        super().__init__(view)
        self._records = view._records

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._records.values()


class RecordsView(Mapping[int, dict[str, Any]]):
    """A read-only mapping of record id -> record over a table's :class:`Records`.

    Reading a record by id gives the same dict while it is unchanged and someone holds it;
    iterating over the values or items gives new dicts (a scan keeps none of them).
    """

    __slots__ = ("_get", "_records", "_rows")

    def __init__(self, records: Records) -> None:
        self._records = records
        # (Clearing the records clears this dict, it never replaces it.)
        self._rows = records.rows
        self._get = records.get

    def __getitem__(self, record_id: int) -> dict[str, Any]:
        data = self._get(record_id)
        if data is None:
            raise KeyError(record_id)
        return data

    def get(self, record_id: int, default: Any = None) -> Any:
        data = self._get(record_id)
        return default if data is None else data

    def page(self, ids: Sequence[int]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]] | None:
        """Return the shape and the values of the records ``ids`` (see `Records.page`)."""
        return self._records.page(ids)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def keys(self) -> KeysView[int]:
        return self._rows.keys()

    def items(self) -> ItemsView[int, dict[str, Any]]:
        return _Items(self)

    def values(self) -> ValuesView[dict[str, Any]]:
        return _Values(self)

    def copy(self) -> dict[int, dict[str, Any]]:
        """Return a dict of every record, each in a new dict (a read-only view's copy()).

        Decoding every record costs about 0.4 s a million records; a snapshot reads
        ``TableState.frozen_records()`` instead, which copies the rows only.
        """
        return dict(self._records.items())

    def __repr__(self) -> str:
        return f"<RecordsView of {len(self)} records>"


class FrozenRecords(Mapping[int, dict[str, Any]]):
    """A read-only copy of a table's records as they were, decoded as it is read.

    Made in C (a copy of the rows' dict: about 25 ms a million records); reading it from
    another thread is safe, since rows never change (a change replaces a row).
    """

    __slots__ = ("_keys", "_odd", "_rows")

    def __init__(self, rows: dict[int, Row], keys: tuple[str, ...], odd: bool) -> None:
        self._rows = rows
        self._keys = keys
        self._odd = odd

    def __getitem__(self, record_id: int) -> dict[str, Any]:
        return _decode(self._rows[record_id], self._keys)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def items(self) -> ItemsView[int, dict[str, Any]]:
        return _FrozenItems(self)

    def values(self) -> ValuesView[dict[str, Any]]:
        return _FrozenValues(self)


class _FrozenItems(ItemsView[int, dict[str, Any]]):
    def __init__(self, frozen: FrozenRecords) -> None:
        super().__init__(frozen)
        self._frozen = frozen

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        frozen = self._frozen
        return zip(frozen._rows.keys(), _values(frozen._rows, frozen._keys, frozen._odd))  # noqa: B905


class _FrozenValues(ValuesView[dict[str, Any]]):
    def __init__(self, frozen: FrozenRecords) -> None:
        super().__init__(frozen)
        self._frozen = frozen

    def __iter__(self) -> Iterator[dict[str, Any]]:
        frozen = self._frozen
        return _values(frozen._rows, frozen._keys, frozen._odd)
