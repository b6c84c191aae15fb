"""What applying the log changed, for change feeds (storage layer: pure; knows nothing of
models, queues or the gateway).

A table's state tells whoever watches it which records an apply changed, after the apply:
``Applied(position, record id, old data, new data)`` per record, in the order the state
applied them. Without a watcher the state's apply path is untouched (one attribute test
per apply call, not per record); with one, the state hands its plain apply to
`watched_apply`, which notes each touched record's version and data before the call and
compares after it, so:

- an entry applied twice (live, then read again by a gap check) changes nothing the second
  time and is reported once;
- an entry older than what a record holds is skipped by the state and reported by nobody;
- several operations of one entry on one record are reported as one change.

A large entry applied to a fork (see ``TableState.fork``) reports its changes when the fork
is adopted, never for a fork that is thrown away.

This module is handed the parts of the state it uses (its plain apply, its record and version
lookups): it imports nothing of the state, which imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from discobase.storage.codec import Row

__all__ = ["Applied", "watched_apply"]


class Applied(NamedTuple):
    """One record changed by an apply.

    Attributes:
        position: the message id of the entry that made the change (the record's version
            after it; for a repair entry, the deleted entry it stands for).
        record_id: the record.
        old: its JSON-mode data before, ``None`` if this process did not hold it.
        new: its JSON-mode data after, ``None`` once deleted.
    """

    position: int
    record_id: int
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def watched_apply(
    rows: Iterable[Row],
    *,
    apply: Callable[[Iterable[Row]], int],
    get: Callable[[int], dict[str, Any] | None],
    version: Callable[[int], int | None],
    sink: Callable[[list[Applied]], None],
) -> int:
    """Apply ``rows`` with the state's plain ``apply`` and send ``sink`` what changed.

    Args:
        rows: ``(version, record id, data or None)`` rows.
        apply: the state's apply without watchers; returns how many operations changed it.
        get: a record's JSON-mode data, or ``None``.
        version: a record's version, or ``None``.
        sink: the state's watcher.

    Returns:
        What ``apply`` returns.
    """
    before: dict[int, tuple[int | None, dict[str, Any] | None]] = {}

    def noting() -> Iterator[Row]:
        # Each row is looked at just before the state applies it: the rows before it are
        # applied already, which is what "before" must mean for a record changed twice.
        for row in rows:
            record_id = row[1]
            if record_id not in before:
                before[record_id] = (version(record_id), get(record_id))
            yield row

    changed = apply(noting())
    found: list[Applied] = []
    for record_id, (was, old) in before.items():
        new = get(record_id)
        if new is None and old is None:
            continue  # a delete of a record this process never held
        now = version(record_id)
        if now == was and (new is old or new == old):
            continue  # applied before (the same entry read again): nothing changed
        found.append(Applied(now or 0, record_id, old, new))
    if found:
        sink(found)
    return changed
