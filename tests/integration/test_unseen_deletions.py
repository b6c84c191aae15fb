"""An entry deleted before a live process read it, while its writer is gone.

The writer would have written it again (it held it); with the writer dead, the live reader
holds nothing of it: its create was withheld, and the entry is deleted before the next gap
check. The reader must then either find the entry's records in a snapshot written meanwhile
and write them again (so it holds what a fresh process loads), or note the loss in the
catalog so that every later open names it. Both failed before: the reader stayed silent,
and with a snapshot holding the entry it disagreed with every fresh process for good.
"""

from __future__ import annotations

import asyncio
from typing import Any

from discobase.http import HTTPClient
from discobase.storage import Put
from tests.conftest import TIME_SCALE
from tests.helpers import eventually
from tests.integration.storage_world import SPEC, World, gather, user


def log_entries(world: World, channel_id: int) -> list[int]:
    return [
        int(m.id)
        for m in world.channel_messages(channel_id)
        if m.content.startswith('{"discobase":1,"t":"log"')
    ]


def says(engine: Any, entry: int, words: str) -> bool:
    """Return whether one of the engine's damage reports names ``entry`` and says ``words``."""
    return any(str(entry) in line and words in line for line in engine.damage)


async def delete_as_member(world: World, channel_id: int, message_id: int) -> None:
    async with HTTPClient(
        world.bot.token, api_url=world.emu.url, time_scale=TIME_SCALE
    ) as member:  # a member with Manage Messages
        await member.delete_message(channel_id, message_id)


async def test_an_entry_nobody_read_is_noted_lost_and_every_later_open_names_it(
    emulator: Any,
) -> None:
    world = World(emulator)
    async with world.node(gateway=True, gap_check_interval=3600) as reader:
        live = await reader.open_table(SPEC)
        emulator.gateway.withhold_dispatches("MESSAGE_CREATE")
        async with world.node() as writer:
            store = await writer.open_table(SPEC)
            rid = store.new_id()
            await gather([store.submit([Put(rid, user(1))])])
        (entry,) = log_entries(world, live.channel_id)
        await delete_as_member(world, live.channel_id, entry)
        await eventually(
            lambda: says(reader, entry, "missing"),
            "the reader's report",
        )
        await eventually(lambda: reader.loss_noted(SPEC.name, entry), "the note in the catalog")
        assert live.get(rid) is None
    emulator.gateway.clear_dispatch_faults()
    for _ in range(2):
        async with world.node() as fresh:
            store = await fresh.open_table(SPEC)
            assert store.get(rid) is None
            (line,) = [line for line in fresh.damage if str(entry) in line]
            assert f"channel {store.channel_id}" in line and "'user'" in line
            assert "missing" in line


async def test_an_entry_nobody_read_is_written_again_from_a_snapshot_that_holds_it(
    emulator: Any,
) -> None:
    world = World(emulator)
    async with world.node(gateway=True, gap_check_interval=3600) as reader:
        live = await reader.open_table(SPEC)
        emulator.gateway.withhold_dispatches("MESSAGE_CREATE")
        async with world.node(snapshot_messages=1) as writer:
            store = await writer.open_table(SPEC)
            rid = store.new_id()
            await gather([store.submit([Put(rid, user(1))])])
            # The writer snapshots the entry, then dies before anyone deletes it.
            await eventually(lambda: store.snapshots_written >= 1, "the writer's snapshot")
        (entry,) = log_entries(world, live.channel_id)
        await delete_as_member(world, live.channel_id, entry)
        await eventually(lambda: live.get(rid) == user(1), "the record, from the snapshot")
        await eventually(
            lambda: says(reader, entry, "written again"),
            "the repair entry",
        )
        assert not reader.loss_noted(SPEC.name, entry)
        (repair,) = log_entries(world, live.channel_id)
        assert repair != entry
    emulator.gateway.clear_dispatch_faults()
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.get(rid) == user(1)
        assert not [line for line in fresh.damage if str(entry) in line]


