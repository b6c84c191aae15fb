"""Rewrite a table to fit a changed class: ``await db.migrate(Model, transform=...)``
(public API layer: drives the storage engine through its public calls; no I/O of its own).

A change the catalog refuses (a field removed that others require, a type narrowed or
changed, a field added without a default, an index removed) is made by rewriting every
record: the table is opened without checking its stored schema, each stored record is
handed to the user's function as a JSON-mode dict and validated by the new class, and
every record is written again as one atomic batch (readers see all of them rewritten or
none). Only then does the catalog record the new schema, exactly as the class declares it.
A failure before the batch is written (the function raises, a record does not validate,
a unique index would hold a value twice, the write is refused) leaves the table and its
schema as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from discobase import _json
from discobase._logging import log
from discobase.errors import MigrationFailed, NotConnected, SchemaMismatch, UsageError

if TYPE_CHECKING:
    from discobase.storage import Delete, Put, StorageEngine, TableSpec
    from discobase.storage.changes import Applied
    from discobase.table import TableBinding

__all__ = ["MigrationProgress", "Transform", "migrate_table", "migrating", "spec_of"]

#: A migration's function: a stored record (JSON-mode dict, without its id) -> the record
#: to write (a dict the new class validates), or ``None`` to delete it.
Transform = Callable[[dict[str, Any]], dict[str, Any] | None]


# Tables a migration has open for itself: its rewrite lets other tasks run, and a
# build_tables() among them must not hand the migration's store to the table's class.
_MIGRATING: set[TableBinding] = set()


def migrating(binding: TableBinding) -> bool:
    """Say whether ``binding``'s table is being migrated (the migration opens it after)."""
    return binding in _MIGRATING


def spec_of(binding: TableBinding) -> TableSpec:
    """Return what the catalog is told of a table's class."""
    from discobase.storage import TableSpec

    return TableSpec(
        name=binding.name,
        schema=binding.schema(),
        fields=binding.has_default(),
        indexes=binding.indexes,
        renames=binding.renames,
    )


async def migrate_table(
    engine: StorageEngine, binding: TableBinding, transform: Transform | None
) -> int:
    """Rewrite ``binding``'s table with ``transform`` and record its class's schema.

    Returns:
        How many records the table holds afterwards.

    Raises:
        MigrationFailed: the function raised or returned something that is not a dict, a
            record did not fit the class, or the batch could not be written (nothing was
            written and nothing recorded, except as the message says).
        UniqueConflict: the rewritten records would hold a unique value twice.
    """
    if binding in _MIGRATING:
        # Each would close the store the other rewrites: both would fail, the table unopened.
        raise UsageError(f"table {binding.name!r} is being migrated already; await that call")
    if engine.open_batch_check() is not None:
        raise UsageError(
            "db.migrate() was called inside `async with db.batch()`: its one atomic write "
            "would be held until the block ends, which waits for the migration; migrate "
            "outside the block"
        )
    # Everything is rewritten under the class's own names: no rename is needed afterwards.
    spec = spec_of(binding)
    spec = type(spec)(spec.name, spec.schema, spec.fields, spec.indexes, {})
    was_open = binding.store is not None
    if was_open:
        binding.store = None
    _MIGRATING.add(binding)
    try:
        return await _rewrite(engine, binding, transform, spec, was_open)
    finally:
        _MIGRATING.discard(binding)


