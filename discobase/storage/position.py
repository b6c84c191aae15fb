"""How far a table's log has been read, and which entries were applied (storage layer: pure;
no I/O, no asyncio).

Gateway dispatches are best effort: Discord may send an event zero, one or several times,
in any order across channels. So a process never takes the newest entry it was *told* about
for how far it has read. Two things are kept apart:

- ``contiguous``: every entry up to this message id was read back over REST, in order, and
  applied. Only a REST read (the open, a gap check, a catch-up) moves it, and only past an
  entry that was applied in full: a failed attachment download leaves it before that entry.
- the entries *applied* above it, from any source: a dispatch, this process's own writes,
  or a REST read. A later read skips them without downloading them again.

A REST read starts a little before ``contiguous`` (``LAG_MS``): Discord numbers a message when
it takes it, so a slow write can become visible after a faster one with a larger id. Entries
read twice are skipped; applying one twice would be harmless anyway.
"""

from __future__ import annotations

from discobase.storage.ids import snowflake_at, snowflake_ms
from discobase.storage.snapshot import REPLAY_LAG_MS

__all__ = ["LAG_MS", "ReadPosition", "lagged"]

#: How far behind ``contiguous`` a REST read starts again (Discord milliseconds).
LAG_MS = REPLAY_LAG_MS


def lagged(message_id: int, lag_ms: int = LAG_MS) -> int:
    """Return the snowflake ``lag_ms`` Discord milliseconds older than ``message_id``."""
    if message_id <= 0:
        return 0
    return max(0, snowflake_at(snowflake_ms(message_id) - lag_ms))


class ReadPosition:
    """One channel's read position and the entries applied beyond it.

    Args:
        start: the position a snapshot's replay starts from (0: the channel's beginning).
        applied: entries after ``start`` that the state already holds (a snapshot's skip
            list).
    """

    def __init__(self, start: int = 0, applied: frozenset[int] = frozenset()) -> None:
        self.contiguous = start
        # A snapshot holds everything up to its replay position: no lag below it.
        self._floor = start
        self._applied = {m for m in applied if m > self._floor}
        #: The newest entry applied, from any source (a new entry names it as ``prev``).
        self.newest = max([start, *applied])

    @property
    def read_from(self) -> int:
        """Return where the next REST read starts (``after=``)."""
        return self._floor

    def is_applied(self, message_id: int) -> bool:
        """Return whether the entry ``message_id`` is already held."""
        return message_id <= self._floor or message_id in self._applied

    def applied_after(self, position: int) -> list[int]:
        """Return the applied entries newer than ``position``, oldest first."""
        return sorted(m for m in self._applied if m > position)

    def mark_applied(self, message_id: int) -> None:
        """Record that the state holds the entry ``message_id`` (from any source)."""
        if message_id > self._floor:
            self._applied.add(message_id)
        if message_id > self.newest:
            self.newest = message_id

    def advance(self, message_id: int) -> None:
        """Record that a REST read applied every entry up to ``message_id``."""
        if message_id <= self.contiguous:
            return
        self.contiguous = message_id
        floor = lagged(message_id)
        if floor > self._floor:
            self._floor = floor
            # What lies at or below the floor is never read again: no need to remember it.
            self._applied = {m for m in self._applied if m > floor}

    def __repr__(self) -> str:
        return (
            f"<ReadPosition contiguous={self.contiguous} newest={self.newest} "
            f"applied_above={len(self._applied)}>"
        )
