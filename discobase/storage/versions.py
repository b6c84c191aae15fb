"""When records changed: runs of versions loaded from a snapshot, and the journal of versions
set since (storage layer: pure; knows nothing of messages or I/O).

Theory
------
Every record has a version, the message id of the last operation applied to it (see
``state.py``). Most need no entry of their own: a record loaded from a snapshot as of its
replay position has the state's *floor*. This module holds two more ways to know a version
without an entry per record.

**Runs.** A snapshot lists the records changed after its replay position with their versions.
Those records usually come from a few large writes: a ``save_many`` of 100,000 records is one
entry, and its records have consecutive ids. A run is ``(first id, last id, version)``: every id
from first to last was loaded with that version. A record's entry in the state's versions, once
something changes it, takes precedence; a record the state no longer holds has no version from
its run. Runs are only made while a snapshot loads into an empty state.

**Journal.** A snapshot lists the records changed after its replay position, with the message
id that last changed each (``TableState.versions_after``). Scanning every record's version for
them is a Python loop over the table: 80 ms for a million records, in the event loop, for each
snapshot. The journal lists the records in the order their versions were set, each beside the
largest version set so far (the running maximum, which never decreases). Every entry up to the
last one whose running maximum is at most the position set a version at most the position, so
the entries after it name every record changed after the position (a bisection finds it).
Entries are candidates only: the record's current version decides (a later change, or a
delete, may have replaced the one an entry set, and a fork that was not adopted may have left
entries). When the journal holds more entries than half the versions held (and at least
65,536), its older half goes; a question about a position before what went gets ``None``, and
the caller scans the versions. A snapshot asks about a position a few seconds before the last
entry read, long after what went unless the table changed tens of thousands of times since.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Collection, Iterable, Mapping
from itertools import filterfalse, groupby, islice
from operator import itemgetter, lt
from typing import Any

from discobase.storage.codec import Row

__all__ = ["Journal", "Runs", "find_runs", "scan_after"]

# Entries kept at least before the journal is halved for its size.
_KEEP_FROM = 65_536
# Below every version and position (what a record without a version entry compares as).
_BELOW = -(1 << 64)
# Records a run holds at least (shorter ones keep an entry each in the versions).
RUN_MIN = 32


class Journal:
    """Record ids in the order their versions were set, with the running maximum."""

    __slots__ = ("base", "ids", "tops")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.tops: list[int] = []
        # Every entry that went set a version at most this (None: none went).
        self.base: int | None = None

    def clear(self) -> None:
        """Forget every entry (the versions were forgotten)."""
        self.ids.clear()
        self.tops.clear()
        self.base = None

    def changed_after(self, position: int, versions: Mapping[int, int]) -> dict[int, int] | None:
        """Return record id -> version for the records whose version in ``versions`` is
        later than ``position``, or ``None`` if the journal no longer knows."""
        if self.base is not None and position < self.base:
            return None
        get = versions.get
        candidates = self.ids[bisect_right(self.tops, position) :]  # (islice would walk)
        # (A comprehension compares faster than map(position.__lt__, ...) in C.)
        return {i: version for i in candidates if (version := get(i, _BELOW)) > position}

    def bound(self, held: int) -> None:
        """Halve the journal if it holds more entries than it needs to (``held``: how many
        versions the state holds)."""
        if len(self.ids) <= max(_KEEP_FROM, held // 2):
            return
        half = len(self.ids) // 2
        top = self.tops[half - 1]
        del self.ids[:half], self.tops[:half]
        self.base = top if self.base is None else max(self.base, top)


def scan_after(versions: Mapping[int, int], position: int) -> dict[int, int]:
    """Return record id -> version for every version later than ``position`` (a scan)."""
    return {record_id: version for record_id, version in versions.items() if version > position}


class Runs:
    """Versions of records loaded in runs of consecutive ids (see the module's docstring)."""

    __slots__ = ("_ends", "_firsts", "_versions")

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._ends: list[int] = []
        self._versions: list[int] = []

    def __bool__(self) -> bool:
        return bool(self._firsts)

    def __len__(self) -> int:
        return len(self._firsts)

    def get(self, record_id: int) -> int | None:
        """Return the version of the run holding ``record_id``, or ``None``."""
        at = bisect_right(self._firsts, record_id) - 1
        if at >= 0 and record_id <= self._ends[at]:
            return self._versions[at]
        return None

    def add(self, first: int, last: int, version: int) -> None:
        """Hold ids ``first`` to ``last`` (none of them in a run yet) at ``version``."""
        firsts = self._firsts
        if firsts and first == self._ends[-1] + 1 and version == self._versions[-1]:
            self._ends[-1] = last  # the run the previous piece of the snapshot began
            return
        at = bisect_right(firsts, first)
        if at == len(firsts):
            firsts.append(first)
            self._ends.append(last)
            self._versions.append(version)
            return
        insort(firsts, first)
        self._ends.insert(at, last)
        self._versions.insert(at, version)

    def changed_after(
        self, position: int, held: Collection[int], versions: Mapping[int, int]
    ) -> dict[int, int]:
        """Return record id -> version for the records ``held`` whose run is later than
        ``position`` and whose version no entry in ``versions`` replaced."""
        found: dict[int, int] = {}
        for first, last, version in zip(self._firsts, self._ends, self._versions, strict=True):
            if version > position:
                ids = filterfalse(versions.__contains__, range(first, last + 1))
                found.update(dict.fromkeys(filter(held.__contains__, ids), version))
        return found


def find_runs(
    rows: list[Row], floor: int, held: Mapping[int, Any], versions: Mapping[int, int]
) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` slices of ``rows`` that make runs.

    A run is at least ``RUN_MIN`` puts of one version other than ``floor``, of consecutive
    record ids, none of them ``held`` or with an entry in ``versions`` (checked in C, but for
    the loop over groups of one version).
    """
    found: list[tuple[int, int]] = []
    start = 0
    for version, group in groupby(rows, itemgetter(0)):
        members = list(group)
        end = start + len(members)
        if version != floor and len(members) >= RUN_MIN:
            ids = list(map(itemgetter(1), members))
            if (
                ids[-1] - ids[0] == len(ids) - 1
                and all(map(lt, ids, islice(ids, 1, None)))  # so ids are consecutive
                and None not in map(itemgetter(2), members)
                and held.keys().isdisjoint(ids)
                and versions.keys().isdisjoint(ids)
            ):
                found.append((start, end))
        start = end
    return found


def run_rows(rows: Iterable[Row], floor: int) -> Iterable[Row]:
    """Return a run's rows as rows at ``floor`` (applied so, they take no version entry)."""
    return ((floor, record_id, data) for _, record_id, data in rows)