async def _rewrite(
    engine: StorageEngine,
    binding: TableBinding,
    transform: Transform | None,
    spec: TableSpec,
    was_open: bool,
) -> int:
    from discobase.storage import Delete, Put
    from discobase.storage.catalog import table_entry_body
    from discobase.storage.evolution import refuse_duplicates

    name = binding.name
    await engine.forget_table(name)
    store = await engine.open_table(spec, replace=True)
    meanwhile = _Meanwhile(store)
    try:
        planned: dict[int, Put | Delete] = {}
        rewritten: dict[int, dict[str, Any]] = {}

        def plan(record_id: int, stored: dict[str, Any]) -> None:
            before: dict[str, Any] = _json.loads(_json.dumps(stored))  # the function's own copy
            after = _apply(name, record_id, before, transform)
            if after is None:
                planned[record_id] = Delete(record_id)
                rewritten.pop(record_id, None)
                return
            try:
                record = binding._validate(after)
            except Exception as exc:  # noqa: BLE001 - a validator may raise anything
                raise MigrationFailed(
                    f"migrating table {name!r}: record {record_id} does not fit "
                    f"{binding.model.__name__} after the transform: {_reason(exc)}; nothing "
                    "was written",
                    table=name,
                    record_id=record_id,
                    reason=_reason(exc),
                ) from None
            data = rewritten[record_id] = binding.storable(record)
            planned[record_id] = Put(record_id, data)

        every = list(store.records().items())
        progress = MigrationProgress(name, len(every))
        for at, (record_id, stored) in enumerate(every):
            if not at % _PROGRESS_STEP:
                progress.show(at)
                # A million records take seconds: the gateway's heartbeats and the program's
                # other tasks run meanwhile.
                await asyncio.sleep(0)
            plan(record_id, stored)
        # What other programs changed meanwhile is rewritten as it is now: an update is not
        # undone, a deleted record not brought back, a new record not left in the old shape.
        # Nothing is awaited from here to the submit.
        for record_id in sorted(meanwhile.take()):
            current = store.get(record_id)
            if current is None:
                planned.pop(record_id, None)
                rewritten.pop(record_id, None)
            else:
                plan(record_id, current)
        unique = [field for field, is_unique in spec.indexes.items() if is_unique]
        if unique:
            refuse_duplicates(name, rewritten, unique)
        if planned:
            progress.writing(len(planned))
            try:
                await store.submit(list(planned.values()))
            except Exception as exc:
                raise MigrationFailed(
                    f"migrating table {name!r}: the rewritten records could not be written "
                    f"({exc}); the batch is atomic, so none was, and the schema is unchanged",
                    table=name,
                    record_id=None,
                    reason=str(exc),
                ) from exc
            meanwhile.report_overwritten(name, planned)
        try:
            await engine.post_catalog("table", table_entry_body(spec, store.channel_id))
        except Exception as exc:
            raise MigrationFailed(
                f"migrating table {name!r}: every record was rewritten, but the catalog could "
                f"not record the new schema ({exc}); call db.migrate() again without a "
                "transform to record it",
                table=name,
                record_id=None,
                reason=str(exc),
            ) from exc
    except BaseException:
        meanwhile.close()
        await engine.forget_table(name)
        if was_open:  # the table was usable before: it stays so
            with contextlib.suppress(SchemaMismatch, NotConnected):  # (closed meanwhile)
                binding.store = await engine.open_table(spec_of(binding))
        raise
    meanwhile.close()
    count = store.count()
    await engine.forget_table(name)
    with contextlib.suppress(NotConnected):  # closed meanwhile: the next login opens it
        opened = await engine.open_table(spec_of(binding))
        binding.store = opened
        count = opened.count()
    return count


