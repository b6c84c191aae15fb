"""Invariant 5 of the checker design: deliberate damage ends with the data intact, or with
the loss named.

Holds :class:`Deleted` and :class:`Damage` (what a damage run did, and what each process said
of it), :data:`CATALOG` (the catalog channel's name, which the nemesis's damage also uses) and
:func:`check_damage`: each deleted entry intact, written again, lost and named (consistently
by every process), or lost without a trace as documented; each catalog rename reported. It
returns the keys the other invariants then leave to it.

It must not know how the damage is done (``nemesis_damage``, ``nemesis_entries``), the
processes, or the rules of invariants 1 to 4 beyond :func:`allowed_final`: it reads the
operations, both fresh loads, the live processes' reports and everyone's damage lines. Pure.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from nemesis_check_ops import Op, allowed_final, records
from nemesis_check_verdict import Verdict

#: The catalog channel's name (discobase's default).
CATALOG = "discobase"


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


def check_damage(
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
    after = None if damage.after is None else records(damage.after)
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
