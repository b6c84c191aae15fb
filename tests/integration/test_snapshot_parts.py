"""Snapshots of any size: several messages, written atomically, found by a fresh reader."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from discobase.storage import Limits, Put, StorageEngine, codec
from discobase.storage.snapshots import prior_parts
from tests.conftest import TIME_SCALE
from tests.helpers import eventually
from tests.integration.test_storage_engine import SPEC, DyingHTTP, World, gather, user

# Files of 1 KiB, two per message: a snapshot of a few hundred padded records needs several.
SMALL = Limits(file_limit=1024, max_files=2, request_limit=2048)


def padded(i: int, rng: random.Random) -> dict[str, Any]:
    # Random hex compresses badly, so the snapshot's stream stays large.
    return user(i, pad=rng.randbytes(24).hex())


def snap_messages(world: World, channel_id: int) -> list[Any]:
    return [m for m in world.channel_messages(channel_id) if '"t":"snap"' in m.content]


def headers(world: World, channel_id: int) -> list[codec.Header]:
    out = []
    for m in snap_messages(world, channel_id):
        message = {
            "id": m.id,
            "type": 0,
            "author": {"id": str(world.bot.id)},
            "content": m.content,
            "attachments": [{"filename": a.filename, "url": "-"} for a in m.attachments],
        }
        header = codec.parse_header(message, int(world.bot.id))
        assert header is not None
        out.append(header)
    return out


async def write(store: Any, rng: random.Random, start: int, count: int) -> None:
    for first in range(start, start + count, 50):
        await gather(
            [store.submit([Put(store.new_id(), padded(i, rng)) for i in range(first, first + 50)])]
        )


def gets(emulator: Any) -> int:
    return int(
        emulator.stats()["requests_by_route"].get(
            "GET /channels/{channel_id}/messages/{message_id}", 0
        )
    )


async def test_a_snapshot_larger_than_a_message_is_written_in_parts_and_reopens(
    emulator: Any,
) -> None:
    world = World(emulator)
    rng = random.Random(1)
    async with world.node(limits=SMALL, snapshot_ops=300) as engine:
        store = await engine.open_table(SPEC)
        await write(store, rng, 0, 400)
        await eventually(lambda: store.snapshots_written >= 1)
        await engine.flush()
        expected = dict(store.records())
    snaps = headers(world, store.channel_id)
    last = [h for h in snaps if h.parts > 1 and h.part == h.parts - 1][-1]
    assert last.parts >= 3, "the snapshot needs several messages"
    parts = [h for h in snaps if h.batch == last.batch]
    assert [h.part for h in parts] == list(range(last.parts))
    assert prior_parts(last) == [h.message_id for h in parts[:-1]]
    # Only the last part is pinned, and the catalog names it.
    pinned = {int(i["message"]["id"]) for i in (await _pins(world, store.channel_id))["items"]}
    assert last.message_id in pinned and not pinned & set(prior_parts(last))
    # A fresh reader, with Discord's own limits, finds it and fetches the other parts.
    before = gets(emulator)
    async with world.node() as again:
        store2 = await again.open_table(SPEC)
        assert dict(store2.records()) == expected
        assert store2.position.read_from >= int(last.body["from"])
    assert gets(emulator) - before >= last.parts - 1


async def _pins(world: World, channel_id: int) -> Any:
    async with world.node(opened=False) as engine:
        return await engine.http.fetch_pins(channel_id)


async def test_a_snapshot_whose_writer_died_before_its_last_part_is_never_used(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(emulator)
    rng = random.Random(2)
    async with world.node(limits=SMALL, snapshot_ops=10**9) as engine:
        store = await engine.open_table(SPEC)
        await write(store, rng, 0, 300)
    async with DyingHTTP(world.bot.token, api_url=emulator.url, time_scale=TIME_SCALE) as http:
        dying = StorageEngine(
            http,
            guild_id=world.guild_id,
            bot_id=int(world.bot.id),
            limits=SMALL,
            time_scale=TIME_SCALE,
            snapshot_ops=10**9,
        )
        await dying.open()
        store = await dying.open_table(SPEC)
        dying.snapshot_ops = 1
        # The write goes out, then the snapshot's first part; the process dies before the
        # rest.
        http.survive = 2
        with caplog.at_level(logging.ERROR, "discobase.storage"):
            await gather([store.submit([Put(store.new_id(), padded(999, rng))])])
            await eventually(lambda: store._snapshot_task is None)
        expected = dict(store.records())
        await dying.close()
    assert store.snapshots_written == 0
    snaps = headers(world, store.channel_id)
    assert len(snaps) == 1 and snaps[0].part == 0 and snaps[0].parts >= 2
    assert not (await _pins(world, store.channel_id))["items"]
    async with world.node() as again:
        store2 = await again.open_table(SPEC)
        assert dict(store2.records()) == expected
        assert store2.position.read_from == 0 or store2.count() == len(expected)


async def test_a_snapshot_missing_a_part_gives_way_to_an_older_one_or_the_log(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(emulator)
    rng = random.Random(3)
    async with world.node(limits=SMALL, snapshot_ops=300) as engine:
        store = await engine.open_table(SPEC)
        await write(store, rng, 0, 350)
        await eventually(lambda: store.snapshots_written >= 1)
        await write(store, rng, 350, 350)
        await eventually(lambda: store.snapshots_written >= 2)
        await engine.flush()
        expected = dict(store.records())
    snaps = [h for h in headers(world, store.channel_id) if h.parts > 1]
    newest = [h for h in snaps if h.part == h.parts - 1][-1]
    async with world.node(opened=False) as engine:
        await engine.http.delete_message(store.channel_id, prior_parts(newest)[0])
    with caplog.at_level(logging.WARNING, "discobase.storage"):
        async with world.node() as again:
            store2 = await again.open_table(SPEC)
            assert dict(store2.records()) == expected
    assert any(
        "could not be read" in r.getMessage() and str(newest.message_id) in r.getMessage()
        for r in caplog.records
    )
