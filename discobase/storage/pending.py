"""Writes sent and not yet acknowledged, and the unique values they claim (storage layer: pure;
knows nothing of messages or I/O).

Unique indexes are enforced where a writer can still say no: before it sends. A group of
operations is checked against the live records (the table's hash indexes) and against the
writes still pending, whose unique values are claimed from :meth:`PendingWrites.hold` until
:meth:`PendingWrites.release`, so two local saves of one value cannot both go out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from discobase.errors import UniqueViolation
from discobase.storage.codec import Op, Put
from discobase.storage.hash_index import index_key

__all__ = ["LiveRecords", "PendingWrites"]

_MISSING: Any = object()


class LiveRecords(Protocol):
    """What the pending writes read of a table's live records (a ``TableState``)."""

    @property
    def table(self) -> str:
        """The table's name, for error messages."""
        ...

    def get(self, record_id: int) -> dict[str, Any] | None:
        """Return a live record's JSON-mode data, or ``None``."""
        ...

    def lookup(self, field: str, value: Any) -> Collection[int] | None:
        """Return the ids whose indexed ``field`` equals ``value``."""
        ...


class PendingWrites:
    """The pending writes of one table and their claims on unique values.

    Args:
        live: the table's live records and their indexes.
        defaults: JSON-mode defaults of fields that older records may lack.
        unique: the fields with a unique index.
    """

    def __init__(self, live: LiveRecords, defaults: Mapping[str, Any], unique: list[str]) -> None:
        self._live = live
        self._defaults = defaults
        self._unique = unique
        # Record id -> stack of (token, data or None for a delete).
        self._pending: dict[int, list[tuple[int, dict[str, Any] | None]]] = {}
        # Field -> key -> {record id: count}.
        self._claims: dict[str, dict[Any, dict[int, int]]] = {name: {} for name in unique}
        self._next_token = 0

    def __len__(self) -> int:
        return len(self._pending)

    def _value(self, data: Mapping[str, Any], field: str) -> Any:
        value = data.get(field, _MISSING)
        if value is _MISSING:
            return self._defaults.get(field, _MISSING)
        return value

    def _effective(
        self, record_id: int, local: Mapping[int, dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        if record_id in local:
            return local[record_id]
        stack = self._pending.get(record_id)
        if stack:
            return stack[-1][1]
        return self._live.get(record_id)

    def check(self, ops: Sequence[Op]) -> None:
        """Refuse a group that would duplicate a unique value of live or pending records.

        Raises:
            UniqueViolation: naming the field and the value.
        """
        if not self._unique:
            return
        lookup = self._live.lookup
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
                live = lookup(field, value) or ()
                claimed = self._claims[field].get(key)
                mine = local_claims.get((field, key))
                if live or claimed or mine:
                    holders = {*live, *(claimed or ()), *(mine or ())}
                    holders.discard(op.id)
                    self._refuse_taken(field, value, key, holders, local, op.id)
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
        record_id: int,
    ) -> None:
        table = self._live.table
        for holder in holders:
            other = self._effective(holder, local)
            if other is not None and index_key(self._value(other, field)) == key:
                if holder in local:
                    # Both records get the value from this group (an update_many setting one
                    # value on several): the holder does not hold it yet, so name them both.
                    message = (
                        f"{table}.{field} is unique and this write gives {value!r} to two "
                        f"records, {holder} and {record_id}; give each record its own value"
                    )
                else:
                    message = (
                        f"{table}.{field} is unique and {value!r} is already taken by record "
                        f"{holder}"
                    )
                raise UniqueViolation(message, table=table, field=field, value=value)

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