async def test_a_late_dispatch_of_an_entry_the_log_read_passed_is_still_applied(
    emulator: Any,
) -> None:
    """The entry's create comes after a REST read went past its place (it was deleted
    first): the read position says "held", but it never was; it must be applied."""
    world = World(emulator)
    async with world.node(gateway=True, gap_check_interval=3600) as reader:
        live = await reader.open_table(SPEC)
        emulator.gateway.delay_dispatches(3600, "MESSAGE_CREATE", count=1)
        emulator.gateway.withhold_dispatches(["MESSAGE_DELETE", "MESSAGE_DELETE_BULK"])
        async with world.node() as writer:
            store = await writer.open_table(SPEC)
            rid, later = store.new_id(), store.new_id()
            await gather([store.submit([Put(rid, user(1))])])
            (entry,) = log_entries(world, live.channel_id)
            await delete_as_member(world, live.channel_id, entry)
            await asyncio.sleep(10 * TIME_SCALE)  # past the read's lag behind the newest entry
            await gather([store.submit([Put(later, user(2))])])
        # The second entry names the first as its prev: the reader reads the log at once.
        await eventually(lambda: live.get(later) == user(2), "the second entry")
        await eventually(lambda: live.position.contiguous > entry, "the read past the first")
        emulator.gateway.clear_dispatch_faults()  # the first entry's create, late
        await eventually(lambda: live.get(rid) == user(1), "the late entry")


async def test_a_repair_older_than_a_snapshot_that_missed_its_entry_is_applied(
    emulator: Any,
) -> None:
    """A snapshot written by a process that never read a deleted entry starts after it; the
    repair written later carries the entry's records at its old version. A fresh process
    must still apply it over the snapshot's older record."""
    world = World(emulator)
    async with world.node() as writer, world.node(snapshot_messages=2) as other:
        store = await writer.open_table(SPEC)
        seen = await other.open_table(SPEC)
        rid, later = store.new_id(), store.new_id()
        await gather([store.submit([Put(rid, user(1))])])
        await seen.check()  # the other process holds the first version
        await gather([store.submit([Put(rid, user(1, age=99))])])
        entries = log_entries(world, store.channel_id)
        await delete_as_member(world, store.channel_id, entries[-1])  # nobody else read it
        await asyncio.sleep(10 * TIME_SCALE)  # past the read's lag behind the newest entry
        await gather([store.submit([Put(later, user(2))])])
        await seen.check()  # reads the third entry: its snapshot starts after the deleted one
        await eventually(lambda: seen.snapshots_written >= 1, "the other's snapshot")
        assert seen.get(rid) == user(1)
        store.on_deleted([entries[-1]])  # the writer saw it go (its event, in a live process)
        await eventually(lambda: any("written again" in line for line in writer.damage), "repair")
    async with world.node() as fresh:
        reopened = await fresh.open_table(SPEC)
        assert reopened.get(rid) == user(1, age=99)
        assert reopened.get(later) == user(2)


async def test_an_entry_whose_both_events_were_lost_is_found_by_the_next_entry_naming_it(
    emulator: Any,
) -> None:
    """Neither the create nor the delete reached the reader, and the writer is gone; but the
    writer's next entry names the deleted one as its prev, so the reader's gap check knows
    an entry is missing from the log and notes the loss for every later open."""
    world = World(emulator)
    async with world.node(gateway=True, gap_check_interval=3600) as reader:
        live = await reader.open_table(SPEC)
        emulator.gateway.withhold_dispatches(
            ["MESSAGE_CREATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK"]
        )
        async with world.node() as writer:
            store = await writer.open_table(SPEC)
            rid, later = store.new_id(), store.new_id()
            await gather([store.submit([Put(rid, user(1))])])
            (entry,) = log_entries(world, live.channel_id)
            await delete_as_member(world, live.channel_id, entry)
            await asyncio.sleep(10 * TIME_SCALE)  # past the read's lag behind the newest entry
            await gather([store.submit([Put(later, user(2))])])  # its prev: the deleted one
        await live.check()  # the next gap check
        assert live.get(later) == user(2)
        await eventually(lambda: reader.loss_noted(SPEC.name, entry), "the note in the catalog")
        assert says(reader, entry, "missing")


