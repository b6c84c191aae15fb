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
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    "damage_unreported",
    "damage_inconsistent",
)

#: The catalog channel's name (discobase's default).
CATALOG = "discobase"

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
class Deleted:
    """A log entry the nemesis deleted, as a member of the server would.

    Attributes:
        message: the entry's message id.
        table: its table's name.
        channel: its table's channel id.
        t: when it was deleted (monotonic, the clock of the histories).
        writes: what it held, ``[("table/key", value or None for a delete)]``.
        inline: whether ``writes`` is known (an entry with attachments is not decoded).
        offline: deleted after every live process had stopped (before the second fresh load).
        named: whether an entry left in the log names it as its writer's newest (``prev``):
            only then can a process that opens the table later tell it is missing.
        newest: it was the newest entry of its table when deleted.
        batch: for a part of a multi-part entry, its batch id; ``writes`` are then the whole
            batch's, which no reader applies without every part. A reader that finds a part
            gone names the first it misses, so the loss of a batch is named by a line that
            names any of its deleted parts, and is traceable when any of them is named.
    """

    message: str
    table: str
    channel: str
    t: float
    writes: list[tuple[str, int | None]]
    inline: bool = True
    offline: bool = False
    named: bool = True
    newest: bool = False
    batch: str | None = None


@dataclass
class Damage:
    """What a run with deliberate damage did, and what each process said of it.

    Attributes:
        deleted: the log entries deleted, live ones and offline ones.
        lines: each process's damage lines (``db.damage``) by process name: the live
            processes at the end, the fresh loader (``fresh``) and, after the offline
            deletions, the second one (``after_name``).
        after: the second fresh load (same shape as the first), ``None`` without one.
        catalog: the catalog channel's id.
        renames: ``[(t, new name)]`` of the catalog channel, in time order.
        opened: per process, ``(start, ready)``: the span in which it opened the database.
        fresh_name: the fresh loader's name in ``lines``.
        after_name: the second fresh loader's name in ``lines``.
        killed: per writer process killed, when it died.
        repair_window: how long (in the clock of the histories) a live writer may take to
            write a deleted entry again: the audit period and a gap check, for a deletion
            whose event it never received.
    """

    deleted: list[Deleted] = field(default_factory=list)
    lines: dict[str, list[str]] = field(default_factory=dict)
    after: list[Mapping[str, Any]] | None = None
    catalog: str = ""
    renames: list[tuple[float, str]] = field(default_factory=list)
    opened: dict[str, tuple[float, float]] = field(default_factory=dict)
    fresh_name: str = "fresh"
    after_name: str = "fresh2"
    killed: dict[str, float] = field(default_factory=dict)
    repair_window: float = 0.0

    def died_before_repairing(self, entry: Deleted, writers: set[str]) -> bool:
        """Return whether every process that wrote the entry's records was killed before it
        could have written the entry again (the documented limit, live: no other process
        received the entry's events, since none holds or names it)."""
        return bool(writers) and all(
            w in self.killed and self.killed[w] <= entry.t + self.repair_window for w in writers
        )


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
        damage: figures of the deliberate damage (not violations): deleted entries whose
            records stayed intact, were written again by a live process, were lost and
            reported, or were lost without a trace as documented (``untraceable``).
    """

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVARIANTS, 0))
    damage: Counter[str] = field(default_factory=Counter)
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
        damage: the deliberate damage of the run, for invariant 5 (:func:`_check_damage`).
        scope: per live process, the tables it holds (a process not named holds every
            table): its report says nothing of the others.

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
    excused: set[str] = set()  # left to invariant 5 by invariants 1, 2 and 4
    unequal: set[str] = set()  # left to invariant 5 by invariant 4 only
    tables = dict(scope or {})
    if damage is not None:
        excused, unequal = _check_damage(verdict, damage, by_key, _records(final), reports, tables)
    unequal |= excused
    fresh = _check_final(verdict, final, by_key, by_value, excused)
    batches = [op for op in ops.values() if op.f == "save_many"]
    _check_partial(verdict, batches, by_key, "the fresh load", fresh, math.inf, excused=excused)
    for process, samples in observations.items():
        _check_reader(verdict, process, samples, batches, by_key, by_value)
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
        changed = max((s.t for s in samples if s.changes), default=_BEFORE_ALL)
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


def _check_final(
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


def _check_partial(
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


# -- invariant 5: damage is named ---------------------------------------------------------


def _records(final: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Return a load as ``{key: value}`` (the last record of a key held twice)."""
    return {str(r["key"]): int(r["value"]) for r in final}


