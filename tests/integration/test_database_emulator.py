"""The public API against the local Discord over real sockets: start-up, writes, live sync."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pytest

import discobase
from discobase.errors import GuildNotFound, TableNotBuilt
from tests.conftest import TIME_SCALE
from tests.helpers import WAIT, eventually, identify_window, make_db


async def test_save_find_update_delete_round_trip(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("My discord database", bots=[bot])
    db = make_db(emulator)

    @db.table
    class User(discobase.Table):
        name: Annotated[str, discobase.Index()]
        password: str

    async with asyncio.timeout(WAIT), db.conn(bot.token):
        peter = await User(name="Peter", password="foobar").save()
        assert peter.id is not None
        assert [u.password for u in User.find(name="Peter")] == ["foobar"]
        peter.password = "changed"
        await peter.update()
        assert (await User.get(peter.id)).password == "changed"
        await peter.delete()
        assert User.count() == 0
    assert not db.is_ready


async def test_records_survive_a_new_login(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("persist", bots=[bot])
    db = make_db(emulator, "persist")

    @db.table
    class Note(discobase.Table):
        text: str

    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            await Note.save_many([Note(text=f"n{i}") for i in range(30)])
        await identify_window()
        async with db.conn(bot.token):
            assert sorted(n.text for n in Note.find()) == sorted(f"n{i}" for i in range(30))


def item_table(db: discobase.Database) -> type[Any]:
    """Define a table named ``item`` on ``db`` (a class belongs to one database)."""

    @db.table
    class Item(discobase.Table):
        label: str

    return Item


@pytest.mark.slow
async def test_two_databases_see_each_others_writes(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("shared", bots=[bot])
    first, second = make_db(emulator, "shared"), make_db(emulator, "shared")
    item_a, item_b = item_table(first), item_table(second)
    async with asyncio.timeout(WAIT):
        # Opened one after the other so that both adopt one channel for the table.
        async with first.conn(bot.token):
            pass
        await identify_window()
        async with first.conn(bot.token), second.conn(bot.token):
            await item_a(label="from first").save()
            await eventually(lambda: item_b.count() == 1)
            await item_b(label="from second").save()
            await eventually(lambda: item_a.count() == 2)
            assert sorted(i.label for i in item_a.find()) == ["from first", "from second"]
            assert [i.id for i in item_a.find()] == [i.id for i in item_b.find()]
            (mine,) = item_b.find(label="from first")
            mine.label = "edited by second"
            await mine.update()
            await eventually(lambda: item_a.count(label="edited by second") == 1)


async def test_a_missing_guild_raises_at_wait_ready_with_the_invite_link(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    db = make_db(emulator, "nowhere")
    async with asyncio.timeout(WAIT):
        db.login_task(bot.token)
        with pytest.raises(GuildNotFound) as caught:
            await db.wait_ready()
    message = str(caught.value)
    assert "July 2025" in message
    assert f"client_id={bot.application_id}&scope=bot&permissions=" in message
    assert bot.token not in message


async def test_the_legacy_create_guild_is_tried_once(emulator: Any) -> None:
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE, allow_guild_create=True) as legacy:
        bot = legacy.create_bot("db")
        db = make_db(legacy, "brand new")
        async with asyncio.timeout(WAIT), db.conn(bot.token):
            assert db.guild_id is not None
        assert [g.name for g in legacy.state.guilds_for_bot(bot.id)] == ["brand new"]


async def test_two_guilds_of_one_name_ask_for_guild_id(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("twin", bots=[bot])
    second = emulator.create_guild("twin", bots=[bot])
    db = make_db(emulator, "twin")
    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.AmbiguousGuild, match="guild_id"):
            async with db.conn(bot.token):
                pass
        chosen = make_db(emulator, "twin", guild_id=second)
        async with chosen.conn(bot.token):
            assert chosen.guild_id == int(second)


async def test_a_bad_token_raises_at_wait_ready(emulator: Any) -> None:
    db = make_db(emulator)
    async with asyncio.timeout(WAIT):
        db.login_task("not-a-token")
        with pytest.raises(discobase.InvalidToken) as caught:
            await db.wait_ready()
    assert "not-a-token" not in f"{caught.value} {caught.value!r} {db!r}"


async def test_a_late_table_needs_build_tables(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("late", bots=[bot])
    db = make_db(emulator, "late")
    async with asyncio.timeout(WAIT), db.conn(bot.token):

        @db.table
        class Late(discobase.Table):
            x: int

        with pytest.raises(TableNotBuilt):
            Late(x=1).save()
        await db.build_tables()
        await Late(x=1).save()


async def test_a_human_message_in_a_table_channel_is_ignored(emulator: Any) -> None:
    from discobase.storage import Put
    from discobase.storage.codec import encode_op, inline_content

    bot = emulator.create_bot("db")
    guild_id = emulator.create_guild("humans", bots=[bot])
    db = make_db(emulator, "humans")

    @db.table
    class Msg(discobase.Table):
        text: str

    async with asyncio.timeout(WAIT):
        async with db.conn(bot.token):
            await Msg(text="real").save()
            state = emulator.state
            channel = next(
                c
                for c in state.channels.values()
                if str(c.guild_id) == str(guild_id) and c.name == "msg"
            )
            human = state.guilds[str(guild_id)].owner_id
            # A human pastes something that looks exactly like an entry, and some chat.
            forged = inline_content([encode_op(Put(42, {"text": "forged"}))])
            state.create_message(channel, human, content=forged)
            state.create_message(channel, human, content="hello @everyone")
            await Msg(text="second").save()
            assert sorted(m.text for m in Msg.find()) == ["real", "second"]
        await identify_window()
        async with db.conn(bot.token):
            assert sorted(m.text for m in Msg.find()) == ["real", "second"]


async def test_a_missing_permission_raises_at_wait_ready(emulator: Any) -> None:
    from discobase.database import PERMISSIONS

    bot = emulator.create_bot("db")
    manage_channels = 1 << 4
    emulator.create_guild("locked", bots=[bot], permissions=PERMISSIONS & ~manage_channels)
    db = make_db(emulator, "locked")

    @db.table
    class Thing(discobase.Table):
        x: int

    async with asyncio.timeout(WAIT):
        db.login_task(bot.token)
        with pytest.raises(discobase.MissingPermissions, match="Manage Channels"):
            await db.wait_ready()
    with pytest.raises(discobase.NotConnected):
        Thing.find()


async def test_conn_closes_when_the_block_raises(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("raises", bots=[bot])
    db = make_db(emulator, "raises")

    @db.table
    class Thing(discobase.Table):
        x: int

    async with asyncio.timeout(WAIT):
        with pytest.raises(RuntimeError, match="in the block"):
            async with db.conn(bot.token):
                Thing(x=1).save()  # not awaited: close() still waits for it
                raise RuntimeError("in the block")
        assert not db.is_ready
        await identify_window()
        async with db.conn(bot.token):
            assert [t.x for t in Thing.find()] == [1]


async def test_close_during_start_stops_the_login(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("early close", bots=[bot])
    db = make_db(emulator, "early close")
    async with asyncio.timeout(WAIT):
        task = db.login_task(bot.token)
        await asyncio.sleep(0)
        await db.close()
        assert task.done()
        with pytest.raises(discobase.NotConnected):
            await db.wait_ready()


async def test_logging_true_prints_readable_lines_and_false_prints_nothing(
    emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    bot = emulator.create_bot("db")
    emulator.create_guild("quiet", bots=[bot])
    async with asyncio.timeout(WAIT), make_db(emulator, "quiet").conn(bot.token):
        pass
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    from discobase import _logging

    # The handler is made once per process, bound to the stderr of that moment: this test
    # needs the first one. tests/conftest.py removes it again after every test.
    assert _logging._handler is None and not logging.getLogger("discobase").handlers
    await identify_window()
    async with asyncio.timeout(WAIT), make_db(emulator, "quiet", logging=True).conn(bot.token):
        pass
    assert "database 'quiet' ready" in capsys.readouterr().err


@pytest.mark.slow
async def test_databases_converge_after_the_gateway_sessions_end(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("reconnects", bots=[bot])
    first, second = make_db(emulator, "reconnects"), make_db(emulator, "reconnects")
    item_a, item_b = item_table(first), item_table(second)
    async with asyncio.timeout(WAIT):
        async with first.conn(bot.token):
            pass
        await identify_window()
        async with first.conn(bot.token), second.conn(bot.token):
            await item_a(label="before").save()
            await eventually(lambda: item_b.count() == 1)
            # Both sessions end for good: each process identifies again and may have
            # missed what was written meanwhile, which it reads back over REST.
            await emulator.gateway.send_invalid_session(False, bot.id)
            await item_a.save_many([item_a(label=f"during {i}") for i in range(20)])
            await emulator.gateway.drop(bot.id)
            await item_a(label="after").save()
            await eventually(lambda: item_b.count() == 22)
            assert sorted(i.label for i in item_b.find()) == sorted(i.label for i in item_a.find())


@pytest.mark.slow
async def test_an_unreachable_gateway_raises_at_wait_ready(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("no gateway", bots=[bot])
    emulator.gateway.delay_dispatches(1e6)  # REST answers; READY never comes
    db = make_db(emulator, "no gateway", start_timeout=1.0)
    async with asyncio.timeout(WAIT):
        db.login_task(bot.token)
        with pytest.raises(discobase.StartTimeout, match="not ready after 1 s"):
            await db.wait_ready()


async def test_wait_ready_raises_a_fatal_close_while_the_database_still_flushes(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    bot = emulator.create_bot("db")
    emulator.create_guild("fatal", bots=[bot])
    db = make_db(emulator, "fatal")
    thing = item_table(db)
    async with asyncio.timeout(WAIT):
        runner = db.login_task(bot.token)
        await db.wait_ready()
        # A save that waits out a 429 (0.5 s here) holds the stop open while it flushes:
        # wait_ready() is called in that window, not after the stop is over.
        emulator.fail_next("POST", r"/channels/\d+/messages", 429, retry_after=50.0)
        saving = thing(label="flushed").save()
        await eventually(lambda: emulator.stats()["faults_injected"] == 1, "the 429")
        with caplog.at_level(logging.ERROR, logger="discobase"):
            assert await emulator.gateway.drop(bot.id, close_code=4004) == 1
            await eventually(lambda: not db.is_ready, "the database to stop")
            with pytest.raises(discobase.GatewayError) as info:
                await db.wait_ready()  # was NotConnected("closed before it was ready")
        assert getattr(info.value, "code", None) == 4004
        assert runner.done() and runner.exception() is info.value
        # Handed to its caller, not only logged ("database 'fatal' stopped: ...").
        assert not [r for r in caplog.records if r.name.startswith("discobase")]
        assert (await saving).id is not None  # the stop still flushed the write


async def test_a_guild_id_the_bot_is_not_in_raises_with_the_invite_link(emulator: Any) -> None:
    bot, other = emulator.create_bot("db"), emulator.create_bot("other")
    elsewhere = emulator.create_guild("elsewhere", bots=[other])
    db = make_db(emulator, "elsewhere", guild_id=elsewhere)
    async with asyncio.timeout(WAIT):
        with pytest.raises(GuildNotFound, match=f"guild {elsewhere}.*client_id="):
            async with db.conn(bot.token):
                pass


async def test_removal_from_the_guild_is_logged(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    bot = emulator.create_bot("db")
    guild_id = emulator.create_guild("kicked", bots=[bot])
    db = make_db(emulator, "kicked")
    with caplog.at_level(logging.ERROR, logger="discobase"):
        async with asyncio.timeout(WAIT), db.conn(bot.token):
            emulator.remove_bot_from_guild(guild_id, bot)
            await eventually(lambda: any("removed" in r.getMessage() for r in caplog.records))
