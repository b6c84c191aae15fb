"""The cyclic garbage collector, held off while thousands of acyclic objects are made (a shared
leaf: storage and the public API layer both hold it; imports nothing of discobase).

Loading a snapshot, encoding a large write round or returning a large page of records makes
hundreds of thousands of containers that hold no cycle. Each collection their allocations
trigger walks them all again, and the older generations with them: holding the collector off
halves a load and takes two thirds off returning 100,000 records. Holds count, so that holds
overlapping across awaits end in any order; the last restores what the program had (a program
that runs without the collector keeps it off).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["QUIET_PAGE", "gc_paused", "pause_gc", "resume_gc"]

# From this many records on, a query's page is decoded and made with the collector held off.
QUIET_PAGE = 4096

# How many holders want the cyclic collector off, and whether it was on before the first.
# A count, not a saved flag per holder: pauses that overlap across awaits (two large writes
# at once) must turn it back on only when the last one ends.
_gc_holds = 0
_gc_was_enabled = False
# Databases in two threads (each on its own loop) hold it too: unguarded, the second could
# see no hold, take the first's "off" for the program's own and leave it off for good.
_gc_lock = threading.Lock()


def pause_gc() -> None:
    """Hold the cyclic garbage collector off until the matching :func:`resume_gc`."""
    global _gc_holds, _gc_was_enabled
    with _gc_lock:
        if _gc_holds == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holds += 1


def resume_gc() -> None:
    """Release one :func:`pause_gc` hold; the last one restores the collector's state."""
    global _gc_holds
    with _gc_lock:
        _gc_holds -= 1
        if _gc_holds == 0 and _gc_was_enabled:
            gc.enable()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off for the block (see the module docstring).

    The block must not await, so nothing else runs meanwhile: large loads hold it around
    each piece and yield to the event loop between pieces (or use `pause_gc` across them).
    """
    pause_gc()
    try:
        yield
    finally:
        resume_gc()
