"""Writes over a query's records: ``delete_many`` and ``update_many`` (public API layer).

``Records.delete_many()`` and ``Records.update_many()`` land here. The records are grouped by
table and each group is one operation list given to the table store's ``submit``: one entry,
applied by every reader all or nothing (as ``save_many`` and ``db.batch()`` are). Nothing is
checked halfway: every record and every value is checked before the first group is submitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from discobase._binding import TableBinding, binding_of, id_of, is_record
from discobase._writes import check_loop, deleting
from discobase.errors import InvalidQuery, RecordStateError, UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["delete_records", "update_records"]

T = TypeVar("T")


def _groups(records: Sequence[Any], call: str) -> list[tuple[TableBinding[Any], list[BaseModel]]]:
    """Group saved records by table, each record once, checking every one first."""
    groups: dict[type, tuple[TableBinding[Any], list[BaseModel]]] = {}
    seen: set[int] = set()
    for record in records:
        if not is_record(record):
            raise UsageError(f"{call}() works on records of tables, not on {record!r}")
        kind = type(record)
        group = groups.get(kind)
        if group is None:
            binding = binding_of(kind)
            binding.require_store()
            check_loop(binding, call)
            group = groups[kind] = (binding, [])
        record_id = id_of(record)
        if record_id is None:
            raise RecordStateError(
                f"a {group[0].name} record given to {call}() is not saved; only records "
                "saved or found by a query can be written"
            )
        if id(record) in seen:
            continue
        seen.add(id(record))
        group[1].append(record)
    return list(groups.values())


async def _gather(futures: list[asyncio.Future[None]]) -> None:
    await asyncio.gather(*futures)


def _put(binding: TableBinding[Any], record_id: int, record: BaseModel) -> Any:
    """Return the put that updates a record, keeping the stored fields its class lacks."""
    from discobase.schema import keep_unknown
    from discobase.storage import Put

    stored = binding.require_store().get(record_id)
    data = binding.storable(record)
    return Put(record_id, keep_unknown(data, stored, binding.known_names, binding.renames_now))


def _done(result: Any) -> asyncio.Task[Any]:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise UsageError(
            "delete_many() and update_many() return a task to await: call them from a "
            "coroutine running in the database's event loop"
        ) from None

    async def finished() -> Any:
        return result

    return loop.create_task(finished())


def delete_records(records: Sequence[T]) -> asyncio.Task[int]:
    """Delete ``records``, one atomic batch per table; the task gives how many."""
    from discobase.storage import Delete

    groups = _groups(records, "delete_many")
    if not groups:
        task: asyncio.Task[int] = _done(0)
        return task
    futures: list[asyncio.Future[None]] = []
    total = 0
    for binding, group in groups:
        ids = sorted({id_of(r) or 0 for r in group})
        store = binding.require_store()
        future = store.submit([Delete(i) for i in ids])
        deleting(binding, ids, future)
        future.add_done_callback(partial(_forget, [(r, id_of(r)) for r in group]))
        futures.append(future)
        total += len(ids)
    first = groups[0][0]
    what = f"delete_many of {total} records"
    return first.database._track(_joined(futures), what, total)


def _forget(group: list[tuple[BaseModel, int | None]], done: asyncio.Future[None]) -> None:
    # As delete() does: a record saved anew meanwhile keeps its new id.
    if done.cancelled() or done.exception() is not None:
        return
    for record, record_id in group:
        private = record.__pydantic_private__
        if private is not None and private.get("_id") == record_id:
            private["_id"] = None


def _joined(futures: list[asyncio.Future[None]]) -> asyncio.Future[None]:
    if len(futures) == 1:
        return futures[0]
    return asyncio.ensure_future(_gather(futures))


def _check_names(binding: TableBinding[Any], changes: dict[str, Any]) -> None:
    unknown = sorted(set(changes) - set(binding.fields))
    if unknown:
        known = ", ".join(sorted(binding.fields)) or "(none)"
        raise InvalidQuery(
            f"update_many() cannot set {unknown[0]!r}: {binding.model.__name__} has no "
            f"such field; its fields are: {known}"
        )


def update_records(records: Sequence[T], changes: dict[str, Any]) -> asyncio.Task[list[T]]:
    """Set ``changes`` on ``records`` and write them, one atomic batch per table."""

    groups = _groups(records, "update_many")
    if not groups:
        # Nothing matched: a misspelt name is still an error, not silence until data matches.
        table = getattr(records, "table", None)
        if table is not None:
            _check_names(binding_of(table), changes)
        task: asyncio.Task[list[T]] = _done(list(records))
        return task
    # Every value is validated on copies first, so that a refused one changes nothing.
    planned: list[tuple[TableBinding[Any], list[tuple[BaseModel, BaseModel]]]] = []
    for binding, group in groups:
        _check_names(binding, changes)
        gone = [i for i in map(id_of, group) if i in binding.deleting]
        if gone:
            raise RecordStateError(
                f"update_many() got {binding.name} records that are being deleted (ids "
                f"{', '.join(map(str, gone[:5]))}): await the deletion first; nothing was "
                "written"
            )
        pairs: list[tuple[BaseModel, BaseModel]] = []
        for record in group:
            changed = record.model_copy()
            for name, value in changes.items():
                setattr(changed, name, value)  # validated as an assignment is
            pairs.append((record, changed))
        planned.append((binding, pairs))
    operations = [
        (binding, [_put(binding, id_of(record) or 0, new) for record, new in pairs])
        for binding, pairs in planned
    ]
    futures: list[asyncio.Future[None]] = []
    for binding, ops in operations:
        futures.append(binding.require_store().submit(ops))
    for _, pairs in planned:
        for record, new in pairs:
            record.__dict__.update(new.__dict__)
            record.__pydantic_fields_set__.update(changes)
    first = planned[0][0]
    total = sum(len(pairs) for _, pairs in planned)
    result = [record for _, pairs in planned for record, _ in pairs]
    what = f"update_many of {total} records"
    return first.database._track(_joined(futures), what, result)
