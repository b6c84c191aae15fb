"""Invariants 1 to 3 of the checker design, on the fresh load and on each live reader's samples.

Holds :func:`check_final` (the fresh load: no acknowledged write lost, no value no operation
wrote or that a failed one wrote, no record doubled), :func:`check_partial` (no ``save_many``
held in part) and :func:`check_reader` (a live reader's samples: no phantom or failed value
seen, no batch seen in part, no key going back).

A live reader's samples go back (a revert) when it sees a state every explanation of which is
older than every explanation of a state it saw before ("older": ended before the other was
invoked). Absence is explained by the deletes of the key, and by the key's state before it
was created.

It must not know the deliberate damage (the keys ``nemesis_check_damage`` judged come in as
``excused``), the live processes' reports at the end or the convergence bound
(``nemesis_check.check`` judges those): only operations, the fresh load and samples. Pure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nemesis_check_ops import BEFORE_ALL, Observation, Op, allowed_final
from nemesis_check_verdict import Verdict


def check_final(
    verdict: Verdict,
    final: list[Mapping[str, Any]],
    by_key: Mapping[str, list[tuple[Op, int | None]]],
    by_value: Mapping[tuple[str, int], Op],
    excused: Collection[str] = (),
) -> dict[str, int]:
    """Check invariants 1 and 2 on the fresh load; return it as ``{key: value}``.

    Keys in ``excused`` were judged by invariant 5 (a deleted entry held their last write).
    """
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
        if (value is None and absent) or value in values or key in excused:
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


def check_partial(
    verdict: Verdict,
    batches: Iterable[Op],
    by_key: Mapping[str, list[tuple[Op, int | None]]],
    where: str,
    state: Mapping[str, int],
    at: float,
    own_values: bool = False,
    excused: Collection[str] = (),
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
            if k not in state
            and k not in excused
            and not any(d.invoke <= at for d, v in by_key.get(k, []) if v is None)
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


_BEFORE_CREATION = _Cause(BEFORE_ALL, BEFORE_ALL)


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


def check_reader(
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
            check_partial(
                verdict, touched.values(), by_key, where, state, sample.t, own_values=True
            )
