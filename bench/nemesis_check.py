"""Judge a nemesis run from what its processes recorded (pure: no I/O, no discobase, no clock).

Layer: bench helper. ``bench/nemesis.py`` runs writers, live readers and faults against the
local Discord and hands this module the recorded histories and final states; the unit tests
hand it histories made by hand. It knows nothing of processes or of discobase: only the
records below.

The model (Jepsen's): every client operation is an ``invoke`` line and one completion,
``ok`` (acknowledged), ``fail`` (promised not stored) or ``info`` (unknown; also an invoke
whose process died before completing it). A *key* is ``"table/key"``; every write puts a
value no other write puts (or deletes, value ``None``), so a value seen anywhere names the one
operation that wrote it.

A write ``w`` is *superseded* when an ``ok`` write of the same key was invoked after ``w``
ended: Discord orders messages by id, so that later write's message is later and wins. An
``info`` write ends when its process could no longer write: its completion line when the
call raised, else (killed, timed out) when the process was seen dead, plus a grace period.
The value a key may hold at the end is one of its writes that is neither superseded nor
``fail``, or absence when such a write is a delete or no write of the key was acknowledged
(the key then may still be as before it was created). That is the rule of both workloads;
when one writer owns a key it reduces to "the last ``ok`` write, or a later ``info`` one".

A live reader's samples go back (a revert) when it sees a state every explanation of which is
older than every explanation of a state it saw before ("older": ended before the other was
invoked). Absence is explained by the deletes of the key, and by the key's state before it
was created.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INVARIANTS",
    "Observation",
    "Op",
    "Verdict",
    "build_ops",
    "check",
]

#: The counters that must all be zero for a run to pass.
INVARIANTS = (
    "lost",
    "phantom",
    "failed_visible",
    "doubled",
    "partial",
    "reverted",
    "divergent",
    "late",
)

_BEFORE_ALL = -math.inf


@dataclass
class Op:
    """One client operation, assembled from its invoke and completion lines.

    Attributes:
        id: unique over the run.
        process: the process that ran it.
        f: ``save``, ``update``, ``delete`` or ``save_many``.
        writes: ``[(key, value or None for a delete)]``, keys as ``"table/key"``.
        invoke: monotonic time of the invoke line.
        outcome: ``ok``, ``fail`` or ``info``.
        complete: monotonic time of the completion line, ``None`` when there was none.
        end: the last moment the write could still take effect (``complete`` for ``ok`` and
            ``fail``; see the module docstring for ``info``).
        error: the error's name and message, when there was one.
    """

    id: str
    process: str
    f: str
    writes: list[tuple[str, int | None]]
    invoke: float
    outcome: str = "info"
    complete: float | None = None
    end: float = math.inf
    error: str | None = None


@dataclass
class Observation:
    """What a live process's sample changed: ``{key: value or None}`` at monotonic ``t``."""

    t: float
    changes: dict[str, int | None]


@dataclass
class Verdict:
    """The counts of a run's check, and a few examples of each violation.

    Attributes:
        counts: one entry per name of :data:`INVARIANTS` (0 when it holds).
        operations: operations by outcome (``ok``, ``fail``, ``info``) and by ``f``.
        examples: up to ``EXAMPLES`` readable lines per violated invariant.
        convergence: per live process that reported, the time (in the clock of the history)
            from ``quiet_at`` until its state last changed before matching the fresh load;
            ``None`` for a process without samples.
        keys: how many keys the run wrote.
    """

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVARIANTS, 0))
    operations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    convergence: dict[str, float | None] = field(default_factory=dict)
    keys: int = 0

    EXAMPLES = 5

    @property
    def ok(self) -> bool:
        """Return whether every invariant holds."""
        return not any(self.counts.values())

    def flag(self, invariant: str, example: str) -> None:
        """Count one violation of ``invariant``, keeping the first examples."""
        self.counts[invariant] += 1
        if len(self.examples[invariant]) < self.EXAMPLES:
            self.examples[invariant].append(example)


