"""A sorted view of one indexed field, for range and prefix queries (storage layer: pure).

Theory
------
A hash index answers ``field == value``; a range (``age >= 18 and < 65``) or a prefix needs
the values in order. A sorted list kept exact under every write would cost a memmove of the
whole list per insert (milliseconds at a million records), so this index has two parts:

- the *base*: every record's key and id, in key order (two parallel lists), built by one sort
  on the first range query over the field;
- the *changes* since: the ids whose base entry may be stale, and the current keys of those
  records in a small sorted list kept with ``insort``.

A query bisects both parts and drops the stale base entries: O(log n + matches). A range
ordered by the field itself, with a limit, reads only that many entries from the right end of
each part (``in_order``): the top ten of half a million in microseconds. When the
changes outgrow a fraction of the base, the base is dropped and made again by the next query,
so a write costs O(log n) amortised. Nothing is built for a field nobody asks a range of.

What a key is belongs to the caller: ``key(json_value)`` returns a value that orders like the
field's values (a datetime for an ISO string, ...) or ``None`` for a value no range matches
(``None``, a missing field, NaN). Keys of one field must compare with each other; if they do
not (naive and aware datetimes in one field), the index says so and queries scan.

The base's ids, and its keys when they are all 64-bit integers, are held in arrays rather than
lists: 8 bytes each and no object per key (an int field's million keys are 28 MB less), and a
range's ids come out as new ints side by side in memory, which sort faster than the scattered
ones a list holds (at a million records, every id a list holds is a cache miss away): a range
of 100 among a million selects in about 3 µs less. Making the arrays adds 0.15 s to the sort
of a million (1 s).

Built from a table's compact rows (``rows.py``), the base also holds each entry's row, so a
query that returns the records of a range reads them from the base, in key order, instead of
looking each id up among all the rows (at a million records, each lookup is three cache misses
away: a fifth of what a range of 100 returned costs). The rows of a record changed since are
read from the live rows, as its key is from the changes; the state invalidates the index when
it changes rows any other way (``TableState.fill_missing``, ``adopt``, ``clear``). The list
costs 8 bytes a record, and keeps the rows replaced since the sort alive until the next one.
"""

from __future__ import annotations

import typing
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from itertools import compress
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from discobase.storage.rows import Records, Row

__all__ = ["SortedIndex"]

_ABSENT = object()
_JSON_TYPES = frozenset((bool, int, float, str, list, dict))
# Changes kept beside the base before it is made again: at least this many, or this fraction
# of the base (a rebuild then costs about as much as the writes that led to it).
_MIN_CHANGES = 4096
_CHANGE_FRACTION = 16