class _Meanwhile:
    """What other programs change in a table while a migration rewrites it.

    The table's state tells it every change it applies (``TableState.watch``; nobody else
    watches a table while it is migrated). Changes before the batch is sent are `take`n, to
    be rewritten as they are then. Changes that land while the batch is being written and
    come before it in the table's log were overwritten by it (an update undone, a deleted
    record back, in the new shape): `report_overwritten` names them at WARNING.
    """

    def __init__(self, store: Any) -> None:
        from discobase.storage.state import TableState

        state = getattr(store, "state", None)
        self._state = state if isinstance(state, TableState) else None
        self._changed: set[int] = set()
        self._sent: list[Applied] | None = None
        if self._state is not None:
            self._state.watch(self._seen)

    def _seen(self, applied: list[Applied]) -> None:
        if self._sent is None:
            self._changed.update(change.record_id for change in applied)
        else:
            self._sent.extend(applied)

    def take(self) -> set[int]:
        """Return the ids of the records changed so far; later changes are the batch's."""
        changed, self._changed, self._sent = self._changed, set(), []
        return changed

    def report_overwritten(self, table: str, planned: Mapping[int, Put | Delete]) -> None:
        """Name the records another program changed just before the batch, once written."""
        seen = self._sent or []
        ours = [change.position for change in seen if _is_planned(change, planned)]
        if not ours:
            return
        batch = min(ours)
        overwritten = sorted(
            {
                change.record_id
                for change in seen
                if change.position < batch and not _is_planned(change, planned)
            }
        )
        if overwritten:
            shown = ", ".join(map(str, overwritten[:20]))
            more = f" and {len(overwritten) - 20} more" if len(overwritten) > 20 else ""
            log().warning(
                "migrating table %r: another program changed %s while the rewritten batch was "
                "being written, just before it: the batch overwrote those changes (records "
                "%s%s); stop the programs that write a table before migrating it",
                table,
                "1 record" if len(overwritten) == 1 else f"{len(overwritten)} records",
                shown,
                more,
            )

    def close(self) -> None:
        """Stop listening (the table is reopened after a migration, watchers and all)."""
        if self._state is not None:
            self._state.watch(None)


def _is_planned(change: Applied, planned: Mapping[int, Put | Delete]) -> bool:
    # Whether a change is the batch's own: what the batch wrote for that record.
    op = planned.get(change.record_id)
    if op is None:
        return False
    data = getattr(op, "data", None)
    return change.new is None if data is None else change.new == data


# Records rewritten between two looks at the clock; seconds between two progress lines.
_PROGRESS_STEP = 4096
_PROGRESS_EVERY = 2.0


class MigrationProgress:
    """INFO lines on the ``discobase`` logger while a large table is rewritten: a million
    records take tens of seconds, and a silent migration looks hung.

    Args:
        table: the table's name.
        total: how many records it holds.
        clock: seconds, monotonic (``time.monotonic``; tests pass their own).
    """

    def __init__(self, table: str, total: int, clock: Callable[[], float] | None = None) -> None:
        import time

        self._clock = clock or time.monotonic
        self._table = table
        self._total = total
        self._next = self._clock() + _PROGRESS_EVERY

    def show(self, done: int) -> None:
        """Say how many records are rewritten, if the last line is old enough."""
        if self._clock() >= self._next:
            self._next = self._clock() + _PROGRESS_EVERY
            log().info(
                "migrating table %r: %d of %d records rewritten", self._table, done, self._total
            )

    def writing(self, count: int) -> None:
        """Say that the rewritten records are being written (for a large table)."""
        if self._total >= _PROGRESS_STEP:
            log().info("migrating table %r: writing %d records as one batch", self._table, count)


def _apply(
    table: str, record_id: int, before: dict[str, Any], transform: Transform | None
) -> dict[str, Any] | None:
    if transform is None:
        return before
    try:
        after = transform(before)
    except Exception as exc:  # noqa: BLE001 - the user's function may raise anything
        raise MigrationFailed(
            f"migrating table {table!r}: the transform raised on record {record_id} "
            f"({type(exc).__name__}: {exc}); nothing was written",
            table=table,
            record_id=record_id,
            reason=f"{type(exc).__name__}: {exc}",
        ) from exc
    if after is not None and not isinstance(after, dict):
        raise MigrationFailed(
            f"migrating table {table!r}: the transform returned {type(after).__name__} for "
            f"record {record_id}; it must return a dict (or None to delete the record); "
            "nothing was written",
            table=table,
            record_id=record_id,
            reason=f"returned {type(after).__name__}",
        )
    return after


def _reason(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return f"{type(exc).__name__}: {exc}"