def build_ops(
    lines: Iterable[Mapping[str, Any]],
    process_ends: Mapping[str, float],
    grace: float,
) -> dict[str, Op]:
    """Pair invoke and completion lines into operations.

    Args:
        lines: history lines of every writer, in any order: ``{"type": "invoke", "op",
            "process", "f", "writes": [[key, value], ...], "t"}`` and ``{"type": "ok" | "fail"
            | "info", "op", "t", "error"?, "pending"?}``; other types are ignored.
            ``pending`` marks an ``info`` whose call may still be running (a timeout).
        process_ends: when each process was seen dead (killed, or exited); a process not
            named is taken to live for ever.
        grace: added to a process's end for writes it still had on their way.

    Returns:
        ``{op id: Op}``; an invoke without completion is an ``info`` that ends with its
        process.
    """
    ops: dict[str, Op] = {}
    completions: list[Mapping[str, Any]] = []
    for line in lines:
        kind = line.get("type")
        if kind == "invoke":
            ops[line["op"]] = Op(
                id=line["op"],
                process=line["process"],
                f=line["f"],
                writes=[(str(k), None if v is None else int(v)) for k, v in line["writes"]],
                invoke=float(line["t"]),
            )
        elif kind in ("ok", "fail", "info"):
            completions.append(line)
    pending: set[str] = set()
    for line in completions:
        op = ops.get(line["op"])
        if op is None:
            continue  # a completion without invoke cannot happen; ignore rather than guess
        op.outcome = line["type"]
        op.complete = float(line["t"])
        op.error = line.get("error")
        if line.get("pending"):
            pending.add(op.id)
    for op in ops.values():
        if op.complete is not None and op.id not in pending:
            op.end = op.complete
        else:
            op.end = process_ends.get(op.process, math.inf) + grace
    return ops


def _key_index(ops: Mapping[str, Op]) -> dict[str, list[tuple[Op, int | None]]]:
    by_key: dict[str, list[tuple[Op, int | None]]] = defaultdict(list)
    for op in ops.values():
        for key, value in op.writes:
            by_key[key].append((op, value))
    return by_key


def _value_index(ops: Mapping[str, Op]) -> dict[tuple[str, int], Op]:
    return {(key, v): op for op in ops.values() for key, v in op.writes if v is not None}


def allowed_final(writes: list[tuple[Op, int | None]]) -> tuple[set[int], bool]:
    """Return the values a key may end with, and whether it may end absent.

    Args:
        writes: every write of the key, ``(op, value or None)``.
    """
    oks = [op.invoke for op, _ in writes if op.outcome == "ok"]
    latest_ok = max(oks, default=_BEFORE_ALL)
    values: set[int] = set()
    absent = not oks  # nothing acknowledged: the key may be as before its creation
    for op, value in writes:
        if op.outcome == "fail" or op.end < latest_ok:
            continue
        if value is None:
            absent = True
        else:
            values.add(value)
    return values, absent


