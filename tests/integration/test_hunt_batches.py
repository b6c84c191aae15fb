"""Hunting lost writes in multi-part batches: a batch whose parts take long to post."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from discobase.http import HTTPClient
from discobase.storage import Limits, Put, StorageEngine
from discobase.storage.own import OwnWrites
from discobase.storage.repair import post_repair
from discobase.storage.snapshot import BATCH_WINDOW_MS
from tests.conftest import TIME_SCALE
from tests.helpers import eventually
from tests.integration.storage_world import SPEC, World, gather, user

# One 1 KiB file per message: a few hundred records need several parts.
SMALL = Limits(file_limit=1024, max_files=1, request_limit=1024)


class SlowUplink(HTTPClient):
    """An HTTP client whose message creates stall, after ``free`` of them, until ``gate`` opens
    (a part of a large batch uploading over a slow link)."""

    free = 1_000_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.stalled = asyncio.Event()

    async def create_message(self, channel_id: int | str, **kwargs: Any) -> Any:
        if self.free <= 0:
            self.stalled.set()
            await self.gate.wait()
        self.free -= 1
        return await super().create_message(channel_id, **kwargs)


async def slow_batch_behind_a_snapshot(emulator: Any) -> tuple[World, list[Put], int, int]:
    """W posts a large batch; its second part takes more than ``BATCH_WINDOW_MS`` to upload.
    Meanwhile R reads the first part and writes a snapshot, which takes the batch for
    abandoned and starts replay after its first part. Returns the world, W's acknowledged
    operations, the id of a record R wrote meanwhile, and the table's channel."""
    world = World(emulator)
    async with world.node() as setup:
        await setup.open_table(SPEC)
    async with SlowUplink(world.bot.token, api_url=emulator.url, time_scale=TIME_SCALE) as http:
        writer = StorageEngine(
            http,
            guild_id=world.guild_id,
            bot_id=int(world.bot.id),
            limits=SMALL,
            time_scale=TIME_SCALE,
            snapshot_ops=10**9,
            snapshot_messages=10**9,
            gap_check_interval=10**6,
        )
        await writer.open()
        store_w = await writer.open_table(SPEC)
        async with world.node(snapshot_messages=10**9, gap_check_interval=10**6) as reader:
            store_r = await reader.open_table(SPEC)
            http.free = 1  # the first part goes out; the second stalls on the slow link
            ops = [Put(store_w.new_id(), user(i, pad=f"{i * 7919:>40}")) for i in range(300)]
            future = store_w.submit(ops)
            await asyncio.wait_for(http.stalled.wait(), 30)
            emulator.advance(BATCH_WINDOW_MS / 1000 + 60)
            other = store_r.new_id()
            await gather([store_r.submit([Put(other, user(999))])])
            await store_r.check()  # reads the first part, and the entry 11 minutes after it
            store_r.snapshot_soon()
            await eventually(lambda: store_r.snapshots_written >= 1)
            http.gate.set()
            await asyncio.wait_for(future, 60)  # acknowledged
            assert all(store_w.get(op.id) is not None for op in ops)
        await writer.close()
    return world, ops, other, store_w.channel_id


async def test_a_batch_whose_parts_take_longer_than_the_batch_window_is_not_lost(
    emulator: Any,
) -> None:
    """Once W's write is acknowledged, a fresh process that opens from R's snapshot (its
    replay begins after the batch's first part) must hold it: the last part names the first."""
    world, ops, other, _ = await slow_batch_behind_a_snapshot(emulator)
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.get(other) == user(999)
        missing = [op.id for op in ops if store.get(op.id) is None]
        assert not missing, f"{len(missing)} records of an acknowledged batch are missing"


async def test_a_batch_whose_first_part_is_gone_behind_the_replay_is_reported(
    emulator: Any,
) -> None:
    """A member deletes the batch's first part. A fresh process that opens from R's snapshot
    never read it, so no check of the log sees it missing: the last part's fetch of it says
    so, by entry, instead of leaving the batch out without a word."""
    world, ops, other, channel_id = await slow_batch_behind_a_snapshot(emulator)
    parts = [m for m in world.channel_messages(channel_id) if '"batch"' in m.content]
    first = next(m for m in parts if '"part":0' in m.content)
    last = max(m.id for m in parts)
    emulator.state.delete_message(first)
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.get(other) == user(999)
        assert all(store.get(op.id) is None for op in ops)  # nothing partial
        assert any(
            f"entry {last} ends a batch whose part 0 (message {first.id}) is gone" in damage
            for damage in fresh.damage
        ), fresh.damage


async def test_a_repair_entry_in_several_parts_names_its_earlier_parts(emulator: Any) -> None:
    """A repair entry is a batch too: its last part names the others (prior), so that a
    reader whose read begins after them still applies it."""
    world = World(emulator)
    async with world.node() as node:
        store = await node.open_table(SPEC)
        ops: list[Any] = [Put(store.new_id(), user(i, pad=f"{i * 7919:>40}")) for i in range(300)]
        last = await post_repair(
            node.http, store.channel_id, limits=SMALL, own=OwnWrites(), gone=[1], version=1, ops=ops
        )
    parts = [m for m in world.channel_messages(store.channel_id) if '"gone"' in m.content]
    assert len(parts) > 1 and int(parts[-1].id) == last
    body = json.loads(parts[-1].content)
    assert body["prior"] == [str(m.id) for m in parts[:-1]]
