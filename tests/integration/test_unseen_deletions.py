"""An entry deleted before a live process read it, while its writer is gone.

The writer would have written it again (it held it); with the writer dead, the live reader
holds nothing of it: its create was withheld, and the entry is deleted before the next gap
check. The reader must then either find the entry's records in a snapshot written meanwhile
and write them again (so it holds what a fresh process loads), or note the loss in the
catalog so that every later open names it. Both failed before: the reader stayed silent,
and with a snapshot holding the entry it disagreed with every fresh process for good.
"""

from __future__ import annotations

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
            lambda: any(str(entry) in line and "missing" in line for line in reader.damage),
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
        assert any(
            str(entry) in line and "written again" in line for line in reader.damage
        ), reader.damage
        assert not reader.loss_noted(SPEC.name, entry)
        (repair,) = log_entries(world, live.channel_id)
        assert repair != entry
    emulator.gateway.clear_dispatch_faults()
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.get(rid) == user(1)
        assert not [line for line in fresh.damage if str(entry) in line]