def _names(line: str, entry: Deleted, messages: Collection[str] = ()) -> bool:
    """Return whether a damage line names the entry's table, channel and message (or one
    of ``messages``: the other deleted parts of the entry's batch)."""
    return (
        f"'{entry.table}'" in line
        and entry.channel in line
        and any(m in line for m in (entry.message, *messages))
    )


def _says_lost(line: str) -> bool:
    """Return whether a damage line says an entry's records are gone (not written again)."""
    return "missing" in line or "could not be written" in line


def _held(state: Mapping[str, int], key: str, value: int | None) -> bool:
    return key not in state if value is None else state.get(key) == value


def _catalog_renamed(damage: Damage, start: float, ready: float) -> bool | None:
    """Return whether the catalog had another name all through ``[start, ready]``.

    ``None`` when it was renamed in between (a process may then have found it either way).
    """
    name = CATALOG
    for t, new in damage.renames:
        if t > ready:
            break
        if t >= start:
            return None
        name = new
    return name != CATALOG


def _writers(entry: Deleted, by_key: Mapping[str, list[tuple[Op, int | None]]]) -> set[str]:
    """Return the processes whose operations wrote what the entry held."""
    return {
        op.process
        for key, value in entry.writes
        for op, written in by_key.get(key, [])
        if written == value
    }


