"""Judge a nemesis run from what its processes recorded (pure: no I/O, no discobase, no clock).

Layer: bench helper. ``bench/nemesis.py`` runs writers, live readers and faults against the
local Discord and hands this module the recorded histories and final states; the unit tests
hand it histories made by hand. It knows nothing of processes or of discobase: only the
records of ``nemesis_check_ops`` and ``nemesis_check_damage``.

The model (Jepsen's): every client operation is an ``invoke`` line and one completion,
``ok`` (acknowledged), ``fail`` (promised not stored) or ``info`` (unknown; also an invoke
whose process died before completing it). A *key* is ``"table/key"``; every write puts a
value no other write puts (or deletes, value ``None``), so a value seen anywhere names the one
operation that wrote it. Which values a key may end with (a write *superseded* or not) is
``nemesis_check_ops``'s rule; when a live reader goes back (a *revert*),
``nemesis_check_invariants``'s.

The modules, next to this one (bench/ is not a package: they import each other by name):
``nemesis_check_ops`` (operations from the history lines; the values a key may end with),
``nemesis_check_invariants`` (invariants 1 to 3: the fresh load and the live readers),
``nemesis_check_damage`` (invariant 5: deliberate damage is named) and
``nemesis_check_verdict`` (the counts and examples). This one holds :func:`check`, which runs
them in order and judges invariant 4 (every live process converged to the fresh load in
time), and exports what the nemesis and the tests use.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

_BENCH = str(Path(__file__).resolve().parent)
if _BENCH not in sys.path:
    # Loaded by path (the unit tests): its sibling modules must be importable by name.
    sys.path.insert(0, _BENCH)

from nemesis_check_damage import CATALOG as CATALOG  # noqa: E402 (re-exported)
from nemesis_check_damage import Damage, Deleted, check_damage  # noqa: E402
from nemesis_check_invariants import check_final, check_partial, check_reader  # noqa: E402
from nemesis_check_ops import (  # noqa: E402
    BEFORE_ALL,
    Observation,
    Op,
    build_ops,
    key_index,
    records,
    value_index,
)
from nemesis_check_ops import allowed_final as allowed_final  # noqa: E402 (re-exported)
from nemesis_check_verdict import INVARIANTS, Verdict  # noqa: E402

__all__ = [
    "INVARIANTS",
    "Damage",
    "Deleted",
    "Observation",
    "Op",
    "Verdict",
    "build_ops",
    "check",
]


def check(
    ops: Mapping[str, Op],
    final: list[Mapping[str, Any]],
    observations: Mapping[str, list[Observation]],
    reports: Mapping[str, Mapping[str, int]],
    *,
    quiet_at: float,
    bound: float,
    damage: Damage | None = None,
    scope: Mapping[str, Collection[str]] | None = None,
) -> Verdict:
    """Check the five invariants of checker-design.md on one run.

    Args:
        ops: the run's operations (:func:`build_ops`).
        final: the fresh load, one ``{"key": "table/key", "id", "value"}`` per record.
        observations: each live reader's samples in time order, from an empty start.
        reports: each live process's state at the end, ``{key: value}``.
        quiet_at: when the faults stopped and the writers had stopped.
        bound: how long after ``quiet_at`` every live process must match the fresh load
            (the quiet period plus the documented bound).
        damage: the deliberate damage of the run, for invariant 5 (:func:`check_damage`).
        scope: per live process, the tables it holds (a process not named holds every
            table): its report says nothing of the others.

    Returns:
        The verdict; ``verdict.ok`` when every invariant holds.
    """
    verdict = Verdict()
    for op in ops.values():
        verdict.operations[op.outcome] += 1
        verdict.operations[op.f] += 1
    by_key = key_index(ops)
    by_value = value_index(ops)
    verdict.keys = len(by_key)
    excused: set[str] = set()  # left to invariant 5 by invariants 1, 2 and 4
    unequal: set[str] = set()  # left to invariant 5 by invariant 4 only
    tables = dict(scope or {})
    if damage is not None:
        excused, unequal = check_damage(verdict, damage, by_key, records(final), reports, tables)
    unequal |= excused
    fresh = check_final(verdict, final, by_key, by_value, excused)
    batches = [op for op in ops.values() if op.f == "save_many"]
    check_partial(verdict, batches, by_key, "the fresh load", fresh, math.inf, excused=excused)
    for process, samples in observations.items():
        check_reader(verdict, process, samples, batches, by_key, by_value)
    # Keys invariant 5 judged (written by a deleted entry) are not counted as divergence.
    expected = {k: v for k, v in fresh.items() if k not in unequal}
    for process, state in sorted(reports.items()):
        state = {k: v for k, v in state.items() if k not in unequal}
        if process in tables:
            state = {k: v for k, v in state.items() if _table_of(k) in tables[process]}
        held = {k: v for k, v in expected.items() if _in(tables, process, k)}
        if state != held:
            missing = sorted(set(held) - set(state))[:3]
            extra = sorted(set(state) - set(held))[:3]
            differ = sorted(k for k in set(held) & set(state) if held[k] != state[k])[:3]
            verdict.flag(
                "divergent",
                f"{process} holds {len(state)} keys, the fresh load {len(held)}: "
                f"missing {missing}, extra {extra}, different {differ}",
            )
            verdict.convergence[process] = None
            continue
        samples = observations.get(process)
        if not samples:
            verdict.convergence[process] = None
            continue
        changed = max((s.t for s in samples if s.changes), default=BEFORE_ALL)
        took = max(0.0, changed - quiet_at)
        verdict.convergence[process] = took
        if took > bound:
            verdict.flag("late", f"{process} matched the fresh load {took:.3f} s after quiet")
    return verdict


def _table_of(key: str) -> str:
    """Return a key's table (keys are ``"table/key"``)."""
    return key.partition("/")[0]


def _in(scope: Mapping[str, Collection[str]], process: str, key: str) -> bool:
    """Return whether ``process`` holds the table of ``key`` (every table if not in scope)."""
    return process not in scope or _table_of(key) in scope[process]
