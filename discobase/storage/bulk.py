"""Putting a snapshot's records into a table's state (storage layer: pure; knows nothing of
messages or I/O).

Loading a snapshot is most of what opening a large table costs, and it runs once per record:
a million times at a million records. :func:`put_new` puts the records new to the state
straight in, without what the general apply does for each (versions, the journal, columns,
sorted indexes, watchers): for a state without columns, sorted indexes, fills or watchers
(see ``TableState.load_snapshot``), at the state's floor or in a run, with no version entry of
their own.

(Putting a piece column by column, in C, was 15 ms per 100,000 records faster, but left the
C allocator's heap larger in about half the runs: 2.5 MB more resident at 100,000 records.)
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from discobase.storage.codec import Row
from discobase.storage.hash_index import ABSENT, HashIndex, held_key
from discobase.storage.rows import Records

__all__ = ["put_new"]

_dumps = marshal.dumps


def put_new(
    records: Records,
    indexed: Iterable[tuple[str, HashIndex, Any]],
    versions: Mapping[int, int],
    floor: int,
    rows: list[Row],
    *,
    fresh: bool,
    apply: Callable[[list[Row]], int],
) -> int:
    """Put a snapshot's ``rows`` at the ``floor`` one by one: records new to the state straight
    in (``fresh``: all are, whatever their version: a run's), the others through ``apply``.

    Args:
        records: the state's records.
        indexed: its hash indexes, as ``(field, index, default)``.
        versions: its version entries (a record with one is not new).
        floor: its floor.
        rows: the rows, checked.
        fresh: every row is a put of a new record.
        apply: the state's general apply, for a row at the floor (no version entry).

    Returns:
        How many rows changed the state.
    """
    held = records.rows
    keyed = [(field, index, index.map, default) for field, index, default in indexed]
    if records.shape is None:
        first = next((data for _, _, data in rows if data is not None), None)
        if first is not None:
            records.encode(first)  # the first record sets the shape
    shape = records.shape
    dumps = _dumps
    changed = 0
    ids: list[int] = []
    packed: list[bytes] = []
    odd: list[tuple[int, dict[str, Any]]] = []
    for row in rows:
        at, record_id, data = row
        if (
            data is None
            or not fresh
            and (at != floor or record_id in held or record_id in versions)
        ):
            changed += apply([row])
            continue
        if tuple(data) == shape:
            try:
                # marshal leaves its output in a malloc block, 16 bytes a row more than the
                # small-object allocator's (see Records.encode): each row is copied as it
                # comes, which frees the block for the next row to use.
                packed.append(memoryview(dumps(tuple(data.values()))).tobytes())
                ids.append(record_id)
            except ValueError:  # a value marshal cannot hold
                odd.append((record_id, data))
        else:
            odd.append((record_id, data))  # (Records.encode notes a row of another shape)
        for field, index, keys, default in keyed:
            value = data.get(field, default)
            if value is not ABSENT:
                try:
                    key = value.encode() if type(value) is str else held_key(value)
                except UnicodeEncodeError:
                    key = held_key(value)
                if key in keys:
                    index.add(key, record_id)
                else:
                    keys[key] = record_id
    held.update(zip(ids, packed, strict=True))
    for record_id, data in odd:
        held[record_id] = records.encode(data)
    return changed + len(ids) + len(odd)
