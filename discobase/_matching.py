"""Which records a query's fields select (public API layer, beside ``table``: the read path
from keyword arguments to record ids; no I/O).

`Table.find`, `Table.find_unique` and `Table.count` (``discobase.table``) ask here which
records match their fields. One equality goes straight to the field's index: `found_by_index`
answers ``find(name="Peter")``, the most common query, with its records in as few calls as it
can take, and `matching_ids` looks one equality up before planning anything. Operators
(``gt(18)``, ...) are compiled against the fields' types by ``discobase._conditions``, and the
rest is ``discobase.query``'s `select_ids`. This module reads the store only through
`TableStoreLike` and builds records only through the binding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from discobase import _binding
from discobase._binding import TableStoreLike, as_id
from discobase.operators import Operator
from discobase.query import MISSING, Range, live_ids, select_ids
from discobase.results import Records

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = ["count_matching", "first_in_order", "found_by_index", "matching_ids", "sort_values"]


def found_by_index(
    binding: _binding.TableBinding[Any], store: TableStoreLike, fields: Mapping[str, Any]
) -> Records[Any] | None:
    """Answer ``find(field=value)`` on an indexed field, or return ``None`` to plan the query.

    The most common query (``find(name="Peter")``), in as few calls as it can take: a value
    of the type the field holds as it is (a str, an int) is its own JSON form, and one index
    lookup answers it. It is what find() costs, so every call counts.
    """
    ((name, value),) = fields.items()
    kind = type(value)
    if (kind is not str and kind is not int) or binding.as_is.get(name) is not kind:
        return _found_in_range(binding, store, name, value) if isinstance(value, Operator) else None
    ids = store.lookup(name, value)
    if ids is None or len(ids) > 1:
        return None
    for record_id in ids:
        try:
            data = store.records()[record_id]
        except KeyError:  # not a live record (as select_ids checks): not found
            break
        record = binding.load_one(record_id, data)
        if record is not None:
            return Records.of(binding.model, (record,))
    return Records.of(binding.model)


# The operators that compile to one range (or prefix) of a field's values.
_RANGES = frozenset(("gt", "ge", "lt", "le", "startswith"))


def _found_in_range(
    binding: _binding.TableBinding[Any], store: TableStoreLike, name: str, operator: Operator[Any]
) -> Records[Any] | None:
    """Answer ``find(field=<a range or a prefix>)`` from the field's sorted index, or return
    ``None`` to plan the query.

    The index holds its records' rows in key order (``storage.sorted_index``): the records of
    the range are read from there, not looked up by id among every record.
    """
    found_range = _range_of(binding, store, name, operator)
    found = None if found_range is None else found_range.page(store)
    if found is None:
        return None
    ids, page = found
    records = store.records()
    if binding.readable(ids, records) is not ids:
        return None  # a record known to be unreadable: planned, which leaves it out
    return Records.of(binding.model, binding.load_page(ids, _Paged(records, ids, page)))


def first_in_order(
    binding: _binding.TableBinding[Any],
    store: TableStoreLike,
    fields: Mapping[str, Any],
    keys: Sequence[tuple[str, bool]],
    count: int,
) -> list[int] | None:
    """Return the ids of the first ``count`` records of ``find(field=<a range>,
    order_by=field)`` or ``find(order_by=field)`` (or ``"-field"``, perhaps then ``"id"`` or
    ``"-id"``), read in order from the field's sorted index; or ``None`` to select the ids
    and order them.

    The top ten of a million records, or of a range of half a million, without reading the
    others.
    """
    if len(fields) > 1 or not 1 <= len(keys) <= 2 or (len(keys) == 2 and keys[1][0] != "id"):
        return None
    (name, descending), ties_descending = keys[0], len(keys) == 2 and keys[1][1]
    from discobase._conditions import whole_range

    if not fields:
        # Every record: those without a value (None, or no key) come last, after what the
        # index holds; past those, ordering them is the planned query's job.
        every = whole_range(binding, name)
        ids = None
        if every is not None:
            ids = every.in_order(store, count, descending, ties_descending, every=True)
        return None if ids is None or len(ids) < min(count, store.count()) else ids
    ((field, operator),) = fields.items()
    if field != name or not isinstance(operator, Operator):
        return None
    found_range = _range_of(binding, store, name, operator)
    if found_range is None:
        return None
    return found_range.in_order(store, count, descending, ties_descending)


def _range_of(
    binding: _binding.TableBinding[Any], store: TableStoreLike, name: str, operator: Operator[Any]
) -> Range | None:
    """Return the one range (or prefix) ``operator`` compiles to on field ``name``, or
    ``None`` (another operator, a range and a prefix together, not a field)."""
    if name not in binding.fields or not all(part in _RANGES for part, _ in operator.parts):
        return None
    from discobase._conditions import compile_conditions

    tests, _ = compile_conditions(binding, store, {name: operator})
    if len(tests) != 1 or not isinstance(tests[0], Range):
        return None
    return tests[0]


class _Paged(Mapping[int, dict[str, Any]]):
    """A table's records, with the page of one list of ids decoded already (its `page`)."""

    __slots__ = ("_ids", "_page", "_records")

    def __init__(self, records: Mapping[int, dict[str, Any]], ids: list[int], page: Any) -> None:
        self._records = records
        self._ids = ids
        self._page = page

    def page(self, ids: Sequence[int]) -> Any:
        if ids is self._ids:
            return self._page
        page = getattr(self._records, "page", None)
        return None if page is None else page(ids)

    def __getitem__(self, record_id: int) -> dict[str, Any]:
        return self._records[record_id]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[int]:
        return iter(self._records)