def _check_damage(
    verdict: Verdict,
    damage: Damage,
    by_key: Mapping[str, list[tuple[Op, int | None]]],
    fresh: Mapping[str, int],
    all_reports: Mapping[str, Mapping[str, int]],
    scope: Mapping[str, Collection[str]],
) -> tuple[set[str], set[str]]:
    """Check invariant 5: damage ends with the data intact, or with the loss named.

    A log entry deleted while processes run must be written again by one of them (a repair
    entry), so the fresh load holds its records; or else the fresh loader names the table,
    the channel and the message as missing, and no live process still holds the records
    the fresh load lacks. An entry deleted after every process stopped must be named by the
    second fresh loader, unless no entry left in the log names it (``untraceable``: the
    documented limit, a figure, not a violation). A process that opened the database while
    the catalog channel had another name must report it.

    Counts ``damage_unreported`` (records of a deleted entry missing, no process naming the
    message; a catalog rename not reported) and ``damage_inconsistent`` (the processes
    disagree: one names the loss, the loader does not; or a live process still holds what
    the loader reports lost; or the fresh load holds a live-deleted entry's writes, and a
    live process does not, having missed the entry before it was deleted). Returns the keys
    judged here: those invariants 1, 2 and 4 then leave alone, and those only invariant 4
    leaves alone. A live process is asked only of the tables it holds (``scope``).

    A deleted part of a multi-part entry stands for the whole batch: its loss is named by a
    line that names any deleted part of the batch (a reader names the first part it finds
    gone), and it is traceable when any of them is named.
    """
    excused: set[str] = set()
    unequal: set[str] = set()
    after = None if damage.after is None else _records(damage.after)
    everyone = [line for lines in damage.lines.values() for line in lines]
    for entry in damage.deleted:
        verdict.damage["entries deleted" + (" offline" if entry.offline else "")] += 1
        if entry.batch is not None:
            verdict.damage["parts of multi-part entries deleted"] += 1
        if not entry.inline:
            verdict.damage["entries not decoded"] += 1
            continue
        reports = {
            p: s for p, s in all_reports.items() if entry.table in scope.get(p, (entry.table,))
        }
        siblings = [
            d
            for d in damage.deleted
            if entry.batch is not None and d.batch == entry.batch and d.table == entry.table
        ]
        parts = [d.message for d in siblings if d is not entry]
        named = entry.named or any(d.named for d in siblings)
        loader = damage.after_name if entry.offline else damage.fresh_name
        if entry.offline:
            if after is None:
                continue
            # It held what the first load held; the second, after it was deleted, lacks it.
            missing = [
                (k, v) for k, v in entry.writes if _held(fresh, k, v) and not _held(after, k, v)
            ]
        else:
            # Its write was one a key may end with, and the fresh load does not show it:
            # lost, when the fresh value is not allowed either, or when a live process
            # still holds the write (a concurrent write the load shows instead is allowed
            # by invariant 1, but the processes disagree over the deleted entry).
            missing = []
            for key, value in entry.writes:
                values, absent = allowed_final(by_key.get(key, []))
                if not ((value is None and absent) or value in values) or _held(fresh, key, value):
                    continue
                now = fresh.get(key)
                held = any(_held(state, key, value) for state in reports.values())
                if held or not ((now is None and absent) or now in values):
                    missing.append((key, value))
        where = (
            f"entry {entry.message} of table {entry.table!r} (channel {entry.channel}), "
            f"deleted {'after every process stopped' if entry.offline else 'live'}"
        )
        if not entry.offline:
            # The fresh load shows its writes; a live process that does not never read it.
            shown = [(k, v) for k, v in entry.writes if _held(fresh, k, v)]
            lagging = sorted(
                process
                for process, state in reports.items()
                if any(state.get(k) != fresh.get(k) for k, _ in shown)
            )
            if lagging:
                unequal.update(k for k, _ in shown)
                verdict.flag(
                    "damage_inconsistent",
                    f"{where}: the fresh load holds its writes {[k for k, _ in shown][:3]}, "
                    f"{lagging} do not (nothing they read holds them: the entry was deleted "
                    "before they read it, and not written again)",
                )
        if not missing:
            verdict.damage["intact"] += 1
            if any(_names(line, entry) and "written again in" in line for line in everyone):
                verdict.damage["repaired"] += 1
            continue
        keys = [k for k, _ in missing]
        if not entry.offline:
            excused.update(keys)  # the first load's checks leave them to this count
        lost = f"{len(missing)} of its records missing ({keys[:3]})"
        named_by_loader = any(
            _names(line, entry, parts) and _says_lost(line) for line in damage.lines.get(loader, ())
        )
        # Live processes that still hold what the loader lacks: they had the table open,
        # yet neither wrote the entry again nor lost it.
        holders = sorted(
            process
            for process, state in reports.items()
            if not entry.offline and any(_held(state, k, v) for k, v in missing)
        )
        if named_by_loader:
            verdict.damage["lost, reported"] += 1
            if holders:
                verdict.flag(
                    "damage_inconsistent",
                    f"{where}: {loader} reports it missing ({lost}), but {holders} still hold "
                    "them (neither written again nor reported by them)",
                )
        elif (
            not named
            and not holders
            and (entry.offline or damage.died_before_repairing(entry, _writers(entry, by_key)))
        ):
            verdict.damage["untraceable"] += 1
            if not entry.newest:
                # Wider than the documented "newest entry": each entry names only its
                # writer's newest, so with several writers an older one may go unnamed.
                verdict.damage["untraceable, not the newest"] += 1
            which = "the newest entry" if entry.newest else "an entry no later entry names"
            if len(verdict.examples["untraceable"]) < Verdict.EXAMPLES:
                verdict.examples["untraceable"].append(f"{where} ({which}): {lost}, unnamed")
        elif any(_names(line, entry, parts) for line in everyone):
            sayers = sorted(
                p for p, ls in damage.lines.items() if any(_names(x, entry, parts) for x in ls)
            )
            verdict.flag(
                "damage_inconsistent",
                f"{where}: {lost}; named by {sayers} but not reported missing by {loader}",
            )
        else:
            held = f"; {holders} still hold them" if holders else ""
            verdict.flag("damage_unreported", f"{where}: {lost}; no process names it{held}")
    if after is not None:
        explained = {k for e in damage.deleted if e.offline for k, _ in e.writes}
        for key in sorted(set(fresh) | set(after)):
            if fresh.get(key) != after.get(key) and key not in explained:
                verdict.flag(
                    "lost",
                    f"{key} is {after.get(key)} in the second fresh load and {fresh.get(key)} "
                    "in the first; no deleted entry held it",
                )
    for process, (start, ready) in sorted(damage.opened.items()):
        if process not in damage.lines or not _catalog_renamed(damage, start, ready):
            continue
        verdict.damage["opened with the catalog renamed"] += 1
        needle = f"catalog channel ({damage.catalog}) was renamed"
        if not any(needle in line for line in damage.lines[process]):
            verdict.flag(
                "damage_unreported",
                f"{process} opened the database while the catalog channel {damage.catalog} "
                "had another name and did not report it",
            )
    return excused, unequal
