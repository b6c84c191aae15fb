"""Start-up checks the bot's permissions before it reads or writes anything.

Layer: integration tests (the public API against the local Discord). Discord answers a message
read without Read Message History with ``[]``, not an error, so without the check a database
would start on an empty copy of its data, create a second channel for an existing table and
lose those writes. Start-up must instead raise ``MissingPermissions`` naming every permission
it lacks, and where.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import discobase
from discobase.database import PERMISSIONS
from tests.helpers import identify_window, make_db

WAIT = 30.0

ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
SEND_MESSAGES = 1 << 11
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
PIN_MESSAGES = 1 << 51


def tables(db: discobase.Database) -> tuple[type[Any], type[Any]]:
    @db.table
    class Note(discobase.Table):
        text: str

    @db.table
    class Tag(discobase.Table):
        label: str

    return Note, Tag


def channel_names(emu: Any, guild_id: str) -> list[str]:
    guild = emu.state.guilds[guild_id]
    return sorted(emu.state.channels[c].name for c in guild.channel_ids)


def channel_named(emu: Any, guild_id: str, name: str) -> Any:
    guild = emu.state.guilds[guild_id]
    (channel,) = [
        emu.state.channels[c] for c in guild.channel_ids if emu.state.channels[c].name == name
    ]
    return channel


def bot_role(emu: Any, guild_id: str, bot: Any) -> str:
    (role_id,) = emu.state.guilds[guild_id].members[bot.id].role_ids
    return str(role_id)


def message_requests(emu: Any) -> int:
    by_route = emu.stats()["requests_by_route"]
    return sum(n for key, n in by_route.items() if "/messages" in key)


async def seeded(emu: Any, name: str) -> tuple[Any, str]:
    """A guild whose database holds 20 notes and 1 tag, written with every permission."""
    bot = emu.create_bot("db")
    guild_id = emu.create_guild(name, bots=[bot])
    db = make_db(emu, name)
    note, tag = tables(db)
    async with db.conn(bot.token):
        await note.save_many([note(text=f"n{i}") for i in range(20)])
        await tag(label="t").save()
    return bot, guild_id


async def refused(emu: Any, bot: Any, name: str) -> discobase.MissingPermissions:
    """Start a database on ``name`` and return the MissingPermissions its start raised."""
    db = make_db(emu, name)
    note, _ = tables(db)
    db.login_task(bot.token)
    try:
        with pytest.raises(discobase.MissingPermissions) as caught:
            await db.wait_ready()
    finally:
        await db.close()
    with pytest.raises(discobase.NotConnected):
        note.count()
    return caught.value


async def test_without_read_message_history_start_up_refuses_before_reading(
    emulator: Any,
) -> None:
    async with asyncio.timeout(WAIT):
        bot, guild_id = await seeded(emulator, "history")
        channels, messages = channel_names(emulator, guild_id), len(emulator.state.messages)
        emulator.set_permissions(guild_id, bot, PERMISSIONS & ~READ_MESSAGE_HISTORY)
        reads = message_requests(emulator)

        error = await refused(emulator, bot, "history")

        assert error.missing == ["Read Message History"]
        assert "Read Message History in #discobase (the catalog)" in str(error)
        assert "permissions=2251799813794832" in str(error)
        assert isinstance(error, discobase.DatabaseError)
        # Nothing read, created or written: the catalog was never asked for its messages.
        assert message_requests(emulator) == reads
        assert channel_names(emulator, guild_id) == channels
        assert len(emulator.state.messages) == messages

        # Once the permission is back, every record is there and nothing was lost.
        emulator.set_permissions(guild_id, bot, PERMISSIONS)
        db = make_db(emulator, "history")
        note, tag = tables(db)
        await identify_window()
        async with db.conn(bot.token):
            assert note.count() == 20 and tag.count() == 1
        assert channel_names(emulator, guild_id) == channels


@pytest.mark.parametrize(
    ("bit", "name"),
    [
        (SEND_MESSAGES, "Send Messages"),
        (ATTACH_FILES, "Attach Files"),
        (PIN_MESSAGES, "Pin Messages"),
        (MANAGE_CHANNELS, "Manage Channels"),
    ],
)
async def test_a_new_database_names_the_missing_permission(
    emulator: Any, bit: int, name: str
) -> None:
    bot = emulator.create_bot("db")
    guild_id = emulator.create_guild("fresh", bots=[bot], permissions=PERMISSIONS & ~bit)
    async with asyncio.timeout(WAIT):
        error = await refused(emulator, bot, "fresh")
    assert error.missing == [name]
    assert list(error.places) == [
        "the server (to create #discobase (the catalog) and the channels of tables 'note', 'tag')"
    ]
    assert f"{name} in the server" in str(error)
    assert channel_names(emulator, guild_id) == ["general"]  # no channel created
    assert not emulator.state.messages


async def test_channels_it_made_keep_the_bots_right_to_send(emulator: Any) -> None:
    """discobase's channels deny @everyone Send Messages and give it back to the bot alone:
    chat cannot grow a table, and losing Send from the bot's role does not stop it."""
    async with asyncio.timeout(WAIT):
        bot, guild_id = await seeded(emulator, "existing")
        guild = emulator.state.guilds[guild_id]
        for channel_id in guild.channel_ids:
            channel = emulator.state.channels[channel_id]
            if channel.name in ("discobase", "note", "tag"):
                overwrites = {o["id"]: o for o in channel.permission_overwrites}
                assert int(overwrites[guild_id]["deny"]) & SEND_MESSAGES
                assert int(overwrites[bot.id]["allow"]) == SEND_MESSAGES
        emulator.set_permissions(guild_id, bot, PERMISSIONS & ~SEND_MESSAGES)
        db = make_db(emulator, "existing")
        note, _ = tables(db)
        async with db.conn(bot.token):
            await note(text="still writing").save()
            assert note.count() == 21


