"""Ordering query results (public API layer, beside ``query``: no I/O, no pydantic models).

`parse_order_by` turns ``order_by`` into ``(field, descending)`` pairs; `order_ids` sorts
record ids by them, from values the caller reads (``discobase._matching.sort_values`` reads
stored JSON values, ``Table.find`` the records' own for values only they know, such as
datetimes). Records of equal values keep ascending id order, the order of creation; ``None``
(and NaN) comes last in either direction.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Sequence
from itertools import compress, repeat
from operator import and_, eq, is_not, not_
from typing import Any

from discobase.errors import InvalidQuery

__all__ = ["order_ids", "parse_order_by"]

# A limit under this share of the ids is picked by a heap; over it, a sort is faster.
_PICK_SHARE = 16


def order_ids(
    ids: list[int],
    keys: Sequence[tuple[str, bool]],
    values: Callable[[str], Callable[[int], Any]],
    first: int | None = None,
) -> list[int]:
    """Sort ``ids`` by several fields; ``None`` comes last in either direction.

    Args:
        ids: record ids, ascending (the tie-break order).
        keys: ``(field, descending)`` pairs, most significant first.
        values: returns a reader of a field's comparable values, ``values(field)(record_id)``.
        first: how many of the ordered ids are wanted (all of them if ``None``): the most
            significant field then picks them without putting the rest in order.

    Raises:
        InvalidQuery: the values of a field cannot be compared with each other.
    """
    ordered = list(ids)
    if keys and keys[-1][0] == "id":
        # The ids come ascending: ordered by id (or by its reverse) with no value read.
        if keys[-1][1]:
            ordered.reverse()
        keys = keys[:-1]
    # Stable sorts from the least significant key up give the combined order.
    for depth, (field, descending) in enumerate(reversed(keys), 1):
        wanted = first if depth == len(keys) else None
        ordered = _order_by(ordered, field, values(field), descending, wanted)
    return ordered if first is None else ordered[:first]


def _order_by(
    ids: list[int],
    field: str,
    value_of: Callable[[int], Any],
    descending: bool,
    first: int | None,
) -> list[int]:
    # Each step is a C loop over the ids (a million of them, unindexed, take about 0.3 s).
    marks = list(map(value_of, ids))
    # None and NaN go last in either direction, in the order they came: a NaN compares with
    # no number (among them it would land anywhere), as a sorted index holds neither.
    valued = list(map(and_, map(eq, marks, marks), map(is_not, marks, repeat(None))))
    absent: list[int] = []
    if not all(valued):
        absent = list(compress(ids, map(not_, valued)))
        ids, marks = list(compress(ids, valued)), list(compress(marks, valued))
    positions = range(len(ids))
    try:
        if first is not None and first * _PICK_SHARE < len(ids):
            # A few of many (a limit): a heap picks them, stable as a sort is.
            pick = heapq.nlargest if descending else heapq.nsmallest
            order = pick(first, positions, key=marks.__getitem__)
        else:
            order = sorted(positions, key=marks.__getitem__, reverse=descending)
    except TypeError as exc:
        raise InvalidQuery(
            f"cannot order by {field!r}: its values do not compare ({exc}); a field "
            "holding naive and aware datetimes, say, orders once they are in one zone"
        ) from exc
    return [*map(ids.__getitem__, order), *absent]


def parse_order_by(
    order_by: str | Sequence[str] | None, known: Collection[str]
) -> list[tuple[str, bool]]:
    """Turn ``"name"``, ``"-age"`` or a sequence of them into ``(field, descending)`` pairs.

    The names after ``id`` are left out: ids are unique, so they never decide.

    Raises:
        InvalidQuery: a name is not a field of the table (nor ``id``), or is given twice; a
            set or a dict instead of a name or a list of them.
    """
    if order_by is None:
        return []
    if isinstance(order_by, set | frozenset | dict):
        # A set has no order, and a dict's values would be ignored ({"age": -1} is ascending).
        raise InvalidQuery(
            "order_by takes a field name or a list of them, most significant first "
            f'("-name" for descending), not {order_by!r}'
        )
    try:
        names = [order_by] if isinstance(order_by, str) else list(order_by)
    except TypeError:
        raise InvalidQuery(
            f"order_by takes a field name or a sequence of them, not {order_by!r}"
        ) from None
    keys: list[tuple[str, bool]] = []
    for name in names:
        # One '-' at most: "--age" is a misspelling, not a double negation to guess at.
        field = name[1:] if isinstance(name, str) and name.startswith("-") else name
        if not isinstance(field, str) or not field or field.startswith("-"):
            raise InvalidQuery(
                f"order_by takes field names, optionally prefixed with '-': {name!r}"
            )
        if field != "id" and field not in known:
            choices = ", ".join(["id", *sorted(known)])
            raise InvalidQuery(f"cannot order by {field!r}: no such field; it may be {choices}")
        deciding = all(seen != "id" for seen, _ in keys)  # the names after id never decide
        if deciding and any(field == seen for seen, _ in keys):
            raise InvalidQuery(f"order_by names {field!r} twice: {order_by!r}")
        keys.append((field, name.startswith("-")))
    fields = [field for field, _ in keys]
    # Ids are unique: the names after one never decide (checked all the same, above).
    return keys[: fields.index("id") + 1] if "id" in fields else keys