class SortedIndex:
    """The values of one field in order, with the changes made since they were sorted.

    Args:
        field: the field.
        default: the JSON value a record lacking the field is read with (or a sentinel).
        key: turns a stored JSON value into its sort key, or ``None`` to leave it out.
    """

    __slots__ = (
        "_changed",
        "_delta_ids",
        "_delta_keys",
        "_delta_of",
        "_ids",
        "_keys",
        "_rows",
        "_source",
        "_unkeyed",
        "built",
        "default",
        "failed",
        "field",
        "key",
    )

    def __init__(self, field: str, default: Any, key: Callable[[Any], Any]) -> None:
        self.field = field
        self.default = default
        self.key = key
        self.built = False
        # The keys did not sort (values that do not compare): queries scan until invalidated.
        self.failed = False
        self._keys: MutableSequence[Any] = []
        self._ids: MutableSequence[int] = []
        # The base's rows, and the records they are rows of (None: built from plain dicts).
        self._rows: list[Row] | None = None
        self._source: Records | None = None
        self._changed: set[int] = set()
        self._delta_keys: list[Any] = []
        self._delta_ids: list[int] = []
        self._delta_of: dict[int, Any] = {}
        # The records whose value has no key although it is a value (see _has_value).
        self._unkeyed: set[int] = set()

    def invalidate(self) -> None:
        """Forget the sorted values; the next query sorts them again."""
        self.built = False
        self.failed = False
        self._keys, self._ids = [], []
        self._rows, self._source = None, None
        self._changed = set()
        self._delta_keys, self._delta_ids = [], []
        self._delta_of = {}
        self._unkeyed = set()

    def build(
        self, records: Mapping[int, Mapping[str, Any]], source: Records | None = None
    ) -> bool:
        """Sort the keys of ``records``; return False if they do not compare.

        ``source``: the compact records ``records`` reads (a table state's): the base then
        keeps each entry's row too (see `range_page`), and reads the keys from the rows.
        """
        if self.built:
            return True
        if self.failed:
            return False
        field, default, key = self.field, self.default, self.key
        keys: list[Any] = []
        ids: list[int] = []
        add_key, add_id = keys.append, ids.append
        rows: list[Row] | None = None
        if source is not None:
            # Each step one C loop over every record (a Python loop doing them all in one
            # pass took a third of the sort at a million records).
            held = source.rows
            keys = list(map(key, source.field_values(field, default)))
            ids, rows = list(held), list(held.values())
            if None in keys:  # records with no key: left out (those holding a value noted)
                kept = [k is not None for k in keys]
                left = [not k for k in kept]
                values = compress(source.field_values(field, default), left)
                for record_id, value in zip(compress(ids, left), values):  # noqa: B905
                    if _has_value(value):
                        self._unkeyed.add(record_id)
                keys = list(compress(keys, kept))
                ids, rows = list(compress(ids, kept)), list(compress(rows, kept))
        else:
            for record_id, data in records.items():
                value = data.get(field, default)
                keyed = key(value)
                if keyed is not None:
                    add_key(keyed)
                    add_id(record_id)
                elif _has_value(value):
                    self._unkeyed.add(record_id)
        try:
            order = sorted(range(len(keys)), key=keys.__getitem__)
        except TypeError:
            self.failed = True
            return False
        # One getter for the three: at a million records, each is half a map's time (the
        # reads are a cache miss each, but no method call each).
        pick = _picker(order)
        self._keys = _in_order(pick(keys))
        self._ids = _in_order(pick(ids))
        if rows is not None:
            self._rows = list(pick(rows))
            self._source = source
        self.built = True
        return True

    def touch(self, record_id: int, data: Mapping[str, Any] | None) -> None:
        """Take a record's new data (``None``: deleted) into account."""
        if not self.built:
            return
        delta_keys, delta_ids = self._delta_keys, self._delta_ids
        old = self._delta_of.pop(record_id, _ABSENT)
        if old is not _ABSENT:
            at = bisect_left(delta_keys, old)
            while delta_ids[at] != record_id:
                at += 1
            del delta_keys[at], delta_ids[at]
        self._changed.add(record_id)
        self._unkeyed.discard(record_id)
        if data is not None:
            stored = data.get(self.field, self.default)
            value = self.key(stored)
            if value is None and _has_value(stored):
                self._unkeyed.add(record_id)
            if value is not None:
                try:
                    at = bisect_right(delta_keys, value)
                except TypeError:
                    self.invalidate()
                    return
                delta_keys.insert(at, value)
                delta_ids.insert(at, record_id)
                self._delta_of[record_id] = value
        if len(self._changed) > max(_MIN_CHANGES, len(self._keys) // _CHANGE_FRACTION):
            self.invalidate()

    def range(
        self, low: Any, low_inclusive: bool, high: Any, high_inclusive: bool
    ) -> list[int] | None:
        """Return the ids whose key lies between ``low`` and ``high`` (``None``: unbounded).

        The ids come in key order, base before changes; ``None`` if a bound does not compare
        with the keys (the caller scans then).
        """
        try:
            found = self._slice(self._keys, self._ids, low, low_inclusive, high, high_inclusive)
            if self._changed:
                changed = self._changed
                found = [i for i in found if i not in changed]
                if self._delta_keys:
                    found += self._slice(
                        self._delta_keys,
                        self._delta_ids,
                        low,
                        low_inclusive,
                        high,
                        high_inclusive,
                    )
        except TypeError:
            return None
        return found

    def range_page(
        self, low: Any, low_inclusive: bool, high: Any, high_inclusive: bool
    ) -> tuple[list[int], tuple[tuple[str, ...], list[tuple[Any, ...]]]] | None:
        """Return the ids whose key lies between ``low`` and ``high``, ascending, and their
        records' page (``Records.page``: the shape, and each record's values).

        ``None`` when the base holds no rows (built from plain dicts), a bound does not
        compare with the keys, or a record is not held as a row of the shape (the caller
        then reads the records by id).
        """
        rows, source = self._rows, self._source
        if rows is None or source is None:
            return None
        try:
            start, end = _bounds(self._keys, low, low_inclusive, high, high_inclusive)
            ids = _ids_of(self._ids, start, end)
            found = rows[start:end]
            if self._changed:
                stale = list(map(self._changed.__contains__, ids))
                if any(stale):
                    kept = [not s for s in stale]
                    ids, found = list(compress(ids, kept)), list(compress(found, kept))
                if self._delta_keys:
                    at, stop = _bounds(self._delta_keys, low, low_inclusive, high, high_inclusive)
                    changed = self._delta_ids[at:stop]
                    ids += changed
                    found += map(source.rows.__getitem__, changed)
        except TypeError:
            return None
        page = source.decode_page(found)
        if page is None:
            return None
        # Ascending ids, as every query gives them; each record's values go with its id.
        order = sorted(range(len(ids)), key=ids.__getitem__)
        shape, values = page
        return list(map(ids.__getitem__, order)), (shape, list(map(values.__getitem__, order)))

    def in_order(
        self,
        low: Any,
        low_inclusive: bool,
        high: Any,
        high_inclusive: bool,
        count: int,
        descending: bool,
        ties_descending: bool = False,
        every: bool = False,
    ) -> list[int] | None:
        """Return the ids of the first ``count`` records between ``low`` and ``high`` in key
        order (from the highest key if ``descending``), the records of one key in id order
        (descending if ``ties_descending``), as ordering by the field gives them; ``None`` if
        a bound or a key does not compare with the keys.

        ``every``: the query orders every record, not a range: ``None`` also when a record
        holds a value with no key (``"0.5"`` in a number field, written by an older version
        whose field was a string), which its reader may order among the keyed ones.

        Reads about ``count`` entries from each end of the base and the changes, whatever
        the size of the range (plus every other entry of the last key taken).
        """
        try:
            start, end = _bounds(self._keys, low, low_inclusive, high, high_inclusive)
            at, stop = _bounds(self._delta_keys, low, low_inclusive, high, high_inclusive)
        except TypeError:
            return None
        if every and self._unkeyed:
            return None
        if count <= 0:
            return []
        taken = _first(self._keys, self._ids, start, end, count, descending, self._changed)
        taken += _first(self._delta_keys, self._delta_ids, at, stop, count, descending, set())
        taken.sort(key=itemgetter(1), reverse=ties_descending)
        try:
            taken.sort(key=itemgetter(0), reverse=descending)  # stable: ties stay in id order
        except TypeError:  # a change's key does not compare with the base's
            return None
        return [record_id for _, record_id in taken[:count]]

    @staticmethod
    def _slice(
        keys: MutableSequence[Any],
        ids: MutableSequence[int],
        low: Any,
        low_inclusive: bool,
        high: Any,
        high_inclusive: bool,
    ) -> list[int]:
        start, end = _bounds(keys, low, low_inclusive, high, high_inclusive)
        return _ids_of(ids, start, end)


def _bounds(
    keys: MutableSequence[Any], low: Any, low_inclusive: bool, high: Any, high_inclusive: bool
) -> tuple[int, int]:
    start = 0
    if low is not None:
        start = bisect_left(keys, low) if low_inclusive else bisect_right(keys, low)
    end = len(keys)
    if high is not None:
        end = bisect_right(keys, high) if high_inclusive else bisect_left(keys, high)
    return start, end


def _has_value(value: Any) -> bool:
    # A value a record holds, not None, NaN or the sentinel of a field it lacks: one the
    # index has no key for is ordered by the query's reader, perhaps among the keyed ones.
    return value is not None and type(value) in _JSON_TYPES and value == value


def _first(
    keys: MutableSequence[Any],
    ids: MutableSequence[int],
    start: int,
    end: int,
    count: int,
    descending: bool,
    stale: set[int],
) -> list[tuple[Any, int]]:
    # The first ``count`` (key, id) entries of keys[start:end] from one end, leaving the stale
    # out, and every other entry of the last key taken: ties are ordered by id, not by where
    # the sort left them, so the caller needs the whole last tie.
    taken: list[tuple[Any, int]] = []
    positions = range(end - 1, start - 1, -1) if descending else range(start, end)
    for position in positions:
        record_id = ids[position]
        if record_id not in stale:
            taken.append((keys[position], record_id))
            if len(taken) == count:
                break
    else:
        return taken  # the whole range
    last = taken[-1][0]
    if descending:
        rest = range(bisect_left(keys, last, start, end), position)
    else:
        rest = range(position + 1, bisect_right(keys, last, start, end))
    taken += ((keys[p], ids[p]) for p in rest if ids[p] not in stale)
    return taken


def _ids_of(ids: MutableSequence[int], start: int, end: int) -> list[int]:
    if isinstance(ids, array):
        return ids[start:end].tolist()
    return typing.cast("list[int]", ids[start:end])


def _picker(order: list[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """Return what takes a sequence's items in ``order`` (a permutation of its positions)."""
    if len(order) < 2:  # itemgetter() needs an item, and of one it returns it bare
        return lambda values: [values[at] for at in order]
    return itemgetter(*order)


def _in_order(ordered: Sequence[Any]) -> MutableSequence[Any]:
    """Return values already in order as an array of 64-bit integers if they all are such,
    or as a list.

    (An object with ``__index__`` goes in as its int, a bool as 0 or 1: it compares as that
    int does, which is all a key is used for.)
    """
    if ordered and type(ordered[0]) is int:
        try:
            # From a sequence: from an iterator, array() appends item by item, five times
            # slower.
            return array("q", ordered)
        except (TypeError, OverflowError):  # a float, a str, ...; or beyond 64 bits
            pass
    return list(ordered)
