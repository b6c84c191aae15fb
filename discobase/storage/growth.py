"""Growing large dicts ahead of the keys that would make them grow (storage layer: pure).

Python grows a dict by copying it into a table twice as large when it is two thirds full:
past 700,000 entries that takes 20 ms. A table's records and each of its indexes take a key
per record loaded, so they would all grow during the same piece of a snapshot's load, one
event-loop stall of their sum. :class:`Growth` grows each dict the next keys would make grow in
a step of its own (inserting stand-in keys and taking them out again), so the caller can let
the loop run in between.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["Growth"]

# How many entries a dict grown one key at a time holds when the next key makes it grow:
# two thirds of its table, which starts at 8 slots and doubles.
_GROWTH_POINTS = tuple(((8 << k) * 2) // 3 for k in range(40))
# Dicts smaller than this grow in a few milliseconds: left alone.
_GROW_FROM = 40_000


class Growth:
    """Grow dicts ahead of the keys to come, remembering the room already made in each."""

    __slots__ = ("_largest", "_stand_ins")

    def __init__(self) -> None:
        # Dict id -> (its size in bytes, slots the stand-ins left empty in it).
        self._stand_ins: dict[int, tuple[int, int]] = {}
        self._largest = 0  # the most keys asked room for at once

    def steps(self, dicts: Iterable[dict[Any, Any]], count: int) -> Iterator[None]:
        """Grow each of ``dicts`` that the next ``count`` keys would make grow, yielding after
        each one grown.

        The dicts of a table take a key per record each, so they would all reach their growth
        points in the same piece; the caller's ``await asyncio.sleep(0)`` between two steps
        does not let due timers (a heartbeat) run first, so two steps in a row are one stall
        of their sum. So the ``n``-th dict (from 0) looks ahead by ``n`` times two of the
        largest pieces seen: each grows at least a piece before the one ahead of it in
        ``dicts``, in a turn of its own.
        """
        self._largest = max(self._largest, count)
        for place, mapping in enumerate(dicts):
            used = len(mapping)
            if used < _GROW_FROM:
                continue  # growing a smaller dict takes a few milliseconds at most
            # Slots stand-ins left empty count until the dict next grows (its size changes).
            size, empty = self._stand_ins.get(id(mapping), (0, 0))
            if size != sys.getsizeof(mapping):
                size, empty = sys.getsizeof(mapping), 0
            used += empty
            keys = count + place * 2 * self._largest  # (as many stand-ins)
            if not any(used <= limit < used + keys for limit in _GROWTH_POINTS):
                continue
            stand_ins = [object() for _ in range(keys)]
            for key in stand_ins:
                mapping[key] = None
            for key in stand_ins:
                del mapping[key]
            grown = sys.getsizeof(mapping)
            # Grown: at most ``keys`` stand-ins went in after the copy. Not grown (the slots
            # left empty before were fewer than counted): the new ones add to them, and the
            # next piece must count both, or the dict grows during that piece (a 40 ms stall
            # at 700,000 records).
            self._stand_ins[id(mapping)] = (grown, keys if grown != size else empty + keys)
            yield