@pytest.mark.parametrize(
    ("bit", "name"),
    [
        (ATTACH_FILES, "Attach Files"),
        (PIN_MESSAGES, "Pin Messages"),
    ],
)
async def test_an_existing_database_names_the_missing_permission(
    emulator: Any, bit: int, name: str
) -> None:
    async with asyncio.timeout(WAIT):
        bot, guild_id = await seeded(emulator, "existing")
        messages = len(emulator.state.messages)
        emulator.set_permissions(guild_id, bot, PERMISSIONS & ~bit)
        error = await refused(emulator, bot, "existing")
    assert error.missing == [name]
    tables_places = {"#note (table 'note')": [name], "#tag (table 'tag')": [name]}
    if bit == PIN_MESSAGES:  # the catalog pins nothing: it needs the other four only
        assert error.places == tables_places
    else:
        assert error.places == {"#discobase (the catalog)": [name]}
    assert len(emulator.state.messages) == messages


async def test_several_missing_permissions_are_all_named(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    lacking = SEND_MESSAGES | PIN_MESSAGES | READ_MESSAGE_HISTORY
    emulator.create_guild("poor", bots=[bot], permissions=PERMISSIONS & ~lacking)
    async with asyncio.timeout(WAIT):
        error = await refused(emulator, bot, "poor")
    assert error.missing == ["Send Messages", "Read Message History", "Pin Messages"]
    assert "without Read Message History, Discord answers every read with nothing" in str(error)


async def test_an_overwrite_denying_history_on_one_tables_channel_is_found(
    emulator: Any,
) -> None:
    async with asyncio.timeout(WAIT):
        bot, guild_id = await seeded(emulator, "overwritten")
        tag_channel = channel_named(emulator, guild_id, "tag")
        tag_channel.permission_overwrites = [
            {
                "id": bot_role(emulator, guild_id, bot),
                "type": 0,
                "allow": "0",
                "deny": str(READ_MESSAGE_HISTORY),
            }
        ]
        messages, channels = len(emulator.state.messages), channel_names(emulator, guild_id)
        error = await refused(emulator, bot, "overwritten")
        assert error.places == {"#tag (table 'tag')": ["Read Message History"]}
        assert len(emulator.state.messages) == messages
        assert channel_names(emulator, guild_id) == channels

        # Discord's order: the member's own overwrite comes last and gives it back.
        tag_channel.permission_overwrites.append(
            {"id": bot.id, "type": 1, "allow": str(READ_MESSAGE_HISTORY), "deny": "0"}
        )
        db = make_db(emulator, "overwritten")
        note, tag = tables(db)
        await identify_window()
        async with db.conn(bot.token):
            assert note.count() == 20 and tag.count() == 1


async def test_an_everyone_deny_is_lifted_by_a_role_allow(emulator: Any) -> None:
    async with asyncio.timeout(WAIT):
        bot, guild_id = await seeded(emulator, "layers")
        note_channel = channel_named(emulator, guild_id, "note")
        note_channel.permission_overwrites = [
            {"id": guild_id, "type": 0, "allow": "0", "deny": str(PIN_MESSAGES | SEND_MESSAGES)},
            {
                "id": bot_role(emulator, guild_id, bot),
                "type": 0,
                "allow": str(PIN_MESSAGES),
                "deny": "0",
            },
        ]
        error = await refused(emulator, bot, "layers")
        assert error.places == {"#note (table 'note')": ["Send Messages"]}


async def test_administrator_passes_whatever_the_overwrites(emulator: Any) -> None:
    async with asyncio.timeout(WAIT):
        bot, guild_id = await seeded(emulator, "admin")
        emulator.set_permissions(guild_id, bot, ADMINISTRATOR)
        channel_named(emulator, guild_id, "note").permission_overwrites = [
            {"id": bot.id, "type": 1, "allow": "0", "deny": str(READ_MESSAGE_HISTORY)}
        ]
        db = make_db(emulator, "admin")
        note, tag = tables(db)
        async with db.conn(bot.token):
            assert note.count() == 20 and tag.count() == 1
            await tag(label="new").save()


async def test_administrator_alone_creates_a_new_database(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("admin-new", bots=[bot], permissions=ADMINISTRATOR)
    db = make_db(emulator, "admin-new")
    note, _ = tables(db)
    async with asyncio.timeout(WAIT), db.conn(bot.token):
        await note(text="x").save()
        assert note.count() == 1


async def test_the_check_costs_two_requests_at_start_up(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("cheap", bots=[bot])
    db = make_db(emulator, "cheap")
    tables(db)
    async with asyncio.timeout(WAIT), db.conn(bot.token):
        by_route = emulator.stats()["requests_by_route"]
    assert by_route["GET /guilds/{guild_id}"] == 1
    assert by_route["GET /guilds/{guild_id}/members/{user_id}"] == 1


async def test_a_table_built_after_login_is_checked_too(emulator: Any) -> None:
    async with asyncio.timeout(WAIT):
        bot, guild_id = await seeded(emulator, "late")
        channel_named(emulator, guild_id, "tag").permission_overwrites = [
            {"id": bot.id, "type": 1, "allow": "0", "deny": str(ATTACH_FILES)}
        ]
        db = make_db(emulator, "late")

        @db.table
        class Note(discobase.Table):
            text: str

        async with db.conn(bot.token):

            @db.table
            class Tag(discobase.Table):
                label: str

            with pytest.raises(discobase.MissingPermissions, match="Attach Files in #tag"):
                await db.build_tables()
            assert Note.count() == 20


async def test_the_guild_owner_holds_every_permission(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.state.create_guild("owned", [bot], permissions=0, owner=bot.id)
    db = make_db(emulator, "owned")
    note, _ = tables(db)
    async with asyncio.timeout(WAIT), db.conn(bot.token):
        await note(text="x").save()
        assert note.count() == 1


async def test_conn_raises_it_too(emulator: Any) -> None:
    bot = emulator.create_bot("db")
    emulator.create_guild("conn", bots=[bot], permissions=PERMISSIONS & ~READ_MESSAGE_HISTORY)
    db = make_db(emulator, "conn")
    tables(db)
    async with asyncio.timeout(WAIT):
        with pytest.raises(discobase.MissingPermissions, match="Read Message History"):
            async with db.conn(bot.token):
                pytest.fail("the block must not run")
    assert not db.is_ready
