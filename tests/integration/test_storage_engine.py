"""The storage engine against the local Discord, over real loopback sockets."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from discobase.errors import NotConnected, SchemaMismatch, UniqueViolation
from discobase.http import HTTPClient
from discobase.http.errors import ServerError
from discobase.storage import Delete, Limits, Put, StorageEngine, TableSpec, codec
from discobase.storage.outgoing import PREV_ROOM, plan_messages, post
from discobase.storage.reader import fetch_stream
from discobase.storage.writer import encode_lines
from tests.conftest import TIME_SCALE
from tests.helpers import eventually
from tests.integration.storage_world import SCHEMA, SPEC, World, gather, user

ADMINISTRATOR = 1 << 3


async def test_writes_are_durable_and_reopen_identically(emulator: Any) -> None:
    world = World(emulator)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        assert await engine.open_table(SPEC) is store  # idempotent
        ids = [store.new_id() for _ in range(300)]
        futures = [store.submit([Put(i, user(n))]) for n, i in enumerate(ids)]
        assert store.count() == 0  # visible only once durable
        await gather(futures)
        assert store.count() == 300
        await gather([store.submit([Delete(ids[0]), Put(ids[1], user(1, age=99))])])
        expected = dict(store.records())
        assert list(store.lookup("email", "u5@example.com") or ()) == [ids[5]]
        writes = store.writer.messages_sent
        assert writes <= 6, writes
    async with world.node() as again:
        store2 = await again.open_table(SPEC)
        assert dict(store2.records()) == expected
        assert set(store2.lookup("name", "user3") or ()) == {
            i for i, data in expected.items() if data["name"] == "user3"
        }
    stats = emulator.stats()
    assert stats["ratelimited_by_scope"]["user"] == 0
    assert stats["ratelimited_by_scope"]["global"] == 0


# An entry keeps room for the ``prev`` it names (outgoing.PREV_ROOM) within Discord's 2000.
_INLINE_MAX = codec.CONTENT_LIMIT - PREV_ROOM


@pytest.mark.parametrize("target", [_INLINE_MAX - 1, _INLINE_MAX, _INLINE_MAX + 1])
async def test_records_at_the_content_limit_round_trip(emulator: Any, target: int) -> None:
    world = World(emulator)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        rid = store.new_id()
        probe = user(1, note="")
        overhead = codec.INLINE_OVERHEAD + len(codec.encode_op(Put(rid, probe)))
        data = user(1, note="x" * (target - overhead))
        assert len(codec.inline_content([codec.encode_op(Put(rid, data))])) == target
        await gather([store.submit([Put(rid, data)])])
        entries = [m for m in world.channel_messages(store.channel_id) if m.content.startswith("{")]
        assert len(entries) == 1
        assert bool(entries[0].attachments) == (target > _INLINE_MAX)
        assert len(entries[0].content) <= codec.CONTENT_LIMIT
    async with world.node() as again:
        assert (await again.open_table(SPEC)).get(rid) == data


async def test_awkward_text_and_a_five_megabyte_record_are_stored_exactly(emulator: Any) -> None:
    world = World(emulator)
    texts = [
        "@everyone @here <@123456789012345678> hi",
        "emoji 😀🎉 👩‍👩‍👧 🇫🇷 and CJK 漢字",
        "control \x00\x01\x07\x1b\x7f\u2028 and \r\n\t",
        "**bold** __u__ ~~s~~ ||spoiler|| `x` ```py\nprint()\n``` > quote\n# heading https://x.y",
        "   spaces around   ",
    ]
    big = user(100, blob="0123456789abcdef\u00e9" * (5 * 1024 * 1024 // 17))
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        ids = [store.new_id() for _ in texts]
        await gather(
            [
                store.submit([Put(i, user(n, note=t))])
                for n, (i, t) in enumerate(zip(ids, texts, strict=True))
            ]
        )
        big_id = store.new_id()
        await gather([store.submit([Put(big_id, big)])])
        for message in world.channel_messages(store.channel_id):
            assert not message.mention_everyone
            assert message.flags & 4 and message.flags & 4096
    async with world.node() as again:
        store2 = await again.open_table(SPEC)
        for n, (i, t) in enumerate(zip(ids, texts, strict=True)):
            assert store2.get(i) == user(n, note=t)
        assert store2.get(big_id) == big


async def test_a_500_after_the_create_was_stored_leaves_no_duplicate(emulator: Any) -> None:
    world = World(emulator)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        emulator.fail_next("POST", rf"/channels/{store.channel_id}/messages", 500, after_write=True)
        rid = store.new_id()
        await gather([store.submit([Put(rid, user(1))])])
        entries = [m for m in world.channel_messages(store.channel_id) if m.content.startswith("{")]
        assert len(entries) == 1
        assert store.get(rid) == user(1)
        assert emulator.stats()["faults_injected"] >= 1


class DyingHTTP(HTTPClient):
    """An HTTP client whose process dies after ``survive`` message creates."""

    survive = 1_000_000

    async def create_message(self, channel_id: int | str, **kwargs: Any) -> Any:
        if self.survive <= 0:
            raise ServerError(
                "the writer died", status=500, route="POST /channels/{channel_id}/messages"
            )
        self.survive -= 1
        return await super().create_message(channel_id, **kwargs)


async def test_a_table_that_finishes_opening_after_close_is_closed_not_kept(
    emulator: Any,
) -> None:
    # A migration reopens its table while the database may be closing: a store opened
    # after close() went through the open ones would be left running, and handed out.
    world = World(emulator)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        await gather([store.submit([Put(store.new_id(), user(1))])])
    async with world.node() as engine:
        opening = asyncio.create_task(engine.open_table(SPEC))
        await asyncio.sleep(0)  # it starts, and waits on Discord
        assert not opening.done()
        await engine.close()
        with pytest.raises(NotConnected):
            await opening
        assert "user" not in engine.tables


async def test_a_writer_killed_mid_batch_shows_nothing_partial(emulator: Any) -> None:
    world = World(emulator)
    small = Limits(file_limit=2048, max_files=2, request_limit=4096)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        before = store.new_id()
        await gather([store.submit([Put(before, user(0))])])
    async with DyingHTTP(world.bot.token, api_url=emulator.url, time_scale=TIME_SCALE) as http:
        dying = StorageEngine(http, guild_id=world.guild_id, bot_id=int(world.bot.id), limits=small)
        await dying.open()
        store = await dying.open_table(SPEC)
        http.survive = 1  # the first part goes out, then the process dies
        batch = [Put(store.new_id(), user(i + 1, pad=f"{i * 7919:>40}")) for i in range(400)]
        future = store.submit(batch)
        with pytest.raises(ServerError):
            await asyncio.wait_for(future, 60)
        assert store.count() == 1
        await dying.close()
    parts = [m for m in world.channel_messages(store.channel_id) if '"batch"' in m.content]
    assert len(parts) == 1, "exactly one part of the batch reached Discord"
    async with world.node(limits=small) as engine:
        reader = await engine.open_table(SPEC)
        assert list(reader.records()) == [before]
        # The same writer, alive, gets the whole batch through; readers then see all of it.
        await gather([reader.submit(batch)])
    async with world.node() as engine:
        assert (await engine.open_table(SPEC)).count() == 401


async def test_foreign_messages_in_a_table_channel_are_ignored(emulator: Any) -> None:
    world = World(emulator)
    other = emulator.create_bot("intruder")
    # Table channels deny members Send Messages; an administrator is not bound by that.
    emulator.add_bot_to_guild(world.guild_id, other, permissions=ADMINISTRATOR)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        await gather([store.submit([Put(store.new_id(), user(1))])])
        fake = codec.inline_content([codec.encode_op(Put(1, user(666)))])
        async with HTTPClient(other.token, api_url=emulator.url, time_scale=TIME_SCALE) as intruder:
            await intruder.create_message(store.channel_id, content=fake)  # another bot
            await intruder.create_message(store.channel_id, content="hello people")
        guild = emulator.state.guilds[str(world.guild_id)]
        channel = emulator.state.channels[str(store.channel_id)]
        emulator.state.create_message(channel, guild.owner_id, content=fake)  # a human
        await engine.http.create_message(store.channel_id, content="the bot, no marker")
    async with world.node() as again:
        store2 = await again.open_table(SPEC)
        assert store2.count() == 1 and store2.get(1) is None


async def test_unique_index_refuses_before_sending(emulator: Any) -> None:
    world = World(emulator)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        first = store.submit([Put(store.new_id(), user(1))])
        with pytest.raises(UniqueViolation):  # pending, not yet acknowledged
            store.submit([Put(store.new_id(), user(1))])
        await gather([first])
        with pytest.raises(UniqueViolation) as info:
            store.submit([Put(store.new_id(), user(1))])
        assert info.value.field == "email"
        sent = store.writer.messages_sent
    assert sent == 1


async def test_batch_is_one_message_per_table_and_abandoned_on_error(emulator: Any) -> None:
    world = World(emulator)
    other_spec = TableSpec(name="item", schema={"properties": {}}, fields={}, indexes={})
    async with world.node() as engine:
        users = await engine.open_table(SPEC)
        items = await engine.open_table(other_spec)
        async with engine.batch():
            futures = [users.submit([Put(users.new_id(), user(i))]) for i in range(30)]
            futures.append(items.submit([Put(items.new_id(), {})]))
            await asyncio.sleep(0.05)
            assert users.count() == 0 and users.writer.messages_sent == 0
        await gather(futures)
        assert users.writer.messages_sent == 1 and items.writer.messages_sent == 1
        with pytest.raises(RuntimeError):
            async with engine.batch():
                lost = users.submit([Put(users.new_id(), user(100))])
                raise RuntimeError("boom")
        assert lost.done() and lost.exception() is not None
        # The abandoned group freed its unique claim.
        await gather([users.submit([Put(users.new_id(), user(100))])])
        assert users.count() == 31


async def test_schema_changes(emulator: Any) -> None:
    world = World(emulator)
    async with world.node() as engine:
        await engine.open_table(SPEC)
    added = TableSpec(
        name="user",
        schema={
            **SCHEMA,
            "properties": {**SCHEMA["properties"], "nick": {"type": "string", "default": ""}},
        },
        fields={**SPEC.fields, "nick": True},
        indexes=SPEC.indexes,
    )
    async with world.node() as engine:
        await engine.open_table(added)
        assert engine.catalog is not None
        assert "nick" in engine.catalog.tables["user"].fields
    removed = TableSpec(
        name="user",
        schema={**SCHEMA, "properties": {"name": {"type": "string"}}},
        fields={"name": False},
        indexes={},
    )
    retyped = TableSpec(
        name="user",
        schema={
            **added.schema,
            "properties": {**added.schema["properties"], "age": {"type": "string"}},
        },
        fields=added.fields,
        indexes={},
    )
    bare = TableSpec(
        name="user",
        schema={
            **added.schema,
            "properties": {**added.schema["properties"], "x": {"type": "integer"}},
        },
        fields={**added.fields, "x": False},
        indexes={},
    )
    async with world.node() as engine:
        with pytest.raises(SchemaMismatch) as info:
            await engine.open_table(removed)
        # Fields records may lack (they had a default) may be left out; required ones not.
        assert set(info.value.fields) == {"email"}
        with pytest.raises(SchemaMismatch) as info:
            await engine.open_table(retyped)
        assert info.value.fields == ["age"]
        with pytest.raises(SchemaMismatch) as info:
            await engine.open_table(bare)
        assert info.value.fields == ["x"]
        assert (await engine.open_table(added)).count() == 0


async def test_snapshot_is_pinned_recorded_and_used_to_reopen(emulator: Any) -> None:
    world = World(emulator)
    async with world.node(snapshot_messages=4) as engine:
        store = await engine.open_table(SPEC)
        for round_ in range(16):
            await gather(
                [store.submit([Put(store.new_id(), user(round_ * 10 + k))]) for k in range(3)]
            )
        await eventually(lambda: store.snapshots_written >= 3)
        await engine.flush()
        expected = dict(store.records())
        assert engine.catalog is not None and "user" in engine.catalog.snapshots
    async with world.node() as again:  # closing waited for a snapshot in progress
        pins = await again.http.fetch_pins(store.channel_id)
        snaps = [i for i in pins["items"] if '"t":"snap"' in i["message"]["content"]]
        assert 1 <= len(snaps) <= 2  # older snapshots are unpinned
        store2 = await again.open_table(SPEC)
        assert dict(store2.records()) == expected


async def test_two_processes_converge_through_the_gateway(emulator: Any) -> None:
    world = World(emulator)
    async with world.node(gateway=True) as a, world.node(gateway=True) as b:
        sa, sb = await a.open_table(SPEC), await b.open_table(SPEC)
        ids = [sa.new_id() for _ in range(40)]
        futures = [sa.submit([Put(i, user(n))]) for n, i in enumerate(ids[:20])]
        futures += [sb.submit([Put(i, user(n))]) for n, i in enumerate(ids[20:], start=20)]
        # Both change the same record; the later message wins everywhere.
        futures.append(sa.submit([Put(ids[0], user(0, age=1))]))
        await gather(futures)
        await gather([sb.submit([Put(ids[0], user(0, age=2))])])
        await eventually(lambda: sa.count() == 40 and sb.count() == 40)
        await eventually(lambda: dict(sa.records()) == dict(sb.records()))
        assert sa.get(ids[0]) == user(0, age=2)
        # A process that missed events catches up over REST.
        async with world.node() as c:
            sc = await c.open_table(SPEC)
            await gather([sa.submit([Delete(ids[1])])])
            assert sc.get(ids[1]) is not None
            await c.catch_up()
            assert sc.get(ids[1]) is None
        await eventually(lambda: sb.get(ids[1]) is None)


@pytest.mark.slow
async def test_ten_thousand_concurrent_writes_share_few_requests(emulator: Any) -> None:
    world = World(emulator)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        before = emulator.stats()["requests_total"]
        futures = [store.submit([Put(store.new_id(), user(i))]) for i in range(10_000)]
        await gather(futures)
        used = emulator.stats()["requests_total"] - before
    assert store.count() == 10_000
    assert used <= 20, used
    assert emulator.stats()["ratelimited_by_scope"]["user"] == 0


async def test_a_part_posted_by_hand_without_its_partner_is_invisible(emulator: Any) -> None:
    world = World(emulator)
    small = Limits(file_limit=1024, max_files=1, request_limit=1024)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        ops = [Put(i, user(i, pad="z" * 50)) for i in range(1, 300)]
        lines = encode_lines(ops)
        plan = plan_messages(lines, sum(len(x) + 1 for x in lines), small)
        assert len(plan) >= 2
        for message in plan[:-1]:
            await post(engine.http, store.channel_id, message)
    async with world.node() as engine:
        assert (await engine.open_table(SPEC)).count() == 0
        await post(engine.http, engine.tables["user"].channel_id, plan[-1])
        await engine.catch_up()
        assert engine.tables["user"].count() == 299


async def test_processes_converge_after_a_session_that_could_not_resume(emulator: Any) -> None:
    world = World(emulator)
    async with world.node(gateway=True) as a, world.node(gateway=True) as b:
        sa, sb = await a.open_table(SPEC), await b.open_table(SPEC)
        await gather([sa.submit([Put(sa.new_id(), user(0))])])
        await eventually(lambda: sb.count() == 1)
        # Every session ends; writes made before the new sessions are up reach B only
        # through its REST catch-up.
        assert await emulator.gateway.send_invalid_session(False) >= 2
        await gather([sa.submit([Put(sa.new_id(), user(i))]) for i in range(1, 30)])
        await eventually(lambda: sb.count() == 30)
        await eventually(lambda: dict(sa.records()) == dict(sb.records()))


async def test_multi_part_batches_and_long_catalog_entries_travel_live(emulator: Any) -> None:
    world = World(emulator)
    small = Limits(file_limit=2048, max_files=2, request_limit=4096)
    wide = TableSpec(
        name="wide",
        schema={
            "properties": {f"field_{i:03d}": {"type": "string", "default": ""} for i in range(80)}
        },
        fields={f"field_{i:03d}": True for i in range(80)},
    )
    async with world.node(gateway=True, limits=small) as a, world.node(gateway=True) as b:
        sa = await a.open_table(wide)
        entries = [m for m in world.channel_messages(a.catalog.channel_id) if m.attachments]  # type: ignore[union-attr]
        assert entries, "the wide schema does not fit in content"
        sb = await b.open_table(wide)
        assert sb.channel_id == sa.channel_id
        rng = random.Random(7)
        ops = [Put(sa.new_id(), {"field_000": rng.randbytes(30).hex()}) for i in range(400)]
        await gather([sa.submit(ops)])
        parts = [m for m in world.channel_messages(sa.channel_id) if '"batch"' in m.content]
        assert len(parts) >= 2
        await eventually(lambda: sb.count() == 400)
        assert dict(sb.records()) == dict(sa.records())


async def test_an_expired_attachment_url_is_signed_again(emulator: Any) -> None:
    world = World(emulator)
    async with world.node() as engine:
        store = await engine.open_table(SPEC)
        rid = store.new_id()
        data = user(1, blob="y" * 5000)
        await gather([store.submit([Put(rid, data)])])
        [message] = [
            m for m in await engine.http.fetch_messages(store.channel_id) if m["attachments"]
        ]
        header = codec.parse_header(message, engine.bot_id)
        assert header is not None and header.files == 1
        emulator.advance(30 * 24 * 3600)  # every signed URL handed out so far has expired
        stream = await fetch_stream(engine.http, store.channel_id, [header])
        assert codec.decode_stream(stream) == [["p", str(rid), data]]
        assert emulator.stats()["cdn"]["refused"] >= 1


async def test_two_processes_creating_the_catalog_and_a_table_at_once_agree(emulator: Any) -> None:
    world = World(emulator)
    async with world.node(opened=False) as a, world.node(opened=False) as b:
        await asyncio.gather(a.open(), b.open())
        sa, sb = await asyncio.gather(a.open_table(SPEC), b.open_table(SPEC))
        assert sa.channel_id == sb.channel_id
        assert a.catalog is not None and b.catalog is not None
        assert a.catalog.channel_id == b.catalog.channel_id
        await gather([sa.submit([Put(sa.new_id(), user(1))])])
        await b.catch_up()
        assert sb.count() == 1
    guild = emulator.state.guilds[str(world.guild_id)]
    names = [
        emulator.state.channels[c].name
        for c in emulator.state.channels
        if emulator.state.channels[c].guild_id == guild.id
    ]
    assert names.count("user") == 1 and names.count("discobase") == 1


async def test_a_snapshot_never_starts_after_an_entry_its_writer_does_not_hold(
    emulator: Any,
) -> None:
    """A's write is stored but its answer never comes (500 after the write, on every retry),
    while B's entries reach A live and push it past its snapshot threshold: the snapshot
    must not start after the stored write, or every later reader loses it."""
    world = World(emulator)
    async with world.node(gateway=True, snapshot_messages=3) as a, world.node() as b:
        store_a = await a.open_table(SPEC)
        store_b = await b.open_table(SPEC)
        rid = store_a.new_id()
        emulator.fail_next("POST", r"/channels/\d+/messages", 500, count=20, after_write=True)
        with pytest.raises(ServerError):
            await store_a.submit([Put(rid, user(1))])
        emulator.clear_faults()
        for i in range(2, 7):
            await gather([store_b.submit([Put(store_b.new_id(), user(i))])])
        await eventually(lambda: store_a.snapshots_written >= 1)
    async with world.node() as fresh:
        store = await fresh.open_table(SPEC)
        assert store.get(rid) == user(1)
        assert store.count() == 6


async def test_chat_in_a_table_channel_is_left_behind_by_the_next_snapshot(
    emulator: Any,
) -> None:
    """People chatting in a table channel (an administrator is not bound by its overwrites)
    must not cost every later open a read per 100 messages for ever."""
    world = World(emulator)
    async with world.node(snapshot_messages=50) as engine:
        store = await engine.open_table(SPEC)
        await gather([store.submit([Put(store.new_id(), user(1))])])
        channel = emulator.state.channels[str(store.channel_id)]
        owner = emulator.state.guilds[str(world.guild_id)].owner_id
        for i in range(250):
            emulator.state.create_message(channel, owner, content=f"chat {i}")
        emulator.advance(10)  # the table goes on being written after the chat
        await gather([store.submit([Put(store.new_id(), user(2))])])
    async with world.node(snapshot_messages=50) as engine:
        store = await engine.open_table(SPEC)
        await eventually(lambda: store.snapshots_written == 1)
    reads = emulator.stats()["requests_by_route"]["GET /channels/{channel_id}/messages"]
    async with world.node(snapshot_messages=50) as engine:
        store = await engine.open_table(SPEC)
        assert store.count() == 2
    after = emulator.stats()["requests_by_route"]["GET /channels/{channel_id}/messages"]
    assert after - reads <= 2  # the catalog and the table's short tail, not 3 pages of chat