async def test_an_entry_before_a_snapshots_replay_position_is_found_by_its_version(
    emulator: Any,
) -> None:
    """The snapshot that holds the deleted entry's records starts after it (its writer read
    past it), so its skip list does not name it; its records' versions still do."""
    world = World(emulator)
    async with world.node(gateway=True, gap_check_interval=3600) as reader:
        live = await reader.open_table(SPEC)
        emulator.gateway.withhold_dispatches("MESSAGE_CREATE")
        async with world.node() as writer, world.node(snapshot_messages=2) as other:
            store = await writer.open_table(SPEC)
            seen = await other.open_table(SPEC)
            rid, later = store.new_id(), store.new_id()
            await gather([store.submit([Put(rid, user(1))])])
            await asyncio.sleep(10 * TIME_SCALE)  # past the read's lag behind the newest entry
            await gather([store.submit([Put(later, user(2))])])
            await seen.check()  # reads both: its snapshot starts after the first
            await eventually(lambda: seen.snapshots_written >= 1, "the other's snapshot")
        entry = log_entries(world, live.channel_id)[0]
        await delete_as_member(world, live.channel_id, entry)
        await eventually(lambda: live.get(rid) == user(1), "the record, from the snapshot")
        await eventually(
            lambda: says(reader, entry, "written again"),
            "the repair entry",
        )
    emulator.gateway.clear_dispatch_faults()
    async with world.node() as fresh:
        assert (await fresh.open_table(SPEC)).get(rid) == user(1)


async def test_an_entry_noted_lost_is_written_again_when_its_late_dispatch_comes(
    emulator: Any,
) -> None:
    """The reader saw the delete first and, nobody having repaired it, noted the entry lost;
    then the entry's create arrives after all. It holds the records now: it writes them
    again, and later opens have them instead of reporting them missing."""
    world = World(emulator)
    async with world.node(gateway=True, gap_check_interval=3600) as reader:
        live = await reader.open_table(SPEC)
        emulator.gateway.delay_dispatches(3600, "MESSAGE_CREATE", count=1)
        async with world.node() as writer:
            store = await writer.open_table(SPEC)
            rid = store.new_id()
            await gather([store.submit([Put(rid, user(1))])])
        (entry,) = log_entries(world, live.channel_id)
        await delete_as_member(world, live.channel_id, entry)
        await eventually(lambda: reader.loss_noted(SPEC.name, entry), "the loss note")
        emulator.gateway.clear_dispatch_faults()  # the create, late
        await eventually(lambda: live.get(rid) == user(1), "the late entry")
        await eventually(
            lambda: says(reader, entry, "written again"),
            "the repair entry",
        )
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.get(rid) == user(1)
        assert not says(fresh, entry, "missing")


async def test_a_process_that_opens_holding_an_entry_noted_lost_writes_it_again(
    emulator: Any,
) -> None:
    """A process that held nothing noted the entry lost; a snapshot written by one that held
    it still has its records. The next process to open from that snapshot writes them again
    instead of repeating the loss, and the one after it finds them and no loss."""
    world = World(emulator)
    async with world.node(snapshot_messages=1) as writer:
        store = await writer.open_table(SPEC)
        rid = store.new_id()
        await gather([store.submit([Put(rid, user(1))])])
        await eventually(lambda: store.snapshots_written >= 1, "the writer's snapshot")
        (entry,) = log_entries(world, store.channel_id)
        body = {"table": SPEC.name, "channel": str(store.channel_id), "message": str(entry)}
        await writer.post_catalog("loss", body)  # as a process holding nothing would
    await delete_as_member(world, store.channel_id, entry)
    async with world.node() as opener:
        reopened = await opener.open_table(SPEC)
        assert reopened.get(rid) == user(1)
        await eventually(
            lambda: says(opener, entry, "written again"),
            "the repair entry",
        )
        assert not [line for line in opener.damage if "missing" in line]
    async with world.node() as fresh:
        assert (await fresh.open_table(SPEC)).get(rid) == user(1)
        assert not [line for line in fresh.damage if str(entry) in line]