def count_matching(
    binding: _binding.TableBinding[Any], store: TableStoreLike, fields: Mapping[str, Any]
) -> int:
    """Return how many records match every field: ``len(matching_ids(...))``, but a range
    or a prefix on an indexed field is counted from its index without ordering its ids."""
    if len(fields) == 1:
        ((name, value),) = fields.items()
        if (
            isinstance(value, Operator)
            and name in binding.fields
            and all(part in _RANGES for part, _ in value.parts)
        ):
            from discobase._conditions import compile_conditions

            tests, _ = compile_conditions(binding, store, {name: value})
            if len(tests) == 1 and tests[0].live:
                ids = tests[0].candidates(store)  # (exactly the live records that match)
                if ids is not None:
                    return len(ids)
            return len(select_ids(store, {}, binding.defaults, tests=tests))
    return len(matching_ids(binding, store, fields))


def matching_ids(
    binding: _binding.TableBinding[Any],
    store: TableStoreLike,
    fields: Mapping[str, Any],
    records: Mapping[int, dict[str, Any]] | None = None,
) -> list[int]:
    """Return the ids of the records matching every field (a value or an operator), ascending.

    Values are turned into their stored JSON form first; ``id`` is a record's id unless the
    model declares a field of that name. ``records`` is ``store.records()``, when the caller
    has it already.
    """
    if len(fields) == 1:
        # The most common query, one equality (find(name="Peter")): straight to the index,
        # as select_ids would go (a few calls fewer: this is most of what find() costs).
        ((name, value),) = fields.items()
        if not isinstance(value, Operator) and (name != "id" or "id" in binding.fields):
            value = binding.query_value(name, value)
            kind = type(value)
            ids = store.lookup(name, value) if kind is str or kind is int else None
            if ids is None:
                if kind is list:
                    return _select_lists(binding, store, {name: value}, [], None, records)
                return select_ids(store, {name: value}, binding.defaults, records=records)
            if records is None:
                records = store.records()
            if len(ids) == 1:
                for record_id in ids:
                    return [record_id] if record_id in records else []
            return live_ids(records, ids)
    conditions = dict(fields)
    within: Collection[int] | None = None
    tests: list[Any] = []
    if any(isinstance(value, Operator) for value in conditions.values()):
        # gt(18), one_of(...), ...: compiled against the fields' types (discobase._conditions).
        from discobase._conditions import compile_conditions

        tests, within = compile_conditions(binding, store, conditions)
    if "id" in conditions and "id" not in binding.fields:
        wanted = as_id(conditions.pop("id"))
        ids = () if wanted is None else (wanted,)
        within = ids if within is None else [i for i in ids if i in within]
    json_conditions = {name: binding.query_value(name, value) for name, value in conditions.items()}
    return _select_lists(binding, store, json_conditions, tests, within, records)


def _select_lists(
    binding: _binding.TableBinding[Any],
    store: TableStoreLike,
    conditions: dict[str, Any],
    tests: list[Any],
    within: Collection[int] | None,
    records: Mapping[int, dict[str, Any]] | None,
) -> list[int]:
    """``select_ids``, a set field's equality tested in any order (`query.unordered`)."""
    if any(type(value) is list for value in conditions.values()):
        from discobase._conditions import set_equalities

        tests = [*tests, *set_equalities(binding, conditions)]
    return select_ids(
        store, conditions, binding.defaults, within=within, tests=tests, records=records
    )


def sort_values(
    binding: _binding.TableBinding[Any],
    store: TableStoreLike,
    records: Mapping[int, dict[str, Any]],
    ids: Sequence[int],
    fields: Collection[str],
) -> Callable[[str], Callable[[int], Any]]:
    """Return what ``order_ids`` orders ``ids`` by: readers of each record's raw JSON value of
    a field.

    For most of the table, a field's values come from the store's column of it (kept once
    asked for twice, as a scan's); for fewer records, from one decode of their page of
    compact rows (a table state's, whose mapping has ``page``). The records a column or a
    page lacks the field of are read one at a time (``binding.sort_value``: a default, a
    former name).
    """
    wanted = [field for field in fields if field != "id"]  # an id is its own value
    readers: dict[str, Callable[[int], Any]] = {}
    if wanted and len(ids) * 4 >= len(records):
        for field in wanted:
            column = store.column(field)
            if column is not None:
                # A column holds the records that have the field (every one, most often).
                whole = len(column) == len(records)
                readers[field] = (
                    column.__getitem__ if whole else _held_or(column, binding, records, field)
                )
    page = getattr(records, "page", None)
    rest = [field for field in wanted if field not in readers]
    shaped = page(ids) if page is not None and ids and rest else None
    if shaped is not None:
        shape, values = shaped
        for field in rest:
            if field in shape:
                read = map(itemgetter(shape.index(field)), values)
                readers[field] = dict(zip(ids, read, strict=True)).__getitem__

    def reader(field: str) -> Callable[[int], Any]:
        read = readers.get(field)
        if read is not None:
            return read
        return lambda record_id: binding.sort_value(records, record_id, field)

    return reader


def _held_or(
    held: Mapping[int, Any],
    binding: _binding.TableBinding[Any],
    records: Mapping[int, dict[str, Any]],
    field: str,
) -> Callable[[int], Any]:
    """Return a reader of ``field`` from ``held``, or record by record where it lacks one."""

    def value_of(record_id: int) -> Any:
        value = held.get(record_id, MISSING)
        return binding.sort_value(records, record_id, field) if value is MISSING else value

    return value_of
