"""Answer queries from a table's in-memory state (public API layer: no I/O, no pydantic models).

Everything here works on the JSON-mode dicts a table store holds, keyed by record id; turning
them into model instances is :mod:`discobase.table`'s job. It must not know how the store got
its records (Discord, the gateway, snapshots) nor anything of asyncio beyond being awaitable.

A query is a conjunction of field equalities. Every condition whose field has a hash index is
answered by a lookup; the smallest of those id sets is the candidate list, and the remaining
conditions are checked on each candidate. Without an indexed condition, every record is a
candidate (a scan). Results come in ascending id order (the order records were created in)
unless the caller orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Iterable, Mapping, Sequence
from functools import partial
from itertools import compress
from operator import eq, itemgetter
from typing import Any, Protocol, Self, TypeVar

from discobase.errors import InvalidQuery

__all__ = [
    "MISSING",
    "Count",
    "Records",
    "StoreView",
    "order_ids",
    "parse_order_by",
    "select_ids",
]

T = TypeVar("T")

#: Marks a field a stored record does not carry and whose default cannot be computed.
MISSING: Any = object()

# JSON values an index can hold as a key: lists and objects are unhashable and always scanned.
_SCALARS = (str, int, float, bool, type(None))


class StoreView(Protocol):
    """The read side of a table store that queries need (the storage contract's subset)."""

    def records(self) -> Mapping[int, dict[str, Any]]:
        """Return the live records, JSON-mode dicts keyed by id."""
        ...

    def lookup(self, field: str, value: Any) -> Collection[int] | None:
        """Return the ids whose ``field`` equals ``value``, or ``None`` if not indexed."""
        ...

    def column(self, field: str) -> Mapping[int, Any] | None:
        """Return ``{id: stored value}`` of ``field`` for the live records that have it, or
        ``None`` to have the records scanned instead."""
        ...


class Records(list[T]):
    """The records a query found: a list that may also be awaited.

    The records are in memory, so the answer is ready at once; awaiting it returns the list
    itself. Both ``for u in User.find(...)`` and ``await User.find(...)`` therefore work.
    """

    def __await__(self) -> Generator[Any, None, Self]:
        return self
        yield  # pragma: no cover  (makes this a generator: awaiting finishes at once)


class Count(int):
    """A record count: an ``int`` that may also be awaited (``await User.count()``)."""

    def __await__(self) -> Generator[Any, None, int]:
        return int(self)
        yield  # pragma: no cover


def select_ids(
    store: StoreView,
    conditions: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    within: Collection[int] | None = None,
) -> list[int]:
    """Return the ids of the records equal to ``conditions`` on every field, ascending.

    Args:
        store: the table's records and indexes.
        conditions: field name -> JSON-mode value.
        defaults: field name -> JSON-mode value a record lacking the field is read with
            (records written before the field was added), or :data:`MISSING`.
        within: only these ids may match (e.g. a query on ``id``).
    """
    records = store.records()
    if within is None and len(conditions) == 1:
        # The most common query, one equality on an indexed field: no planning needed.
        ((field, value),) = conditions.items()
        ids = store.lookup(field, value) if isinstance(value, _SCALARS) else None
        if ids is not None:
            return sorted(i for i in ids if i in records)
    looked_up: list[Collection[int]] = [] if within is None else [within]
    scanned: list[tuple[str, Any]] = []
    for field, value in conditions.items():
        ids = store.lookup(field, value) if isinstance(value, _SCALARS) else None
        if ids is None:
            scanned.append((field, value))
        else:
            looked_up.append(ids)
    pool: Iterable[tuple[int, dict[str, Any]]]
    if looked_up:
        looked_up.sort(key=len)
        smallest, others = looked_up[0], looked_up[1:]
        pool = (
            (i, records[i]) for i in smallest if i in records and all(i in ids for ids in others)
        )
    else:
        pool = records.items()
    if not scanned:
        matches = [i for i, _ in pool]
    elif len(scanned) == 1:
        field, value = scanned[0]
        default = defaults.get(field, MISSING)
        column = None if looked_up else store.column(field)
        if column is not None:
            matches = _scan_column(records, column, field, value, default)
        else:
            matches = _scan_pool(records, pool, field, value, default, full=not looked_up)
    else:
        matches = [i for i, data in pool if _matches(data, scanned, defaults)]
    matches.sort()
    return matches


def _scan_column(
    records: Mapping[int, dict[str, Any]],
    column: Mapping[int, Any],
    field: str,
    value: Any,
    default: Any,
) -> list[int]:
    # A full scan over the field's column, in C: a dense array of values instead of a dict
    # lookup in every record. Most scans look for something rare, so first ask whether any
    # value is equal at all (cheaper still than collecting the equal ones).
    values = column.values()
    found = (
        list(compress(column.keys(), map(partial(eq, value), values))) if value in values else []
    )
    if len(column) != len(records) and default is not MISSING and default == value:
        # Records written before the field existed are read with its default.
        found.extend(i for i in records if i not in column)
    return _strict(records, found, field, value, default)


def _scan_pool(
    records: Mapping[int, dict[str, Any]],
    pool: Iterable[tuple[int, dict[str, Any]]],
    field: str,
    value: Any,
    default: Any,
    *,
    full: bool,
) -> list[int]:
    found: list[int] | None = None
    if full:
        # A full scan runs in C when every record has the field: twice as fast as the
        # comprehension below, which handles the records that lack it.
        try:
            equal = map(partial(eq, value), map(itemgetter(field), records.values()))
            found = list(compress(records.keys(), equal))
        except KeyError:
            pool = records.items()
    if found is None:
        found = [i for i, data in pool if data.get(field, default) == value]
    return _strict(records, found, field, value, default)


def _strict(
    records: Mapping[int, dict[str, Any]], found: list[int], field: str, value: Any, default: Any
) -> list[int]:
    if isinstance(value, (bool, int, float)) and found:
        # == let True match 1 and 1.0 match True; recheck the (few) matches strictly.
        return [i for i in found if _json_equal(records[i].get(field, default), value)]
    return found


def _matches(
    data: Mapping[str, Any],
    scanned: Sequence[tuple[str, Any]],
    defaults: Mapping[str, Any],
) -> bool:
    for field, value in scanned:
        stored = data.get(field, MISSING)
        if stored is MISSING:
            stored = defaults.get(field, MISSING)
        if stored is MISSING or not _json_equal(stored, value):
            return False
    return True


def _json_equal(a: Any, b: Any) -> bool:
    # Python says True == 1 and 1 == 1.0; JSON values of one field share a type, so only
    # bool against number needs care (a field typed ``int | bool`` or ``Any``).
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def order_ids(
    ids: list[int],
    keys: Sequence[tuple[str, bool]],
    value_of: Callable[[int, str], Any],
) -> list[int]:
    """Sort ``ids`` by several fields; ``None`` comes last in either direction.

    Args:
        ids: record ids, ascending (the tie-break order).
        keys: ``(field, descending)`` pairs, most significant first.
        value_of: returns the comparable value of a record's field.

    Raises:
        InvalidQuery: the values of a field cannot be compared with each other.
    """
    ordered = list(ids)
    # Stable sorts from the least significant key up give the combined order.
    for field, descending in reversed(keys):

        def key(
            record_id: int, field: str = field, descending: bool = descending
        ) -> tuple[bool, Any]:
            value = value_of(record_id, field)
            if value is None:
                # The flag alone places it; 0 keeps two Nones from being compared.
                return not descending, 0
            return descending, value

        try:
            ordered.sort(key=key, reverse=descending)
        except TypeError as exc:
            raise InvalidQuery(f"cannot order by {field!r}: its values do not compare") from exc
    return ordered


def parse_order_by(
    order_by: str | Sequence[str] | None, known: Collection[str]
) -> list[tuple[str, bool]]:
    """Turn ``"name"``, ``"-age"`` or a sequence of them into ``(field, descending)`` pairs.

    Raises:
        InvalidQuery: a name is not a field of the table (nor ``id``).
    """
    if order_by is None:
        return []
    names = [order_by] if isinstance(order_by, str) else list(order_by)
    keys: list[tuple[str, bool]] = []
    for name in names:
        if not isinstance(name, str) or not name.lstrip("-"):
            raise InvalidQuery(
                f"order_by takes field names, optionally prefixed with '-': {name!r}"
            )
        field = name.lstrip("-")
        if field != "id" and field not in known:
            raise InvalidQuery(f"cannot order by {field!r}: no such field")
        keys.append((field, name.startswith("-")))
    return keys
