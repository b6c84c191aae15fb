"""Hunting damage reports that say the wrong thing: repair entries a snapshot already holds."""

from __future__ import annotations

from typing import Any

from discobase.storage import Put
from tests.helpers import eventually
from tests.integration.storage_world import SPEC, World, gather, user


async def test_a_repair_a_snapshot_already_holds_still_stands_for_its_deleted_entry(
    emulator: Any,
) -> None:
    """A live process repairs a deleted entry, then snapshots: the snapshot lists the repair
    entry as held (``skip``). A fresh process that opens from it must still know what the
    repair stands for: it holds the records, and must not report them lost (a fresh process
    that reads the whole log does not)."""
    world = World(emulator)
    async with world.node(gateway=True, gap_check_interval=10**6) as live:
        store = await live.open_table(SPEC)
        first, second = store.new_id(), store.new_id()
        await gather([store.submit([Put(first, user(1))])])
        await gather([store.submit([Put(second, user(2))])])
        entries = [m for m in world.channel_messages(store.channel_id) if '"t":"log"' in m.content]
        gone = entries[0]
        assert f'"prev":"{gone.id}"' in entries[1].content
        emulator.state.delete_message(gone)
        await eventually(lambda: any("were written again" in d for d in live.damage))
        store.snapshot_soon()
        await eventually(lambda: store.snapshots_written >= 1)
    async with world.node() as fresh:
        fresh_store = await fresh.open_table(SPEC)
        assert fresh_store.snapshots.pinned, "it opened from the snapshot"
        assert fresh_store.get(first) == user(1)
        assert fresh_store.get(second) == user(2)
        assert not [d for d in fresh.damage if str(gone.id) in d], fresh.damage
        assert fresh_store.repaired(int(gone.id)), "the repair stands for the deleted entry"


async def test_an_entry_deleted_offline_that_a_snapshot_holds_reaches_every_process(
    emulator: Any,
) -> None:
    """An entry the newest snapshot holds is deleted while no process runs. F opens from the
    snapshot and holds its records; G cannot download the snapshot and reads the whole log,
    which lacks them. Both live, they must converge: F holds what the entry wrote, so it
    writes it again (as for an entry the catalog notes lost) instead of only reporting it."""
    world = World(emulator)
    async with world.node(gap_check_interval=10**6) as writer:
        store = await writer.open_table(SPEC)
        first, second = store.new_id(), store.new_id()
        await gather([store.submit([Put(first, user(1))])])
        await gather([store.submit([Put(second, user(2))])])
        store.snapshot_soon()
        await eventually(lambda: store.snapshots_written >= 1)
    entries = [m for m in world.channel_messages(store.channel_id) if '"t":"log"' in m.content]
    gone = entries[0]
    assert f'"prev":"{gone.id}"' in entries[1].content
    emulator.state.delete_message(gone)
    async with world.node() as f:
        store_f = await f.open_table(SPEC)
        assert store_f.snapshots.pinned, "F opened from the snapshot"
        assert store_f.get(first) == user(1)
        snaps = [m for m in world.channel_messages(store.channel_id) if '"t":"snap"' in m.content]
        blocked = "|".join(a.id for m in snaps for a in m.attachments)
        # G cannot download the snapshot (its other downloads succeed)
        emulator.fail_cdn("server_error", count=1000, path_regex=f"/({blocked})/")
        async with world.node() as g:
            store_g = await g.open_table(SPEC)
            emulator.clear_cdn_faults()
            assert store_g.get(second) == user(2)
            await eventually(lambda: store_g.get(first) == user(1), "G to hold F's records")
            await eventually(lambda: dict(store_g.records()) == dict(store_f.records()))
