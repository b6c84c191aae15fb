"""What applying the log changed, for change feeds (storage layer: pure; knows nothing of
models, queues or the gateway).

A table's state tells whoever watches it which records an apply changed, after the apply:
``Applied(position, record id, old data, new data)`` per record, in the order the state
applied them. Without a watcher the state's apply path is untouched (one attribute test
per apply call, not per record); with one, `watched_apply` notes each touched record's
version and data before the call and compares after it, so:

- an entry applied twice (live, then read again by a gap check) changes nothing the second
  time and is reported once;
- an entry older than what a record holds is skipped by the state and reported by nobody;
- several operations of one entry on one record are reported as one change.

A large entry applied to a fork (see ``TableState.fork``) reports its changes when the fork
is adopted, never for a fork that is thrown away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from discobase.storage.state import TableState

__all__ = ["Applied", "watch_state", "watched_apply"]


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


Row = tuple[int, int, dict[str, Any] | None]


def watch_state(state: TableState, sink: Callable[[list[Applied]], None] | None) -> None:
    """Send what every later apply of ``state`` changes to ``sink`` (``None``: stop)."""
    # The state's own slot, set from here so that TableState needs no code of its own for it.
    state._watch = sink


def watched_apply(state: TableState, rows: Iterable[Row], at_floor: bool) -> int:
    """Apply ``rows`` to a watched ``state`` and send its watcher what changed.

    Returns:
        What the state's own apply returns (how many operations changed the state).
    """
    sink = state._watch
    assert sink is not None
    records = state._records
    version = state.version
    before: dict[int, tuple[int | None, dict[str, Any] | None]] = {}

    def noting() -> Iterator[Row]:
        # Each row is looked at just before the state applies it: the rows before it are
        # applied already, which is what "before" must mean for a record changed twice.
        for row in rows:
            record_id = row[1]
            if record_id not in before:
                before[record_id] = (version(record_id), records.get(record_id))
            yield row

    state._watch = None
    try:
        changed = state._apply_rows(noting(), at_floor=at_floor)
    finally:
        state._watch = sink
    found: list[Applied] = []
    for record_id, (was, old) in before.items():
        new = records.get(record_id)
        if new is None and old is None:
            continue  # a delete of a record this process never held
        now = version(record_id)
        if now == was and (new is old or new == old):
            continue  # applied before (the same entry read again): nothing changed
        found.append(Applied(now or 0, record_id, old, new))
    if found:
        sink(found)
    return changed