def check(
    ops: Mapping[str, Op],
    final: list[Mapping[str, Any]],
    observations: Mapping[str, list[Observation]],
    reports: Mapping[str, Mapping[str, int]],
    *,
    quiet_at: float,
    bound: float,
) -> Verdict:
    """Check the five invariants of checker-design.md (the first four) on one run.

    Args:
        ops: the run's operations (:func:`build_ops`).
        final: the fresh load, one ``{"key": "table/key", "id", "value"}`` per record.
        observations: each live reader's samples in time order, from an empty start.
        reports: each live process's state at the end, ``{key: value}``.
        quiet_at: when the faults stopped and the writers had stopped.
        bound: how long after ``quiet_at`` every live process must match the fresh load
            (the quiet period plus the documented bound).

    Returns:
        The verdict; ``verdict.ok`` when every invariant holds.
    """
    verdict = Verdict()
    for op in ops.values():
        verdict.operations[op.outcome] += 1
        verdict.operations[op.f] += 1
    by_key = _key_index(ops)
    by_value = _value_index(ops)
    verdict.keys = len(by_key)
    fresh = _check_final(verdict, final, by_key, by_value)
    batches = [op for op in ops.values() if op.f == "save_many"]
    _check_partial(verdict, batches, by_key, "the fresh load", fresh, math.inf)
    for process, samples in observations.items():
        _check_reader(verdict, process, samples, batches, by_key, by_value)
    for process, state in sorted(reports.items()):
        if dict(state) != fresh:
            missing = sorted(set(fresh) - set(state))[:3]
            extra = sorted(set(state) - set(fresh))[:3]
            differ = sorted(k for k in set(fresh) & set(state) if fresh[k] != state[k])[:3]
            verdict.flag(
                "divergent",
                f"{process} holds {len(state)} keys, the fresh load {len(fresh)}: "
                f"missing {missing}, extra {extra}, different {differ}",
            )
            verdict.convergence[process] = None
            continue
        samples = observations.get(process)
        if not samples:
            verdict.convergence[process] = None
            continue
        changed = max((s.t for s in samples if s.changes), default=_BEFORE_ALL)
        took = max(0.0, changed - quiet_at)
        verdict.convergence[process] = took
        if took > bound:
            verdict.flag("late", f"{process} matched the fresh load {took:.3f} s after quiet")
    return verdict


def _check_final(
    verdict: Verdict,
    final: list[Mapping[str, Any]],
    by_key: Mapping[str, list[tuple[Op, int | None]]],
    by_value: Mapping[tuple[str, int], Op],
) -> dict[str, int]:
    """Check invariants 1 and 2 on the fresh load; return it as ``{key: value}``."""
    fresh: dict[str, int] = {}
    seen_ids: Counter[Any] = Counter(r["id"] for r in final)
    for record_id, n in seen_ids.items():
        if n > 1:
            verdict.flag("doubled", f"id {record_id} appears {n} times in the fresh load")
    per_key: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in final:
        per_key[record["key"]].append(record)
    for key, records in per_key.items():
        if len(records) > 1:
            ids = [r["id"] for r in records]
            verdict.flag("doubled", f"{key} is held by {len(records)} records {ids}")
        fresh[key] = int(records[-1]["value"])
    for key in sorted(set(by_key) | set(fresh)):
        writes = by_key.get(key, [])
        value = fresh.get(key)
        values, absent = allowed_final(writes)
        if (value is None and absent) or value in values:
            continue
        if value is None:
            last = _last_ok(writes)
            verdict.flag("lost", f"{key} is absent; acknowledged: {_describe(last)}")
            continue
        op = by_value.get((key, value))
        if op is None:
            verdict.flag("phantom", f"{key} holds {value}, which no operation wrote")
        elif op.outcome == "fail":
            verdict.flag("failed_visible", f"{key} holds {value} of failed {_describe(op)}")
        else:
            last = _last_ok(writes)
            verdict.flag(
                "lost",
                f"{key} holds {value} of {_describe(op)}; "
                f"a later acknowledged write was {_describe(last)}",
            )
    return fresh


def _last_ok(writes: list[tuple[Op, int | None]]) -> Op | None:
    oks = [op for op, _ in writes if op.outcome == "ok"]
    return max(oks, key=lambda op: op.invoke, default=None)


def _describe(op: Op | None) -> str:
    if op is None:
        return "nothing"
    values = ", ".join(f"{k}={v}" for k, v in op.writes)
    return f"{op.f} {op.id} by {op.process} ({values}) {op.outcome} at {op.invoke:.3f}"


