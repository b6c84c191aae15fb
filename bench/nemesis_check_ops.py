"""A nemesis run's operations, paired from its history lines, and the values a key may end with.

Holds :class:`Op` and :class:`Observation` (what the checker reads), :func:`build_ops` (invoke
and completion lines paired into operations, with the end of an ``info`` one), the operations
indexed by key and by value (:func:`key_index`, :func:`value_index`), :func:`allowed_final`
(the values a key may end with, by the rule below, which every invariant applies) and
:func:`records` (a load as ``{key: value}``).

A write ``w`` is *superseded* when an ``ok`` write of the same key was invoked after ``w``
ended: Discord orders messages by id, so that later write's message is later and wins. An
``info`` write ends when its process could no longer write: its completion line when the
call raised, else (killed, timed out) when the process was seen dead, plus a grace period.
The value a key may hold at the end is one of its writes that is neither superseded nor
``fail``, or absence when such a write is a delete or no write of the key was acknowledged
(the key then may still be as before it was created). That is the rule of both workloads;
when one writer owns a key it reduces to "the last ``ok`` write, or a later ``info`` one".

It must not know the invariants, the verdict or the deliberate damage: the other
``nemesis_check_*`` modules judge with what it builds. Pure: no I/O, no discobase, no clock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Earlier than any moment of the histories (when a key not yet created was absent).
BEFORE_ALL = -math.inf


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


def key_index(ops: Mapping[str, Op]) -> dict[str, list[tuple[Op, int | None]]]:
    by_key: dict[str, list[tuple[Op, int | None]]] = defaultdict(list)
    for op in ops.values():
        for key, value in op.writes:
            by_key[key].append((op, value))
    return by_key


def value_index(ops: Mapping[str, Op]) -> dict[tuple[str, int], Op]:
    return {(key, v): op for op in ops.values() for key, v in op.writes if v is not None}


def allowed_final(writes: list[tuple[Op, int | None]]) -> tuple[set[int], bool]:
    """Return the values a key may end with, and whether it may end absent.

    Args:
        writes: every write of the key, ``(op, value or None)``.
    """
    oks = [op.invoke for op, _ in writes if op.outcome == "ok"]
    latest_ok = max(oks, default=BEFORE_ALL)
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


def records(final: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Return a load as ``{key: value}`` (the last record of a key held twice)."""
    return {str(r["key"]): int(r["value"]) for r in final}
