"""Answer queries from a table's in-memory state (public API layer: no I/O, no pydantic models).

Everything here works on the JSON-mode dicts a table store holds, keyed by record id; turning
them into model instances is ``discobase._binding``'s job, and what a query returns (`Records`,
`Count`) is ``discobase.results``'. It must not know how the store got its records (Discord,
the gateway, snapshots) nor anything of asyncio.

A query is a conjunction of conditions: field equalities, and the tests operators compile to
(`Condition`: ranges, prefixes, one-of, not-equal, contains). Every condition an index can
answer is answered by it: an equality or a one-of by hash lookups, a range or a prefix on an
indexed field by its sorted index (``discobase.storage.sorted_index``); the smallest of those
id sets is the candidate list, and the remaining conditions are checked on each candidate.
Without such a condition, every record is a candidate (a scan). Results come in ascending id
order (the order records were created in) unless the caller orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from functools import partial
from itertools import compress
from operator import eq, itemgetter
from typing import Any, Protocol, cast

from discobase import _json
from discobase.errors import InvalidQuery

__all__ = [
    "MISSING",
    "Condition",
    "Contains",
    "NotEqual",
    "OneOf",
    "Range",
    "StoreView",
    "json_equal",
    "live_ids",
    "select_ids",
    "unordered",
]

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


class Condition:
    """A condition on one field other than equality, compiled from an operator.

    Attributes:
        field: the field (``id`` means the record's id).
        default: the JSON value a record lacking the field is read with, or `MISSING`.
        spelling: how the user wrote it, e.g. ``age=gt(18)`` (for error messages).
        live: whether `candidates` gives only live records' ids (the index is the store's
            own, kept with its records), so that they need no check against the records.
    """

    __slots__ = ("_spelling", "default", "field")

    live = False

    def __init__(self, field: str, default: Any, spelling: str | Callable[[], str]) -> None:
        self.field = field
        self.default = default
        # Written only if an error needs it (a str, or what makes one): a query that raises
        # nothing never formats the operator.
        self._spelling = spelling

    @property
    def spelling(self) -> str:
        """Return how the user wrote the condition, e.g. ``User.find(age=gt(18))``."""
        spelling = self._spelling
        if not isinstance(spelling, str):
            spelling = self._spelling = spelling()
        return spelling

    def match(self, value: Any) -> bool:
        """Tell whether a stored JSON value (or `MISSING`) satisfies the condition."""
        raise NotImplementedError

    def candidates(self, store: StoreView) -> Collection[int] | None:
        """Return the ids an index says may match (exactly those), or ``None`` to check each."""
        return None


class Range(Condition):
    """Values between two bounds (either may be ``None``: unbounded), compared by ``key``.

    ``key`` turns a stored JSON value into something that orders like the field's values (a
    datetime for an ISO string) or ``None`` for a value no range matches; the bounds are keys.
    A prefix is the range from the prefix to its successor, with ``prefix`` set.
    """

    __slots__ = ("high", "high_inclusive", "key", "low", "low_inclusive", "prefix", "sortable")

    # A sorted index is kept by the storage layer with the records it holds (every write
    # applied to both), so the ids of a range are live records.
    live = True

    def __init__(
        self,
        field: str,
        default: Any,
        spelling: str | Callable[[], str],
        *,
        key: Callable[[Any], Any],
        low: Any = None,
        low_inclusive: bool = True,
        high: Any = None,
        high_inclusive: bool = True,
        prefix: str | None = None,
        sortable: bool = True,
    ) -> None:
        super().__init__(field, default, spelling)
        self.key = key
        self.low, self.low_inclusive = low, low_inclusive
        self.high, self.high_inclusive = high, high_inclusive
        self.prefix = prefix
        # False when the field's keys need not compare with each other (an Any field): no
        # sorted index then.
        self.sortable = sortable

    def narrow(self, other: Range) -> None:
        """Keep only the values both ranges hold (``ge(18) & lt(65)``)."""
        if other.low is not None:
            self.narrow_low(other.low, other.low_inclusive)
        if other.high is not None:
            self.narrow_high(other.high, other.high_inclusive)

    def narrow_low(self, low: Any, inclusive: bool) -> None:
        """Keep only the values above ``low`` (or equal to it, if ``inclusive``)."""
        if self.low is None or low > self.low or (low == self.low and not inclusive):
            self.low, self.low_inclusive = low, inclusive

    def narrow_high(self, high: Any, inclusive: bool) -> None:
        """Keep only the values below ``high`` (or equal to it, if ``inclusive``)."""
        if self.high is None or high < self.high or (high == self.high and not inclusive):
            self.high, self.high_inclusive = high, inclusive

    def match(self, value: Any) -> bool:
        key = self.key(value)
        if key is None:
            return False
        try:
            if self.low is not None:
                if key < self.low or (key == self.low and not self.low_inclusive):
                    return False
            if self.high is not None:
                if key > self.high or (key == self.high and not self.high_inclusive):
                    return False
        except TypeError as exc:  # naive against aware datetimes, say
            raise InvalidQuery(f"{self.spelling}: {exc}") from None
        return self.prefix is None or key.startswith(self.prefix)

    def candidates(self, store: StoreView) -> Collection[int] | None:
        if not self.sortable:
            return None
        index = _sorted_index(store, self.field, self.key)
        if index is None:
            return None
        found: list[int] | None = index.range(
            self.low, self.low_inclusive, self.high, self.high_inclusive
        )
        if found is not None and self.prefix is not None and self.high is None:
            # An open-ended prefix range (no successor string): check the prefix itself.
            records = store.records()
            found = [i for i in found if self.match(records[i].get(self.field, self.default))]
        return found

    def page(self, store: StoreView) -> tuple[list[int], Any] | None:
        """Return the ids in the range, ascending, with their records' page as the sorted
        index holds them (``SortedIndex.range_page``), or ``None`` (ask `candidates`)."""
        if not self.sortable or (self.prefix is not None and self.high is None):
            return None
        page = getattr(_sorted_index(store, self.field, self.key), "range_page", None)
        bounds = (self.low, self.low_inclusive, self.high, self.high_inclusive)
        return None if page is None else cast("tuple[list[int], Any]", page(*bounds))

    def in_order(
        self,
        store: StoreView,
        count: int,
        descending: bool,
        ties_descending: bool,
        every: bool = False,
    ) -> list[int] | None:
        """Return the ids of the first ``count`` records in the range ordered by the field
        (``SortedIndex.in_order``; ``every``: the range holds every value and the query
        every record), or ``None`` (order the ids the query selects)."""
        if not self.sortable or (self.prefix is not None and self.high is None):
            return None
        in_order = getattr(_sorted_index(store, self.field, self.key), "in_order", None)
        if in_order is None:
            return None
        bounds = (self.low, self.low_inclusive, self.high, self.high_inclusive)
        found = in_order(*bounds, count, descending, ties_descending, every)
        return cast("list[int] | None", found)


def unordered(value: Any) -> Any:
    """Return a set field's stored list in one order, whatever order it was stored in.

    A set is stored as a list in the order it iterated when saved, which differs between
    sets of the same values built in another order, and for strings between processes
    (each process orders them by its own hash seed). Other values come back as they are.
    """
    if type(value) is list:
        return sorted(value, key=_json.dumps)
    return value


class OneOf(Condition):
    """Values equal to any of ``values`` (JSON-mode); ``sets``: the field is a set, whose
    lists are compared in any order (a set field's equality is its one_of of one value)."""

    __slots__ = ("_hashed", "_others", "_sets", "values")

    def __init__(
        self,
        field: str,
        default: Any,
        spelling: str | Callable[[], str],
        values: Sequence[Any],
        *,
        sets: bool = False,
    ) -> None:
        super().__init__(field, default, spelling)
        self.values = list(values)
        self._sets = sets
        # Scalars are looked up in a set: (is it a bool, value) keeps True apart from 1.
        self._hashed = {(type(v) is bool, v) for v in self.values if isinstance(v, _SCALARS)}
        self._others = [
            unordered(v) if sets else v for v in self.values if not isinstance(v, _SCALARS)
        ]

    def match(self, value: Any) -> bool:
        if value is MISSING:
            return False
        if isinstance(value, _SCALARS):
            return (type(value) is bool, value) in self._hashed
        if self._sets:
            value = unordered(value)
        return any(json_equal(value, other) for other in self._others)

    def candidates(self, store: StoreView) -> Collection[int] | None:
        found: set[int] = set()
        for value in self.values:
            ids = store.lookup(self.field, value) if isinstance(value, _SCALARS) else None
            if ids is None:
                return None
            found.update(ids)
        return found


class NotEqual(Condition):
    """Values other than ``value`` (JSON-mode); a record without the field matches nothing.
    ``sets``: the field is a set, whose lists are compared in any order."""

    __slots__ = ("_sets", "value")

    def __init__(
        self,
        field: str,
        default: Any,
        spelling: str | Callable[[], str],
        value: Any,
        *,
        sets: bool = False,
    ) -> None:
        super().__init__(field, default, spelling)
        self._sets = sets
        self.value = unordered(value) if sets else value

    def match(self, value: Any) -> bool:
        if value is MISSING:
            return False
        return not json_equal(unordered(value) if self._sets else value, self.value)


class Contains(Condition):
    """Lists holding ``value`` (JSON-mode), or, with ``substring``, strings holding it.

    ``substring=None`` (an ``Any`` field) matches either: a string holding a str ``value``,
    or a list holding ``value``.
    """

    __slots__ = ("substring", "value")

    def __init__(
        self,
        field: str,
        default: Any,
        spelling: str | Callable[[], str],
        value: Any,
        *,
        substring: bool | None,
    ) -> None:
        super().__init__(field, default, spelling)
        self.value = value
        self.substring = substring

    def match(self, value: Any) -> bool:
        if type(value) is str:
            return self.substring is not False and type(self.value) is str and self.value in value
        if self.substring or type(value) is not list:
            return False
        wanted = self.value
        if isinstance(wanted, _SCALARS):
            return any(json_equal(item, wanted) for item in value if item == wanted)
        return any(json_equal(item, wanted) for item in value)


def _sorted_index(store: StoreView, field: str, key: Callable[[Any], Any]) -> Any:
    """Return the store's sorted index of ``field`` (built on first use), or ``None``."""
    # The storage engine's TableStore keeps its TableState as ``state``: asked first, as a
    # missing attribute costs an exception inside getattr.
    state = getattr(store, "state", None)
    make = None if state is None else getattr(state, "sorted_index", None)
    if make is None:
        make = getattr(store, "sorted_index", None)
    if make is None:
        return None
    return make(field, key)


def select_ids(
    store: StoreView,
    conditions: Mapping[str, Any],
    defaults: Mapping[str, Any],
    *,
    within: Collection[int] | None = None,
    tests: Sequence[Condition] = (),
    records: Mapping[int, dict[str, Any]] | None = None,
) -> list[int]:
    """Return the ids of the records equal to ``conditions`` on every field, ascending.

    Args:
        store: the table's records and indexes.
        conditions: field name -> JSON-mode value.
        defaults: field name -> JSON-mode value a record lacking the field is read with
            (records written before the field was added), or `MISSING`.
        within: only these ids may match (e.g. a query on ``id``).
        tests: other conditions the records must also satisfy (compiled operators).
        records: ``store.records()``, when the caller has it already.

    Raises:
        InvalidQuery: a test's values do not compare (naive against aware datetimes).
    """
    if records is None:
        records = store.records()
    if tests:
        return _select_with_tests(store, records, conditions, defaults, within, tests)
    if within is None and len(conditions) == 1:
        # The most common query, one equality on an indexed field: no planning needed.
        ((field, value),) = conditions.items()
        ids = store.lookup(field, value) if isinstance(value, _SCALARS) else None
        if ids is not None:
            return live_ids(records, ids)
    if within is None and not conditions:
        return sorted(records)  # every record: their ids alone, none of them read
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
        if not scanned:
            # Indexes answered every condition: no record is read.
            live = records.keys()
            return sorted(i for i in smallest if i in live and all(i in ids for ids in others))
        pool = (
            (i, records[i]) for i in smallest if i in records and all(i in ids for ids in others)
        )
    else:
        pool = records.items()
    if len(scanned) == 1:
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


def live_ids(records: Mapping[int, dict[str, Any]], ids: Collection[int]) -> list[int]:
    """Return the ids an index gave that are live records, ascending."""
    if len(ids) == 1:
        for record_id in ids:
            return [record_id] if record_id in records else []
    # The membership of a mapping's keys view is its dict's (in C) for the stores' mappings.
    return sorted(filter(records.keys().__contains__, ids))


def _select_with_tests(
    store: StoreView,
    records: Mapping[int, dict[str, Any]],
    conditions: Mapping[str, Any],
    defaults: Mapping[str, Any],
    within: Collection[int] | None,
    tests: Sequence[Condition],
) -> list[int]:
    if not conditions and within is None and len(tests) == 1 and tests[0].live:
        # One range on an indexed field, the common case: its index gives the live ids.
        only = tests[0].candidates(store)
        if only is not None:
            found = list(only)
            found.sort()
            return found
    answered: list[Collection[int]] = [] if within is None else [within]
    scanned: list[tuple[str, Any]] = []
    for field, value in conditions.items():
        ids = store.lookup(field, value) if isinstance(value, _SCALARS) else None
        if ids is None:
            scanned.append((field, value))
        else:
            answered.append(ids)
    checked: list[Condition] = []
    live_sets: list[Collection[int]] = []  # ids that are all live records (Condition.live)
    for test in tests:
        ids = test.candidates(store)
        if ids is None:
            checked.append(test)
        else:
            answered.append(ids)
            if test.live:
                live_sets.append(ids)
    pool: Iterable[tuple[int, dict[str, Any]]]
    if answered:
        answered.sort(key=len)
        smallest = answered[0]
        # Membership in a list is a scan: the others become sets (unless tiny).
        others = [
            ids if len(ids) < 8 or not isinstance(ids, list) else set(ids) for ids in answered[1:]
        ]
        # What matches is among the smallest set: its ids need checking against the records
        # only if they may not be live (a lookup's, or ids the caller named). At a million
        # records each check is a cache miss: a fifth of what a range of 100 costs.
        live: Collection[int] | None = None
        if not any(smallest is ids for ids in live_sets):
            live = records.keys()
        if not scanned and not checked:
            # Indexes answered every condition (a range on an indexed field, say): no record
            # is read, which keeps such a query to microseconds.
            if others:
                found = [
                    i
                    for i in smallest
                    if all(i in o for o in others) and (live is None or i in live)
                ]
            elif live is not None:
                return live_ids(records, smallest)
            else:
                found = list(smallest)
            found.sort()
            return found
        pool = (
            (i, records[i])
            for i in smallest
            if (live is None or i in live) and all(i in ids for ids in others)
        )
    elif len(checked) == 1 and not scanned:
        test = checked[0]
        column = store.column(test.field)
        if column is not None:
            match = test.match
            found = [i for i, value in column.items() if match(value)]
            if len(column) != len(records) and test.match(test.default):
                found.extend(i for i in records if i not in column)
            found.sort()
            return found
        pool = records.items()
    else:
        pool = records.items()
    matches: list[int] = []
    append = matches.append
    for i, data in pool:
        if scanned and not _matches(data, scanned, defaults):
            continue
        for test in checked:
            if not test.match(data.get(test.field, test.default)):
                break
        else:
            append(i)
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
        return [i for i in found if json_equal(records[i].get(field, default), value)]
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
        if stored is MISSING or not json_equal(stored, value):
            return False
    return True


def json_equal(a: Any, b: Any) -> bool:
    """Tell whether two JSON-mode values are equal as JSON values (``True`` is not ``1``)."""
    # Python says True == 1 and 1 == 1.0; JSON values of one field share a type, so only
    # bool against number needs care (a field typed ``int | bool`` or ``Any``).
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)