def _check_partial(
    verdict: Verdict,
    batches: Iterable[Op],
    by_key: Mapping[str, list[tuple[Op, int | None]]],
    where: str,
    state: Mapping[str, int],
    at: float,
    own_values: bool = False,
) -> None:
    """Flag each save_many of which ``state`` holds some keys and lacks others never deleted.

    Args:
        batches: the save_many operations to check.
        at: when the state was seen; deletes invoked later cannot explain an absence.
        own_values: count a key as held only with the batch's own value. A live reader may
            have missed the batch's message and hold a key from a later update (which
            carries the whole record): that is a missed message, not a torn batch. In a
            fresh load every message is read, so any value of the key proves the batch.
    """
    for op in batches:
        present = [k for k, v in op.writes if k in state and (not own_values or state[k] == v)]
        unexplained = [
            k
            for k, _ in op.writes
            if k not in state and not any(d.invoke <= at for d, v in by_key.get(k, []) if v is None)
        ]
        if present and unexplained:
            verdict.flag(
                "partial",
                f"{where} holds {len(present)} of the {len(op.writes)} records of "
                f"{_describe(op)}; lacks {unexplained[:3]}",
            )


@dataclass(frozen=True)
class _Cause:
    invoke: float
    end: float


_BEFORE_CREATION = _Cause(_BEFORE_ALL, _BEFORE_ALL)


def _causes(
    key: str,
    value: int | None,
    by_key: Mapping[str, list[tuple[Op, int | None]]],
    by_value: Mapping[tuple[str, int], Op],
) -> list[_Cause]:
    if value is None:
        deletes = [_Cause(op.invoke, op.end) for op, v in by_key.get(key, []) if v is None]
        return [_BEFORE_CREATION, *deletes]
    op = by_value.get((key, value))
    return [] if op is None else [_Cause(op.invoke, op.end)]


def _older(new: list[_Cause], old: list[_Cause]) -> bool:
    """Return whether every explanation of ``new`` ended before every one of ``old`` began."""
    return all(n.end < o.invoke for n in new for o in old)


def _check_reader(
    verdict: Verdict,
    process: str,
    samples: list[Observation],
    batches: list[Op],
    by_key: Mapping[str, list[tuple[Op, int | None]]],
    by_value: Mapping[tuple[str, int], Op],
) -> None:
    """Check invariants 2 (partial, failed) and 3 (no revert) on one reader's samples."""
    state: dict[str, int] = {}
    # Per key, each state seen so far and its explanations; every key starts absent.
    seen: dict[str, list[tuple[int | None, list[_Cause]]]] = defaultdict(
        lambda: [(None, [_BEFORE_CREATION])]
    )
    flagged: set[str] = set()  # keys already counted as phantom or failed for this reader
    reverted: set[str] = set()
    batches_of: dict[str, list[Op]] = defaultdict(list)
    for op in batches:
        for key, _ in op.writes:
            batches_of[key].append(op)
    for sample in samples:
        for key, value in sample.changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
                op = by_value.get((key, value))
                if op is None and key not in flagged:
                    flagged.add(key)
                    verdict.flag("phantom", f"{process} saw {key}={value}, which no op wrote")
                elif op is not None and op.outcome == "fail" and key not in flagged:
                    flagged.add(key)
                    verdict.flag(
                        "failed_visible", f"{process} saw {key}={value} of failed {_describe(op)}"
                    )
            new = _causes(key, value, by_key, by_value)
            history = seen[key]
            if new and key not in reverted:
                for before, old in history:
                    if before != value and old and _older(new, old):
                        reverted.add(key)
                        verdict.flag(
                            "reverted",
                            f"{process} saw {key} go from {before} back to {value} "
                            f"at {sample.t:.3f}",
                        )
                        break
            if value is None and len(history) > 1:
                # Absence after a value: only a delete explains it (the state before the
                # key's creation, were it the explanation, was just flagged as going back).
                history.append((None, [c for c in new if c is not _BEFORE_CREATION] or new))
            elif all(before != value for before, _ in history):
                history.append((value, new))
        touched = {op.id: op for key in sample.changes for op in batches_of.get(key, ())}
        if touched:
            where = f"{process} at {sample.t:.3f}"
            _check_partial(
                verdict, touched.values(), by_key, where, state, sample.t, own_values=True
            )
