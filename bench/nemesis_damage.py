"""Deliberate damage (``--damage``): what a member of the server does to the bot's channels.

What a member can do (docs/guarantees.md, "Damage"): delete the bot's messages, one or
several at once (MESSAGE_DELETE_BULK), and rename channels. The nemesis does it through the
local Discord's state, as a member's client would through REST: the message or channel
changes and the gateway tells every session. Each deleted log entry is recorded with the
writes it held (decoded by ``nemesis_entries``), for the checker's invariant 5
(``nemesis_check.Deleted``). Holds the damage kinds drawn among the faults
(:data:`DAMAGE_KINDS`), the deletion of a table's catalog entry (a table race's too) and the
damage done while no process runs.

It must not know the schedule or the other fault kinds (``nemesis_faults``), how processes
are run (``nemesis_run``), or how the deleted entries are judged (``nemesis_check``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection
from typing import Any

import nemesis_check as check_mod
from nemesis_check import CATALOG  # discobase's catalog channel name
from nemesis_entries import body_of, entries_in, learn_ids, names_of, note_race_tables, writes_of
from nemesis_run import Run

RECENT = 30  # log entries are deleted among each table's newest this many


def _delete_log_entries(run: Run, table: str, messages: list[Any], *, offline: bool) -> None:
    """Delete log entries of ``table`` (one: MESSAGE_DELETE; several: MESSAGE_DELETE_BULK)."""
    state = run.emu.state
    channel_id = run.tables[table]
    learn_ids(run)
    entries = entries_in(run, channel_id)
    newest = entries[-1][0].id if entries else None
    gone = {m.id for m in messages}
    records = []
    for message in messages:
        body = body_of(message, run.bot.id) or {}
        writes = writes_of(run, table, body, message)
        # Which entries left in the log name this one: as their writer's newest (``prev``),
        # or as an earlier part of their batch (a last part's ``prior``).
        named_by = [
            str(m.id) for m, b in entries if m.id not in gone and str(message.id) in names_of(b)
        ]
        batch = body.get("batch")
        record = check_mod.Deleted(
            message=str(message.id),
            table=table,
            channel=channel_id,
            t=0.0,
            writes=writes or [],
            inline=writes is not None,
            offline=offline,
            named=bool(named_by),
            newest=message.id == newest,
            batch=None if batch is None else str(batch),
        )
        records.append(record)
        if writes is None and batch is not None:
            run.unresolved.append((record, table, body))
    if len(messages) == 1:
        state.delete_message(messages[0])
    else:
        state.bulk_delete(state.channels[channel_id], [m.id for m in messages])
    now = time.monotonic()
    for record in records:
        record.t = now
        run.deleted.append(record)
        run.damaged["log entries deleted" + (" offline" if offline else "")] += 1
        if record.batch is not None:
            run.damaged[
                "parts of multi-part entries deleted" + (" offline" if offline else "")
            ] += 1
        run.note(
            "damage",
            did="delete log entry",
            table=table,
            channel=channel_id,
            message=record.message,
            writes=record.writes,
            offline=offline,
            named=record.named,
            newest=record.newest,
            bulk=len(messages) > 1,
        )


def delete_catalog_entry(
    run: Run, rng: random.Random, names: Collection[str], *, offline: bool = False
) -> bool:
    """Delete one catalog entry of a table in ``names``; return whether there was one.

    A live process that holds the table must write it again; with none running, the next
    process to open the table must find its channel by its entries, records and all.
    """
    entries = [
        (m, b) for m, b in entries_in(run, run.catalog_id, "table") if b.get("name") in names
    ]
    if not entries:
        return False
    message, body = rng.choice(entries)
    run.emu.state.delete_message(message)
    raced = " (a raced table)" if body.get("name") in run.races else ""
    run.damaged["catalog table entries deleted" + raced + (" offline" if offline else "")] += 1
    run.note("damage", did="delete catalog entry", table=body.get("name"),
             channel=run.catalog_id, message=str(message.id), offline=offline)  # fmt: skip
    return True


async def delete_entry(run: Run, rng: random.Random) -> None:
    state = run.emu.state
    note_race_tables(run)
    roll = rng.random()
    # The catalog's entry of a table: a live process must write it again.
    if roll < 0.15 and delete_catalog_entry(run, rng, set(run.tables)):
        return
    table = rng.choice(sorted(run.tables))
    if roll < 0.3:
        snaps = entries_in(run, run.tables[table], "snap")
        if snaps:
            message, body = rng.choice(snaps)
            state.delete_message(message)
            run.damaged["snapshots deleted"] += 1
            if int(body.get("parts", 1)) > 1:
                run.damaged["parts of multi-part snapshots deleted"] += 1
            run.note("damage", did="delete snapshot", table=table,
                     channel=run.tables[table], message=str(message.id))  # fmt: skip
            return
    entries = entries_in(run, run.tables[table])[-RECENT:]
    if entries:
        _delete_log_entries(run, table, [rng.choice(entries)[0]], offline=False)


async def delete_entries_bulk(run: Run, rng: random.Random) -> None:
    note_race_tables(run)
    table = rng.choice(sorted(run.tables))
    entries = entries_in(run, run.tables[table])[-RECENT:]
    if len(entries) >= 2:
        chosen = rng.sample(entries, rng.randint(2, min(4, len(entries))))
        _delete_log_entries(run, table, sorted((m for m, _ in chosen), key=lambda m: m.id),
                            offline=False)  # fmt: skip


async def rename_catalog(run: Run, rng: random.Random) -> None:
    # Away from its name, or back to it: a process that opens meanwhile must find it by its
    # entries and report it.
    state = run.emu.state
    channel = state.channels[run.catalog_id]
    name = f"renamed-{rng.randrange(10**4)}" if channel.name == CATALOG else CATALOG
    state.update_channel(channel, {"name": name})
    run.renames.append((time.monotonic(), name))
    run.damaged["catalog renamed" if name != CATALOG else "catalog renamed back"] += 1
    run.note("damage", did="rename catalog", channel=run.catalog_id, name=name)


async def rename_to_discobase(run: Run, rng: random.Random) -> None:
    # Another channel (a table's, or #general) takes the catalog's name: it must be passed
    # over, since it holds no catalog entries.
    state = run.emu.state
    guild = state.guilds[run.guild_id]
    others = [
        state.channels[c]
        for c in guild.channel_ids
        if c != run.catalog_id and state.channels[c].type == 0 and state.channels[c].name != CATALOG
    ]
    if others:
        channel = rng.choice(others)
        state.update_channel(channel, {"name": CATALOG})
        run.damaged["other channel renamed to discobase"] += 1
        run.note("damage", did="rename to discobase", channel=channel.id)


async def damage_offline(run: Run, rng: random.Random) -> None:
    """Delete log entries while no process runs: one of each table, sometimes a newest one.

    The next process to open the table must report each by id, except one that no later
    entry names (the newest, for one): that leaves no trace (docs/guarantees.md, Limits).
    """
    note_race_tables(run)
    for table in sorted(run.tables):
        entries = entries_in(run, run.tables[table])
        older = entries[-RECENT:-1]
        if older:
            _delete_log_entries(run, table, [rng.choice(older)[0]], offline=True)
    if rng.random() < 0.5:
        table = rng.choice(sorted(run.tables))
        entries = entries_in(run, run.tables[table])
        if entries:
            _delete_log_entries(run, table, [entries[-1][0]], offline=True)
    # The newest entry deleted last may have been the one that named an older deleted one:
    # each offline deletion is judged against the log the second fresh process reads.
    for table, channel_id in run.tables.items():
        prevs = {m for _, body in entries_in(run, channel_id) for m in names_of(body)}
        for record in run.deleted:
            if record.offline and record.table == table:
                record.named = record.message in prevs
    # A table's catalog entry, in half the runs (a raced table's when there is one): the
    # second fresh process must find the table's channel by its entries.
    if rng.random() < 0.5:
        raced = [t for t in run.races if t in run.tables]
        delete_catalog_entry(run, rng, raced or set(run.tables), offline=True)


#: The deliberate-damage kinds, drawn only with ``--damage`` (or named in ``--faults``).
DAMAGE_KINDS = frozenset({"delete_entry", "delete_entries_bulk", "rename_catalog",
                          "rename_to_discobase"})  # fmt: skip
