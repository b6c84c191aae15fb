"""Permissions from seeded roles: 403 with 50001 (missing access) or 50013 (missing permissions).

Layer: conformance tests (the emulator over loopback, judged by the facts sheet and the spec).
Sources: discord-api-facts.md sections 2.1, 2.5, 2.7, 2.8, 3.2, 5.2, 5.3 and fact 3. The bit
values are Discord's, written out here rather than taken from the emulator.
"""

from __future__ import annotations

from typing import Any

from tests.conformance.conftest import call, create_channel, post_messages
from tests.conformance.openapi import CheckedSession

MANAGE_CHANNELS = 1 << 4
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
PIN_MESSAGES = 1 << 51
DATABASE_BOT = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_MESSAGE_HISTORY
    | MANAGE_CHANNELS
    | MANAGE_MESSAGES
    | ATTACH_FILES
    | PIN_MESSAGES
)


async def setup(emu: Any, api: CheckedSession, bot: Any) -> tuple[str, str, list[str]]:
    """A guild where the bot has what a database bot needs, a channel, two messages."""
    guild = str(emu.create_guild("Seeded", bots=[bot], permissions=DATABASE_BOT))
    channel = (await create_channel(api, guild, "perms"))["id"]
    return guild, channel, await post_messages(api, channel, 2)


def assert_forbidden(reply: Any, code: int) -> None:
    assert reply.status == 403, reply.body
    assert reply.json()["code"] == code


async def test_database_bot_permissions_are_enough(emu: Any, api: CheckedSession, bot: Any) -> None:
    _, channel, ids = await setup(emu, api, bot)
    assert (await call(api, "PUT", f"/channels/{channel}/messages/pins/{ids[0]}")).status == 204
    bulk = {"messages": ids}
    reply = await call(api, "POST", f"/channels/{channel}/messages/bulk-delete", json=bulk)
    assert reply.status == 204


async def test_no_send_messages_is_50013(emu: Any, api: CheckedSession, bot: Any) -> None:
    guild, channel, _ = await setup(emu, api, bot)
    emu.set_permissions(guild, bot, DATABASE_BOT & ~SEND_MESSAGES)
    reply = await api.post(f"/channels/{channel}/messages", json={"content": "x"})
    assert_forbidden(reply, 50013)


async def test_no_view_channel_is_50001(emu: Any, api: CheckedSession, bot: Any) -> None:
    guild, channel, ids = await setup(emu, api, bot)
    emu.set_permissions(guild, bot, DATABASE_BOT & ~VIEW_CHANNEL)
    assert_forbidden(await api.get(f"/channels/{channel}/messages"), 50001)
    assert_forbidden(await api.get(f"/channels/{channel}/messages/{ids[0]}"), 50001)


async def test_no_history_reads_an_empty_list(emu: Any, api: CheckedSession, bot: Any) -> None:
    guild, channel, ids = await setup(emu, api, bot)
    emu.set_permissions(guild, bot, DATABASE_BOT & ~READ_MESSAGE_HISTORY)
    listing = await api.get(f"/channels/{channel}/messages")
    assert listing.status == 200 and listing.json() == []
    single = await api.get(f"/channels/{channel}/messages/{ids[0]}")
    assert single.status == 403
    assert single.json()["code"] in (50001, 50013)


async def test_bulk_delete_needs_manage_messages_even_for_own(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    guild, channel, ids = await setup(emu, api, bot)
    emu.set_permissions(guild, bot, DATABASE_BOT & ~MANAGE_MESSAGES)
    reply = await api.post(f"/channels/{channel}/messages/bulk-delete", json={"messages": ids})
    assert_forbidden(reply, 50013)
    # Deleting one's own message needs no MANAGE_MESSAGES.
    assert (await api.delete(f"/channels/{channel}/messages/{ids[0]}")).status == 204


async def test_pinning_needs_pin_messages_not_manage_messages(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    guild, channel, ids = await setup(emu, api, bot)
    emu.set_permissions(guild, bot, DATABASE_BOT & ~PIN_MESSAGES)
    assert_forbidden(await api.put(f"/channels/{channel}/messages/pins/{ids[0]}"), 50013)


async def test_creating_channels_needs_manage_channels(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    guild, channel, _ = await setup(emu, api, bot)
    emu.set_permissions(guild, bot, DATABASE_BOT & ~MANAGE_CHANNELS)
    assert_forbidden(await api.post(f"/guilds/{guild}/channels", json={"name": "no"}), 50013)
    assert_forbidden(await api.patch(f"/channels/{channel}", json={"topic": "no"}), 50013)
    assert_forbidden(await api.delete(f"/channels/{channel}"), 50013)


async def test_guild_of_which_the_bot_is_not_a_member(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    owner = emu.create_bot("owner")
    foreign_guild = str(emu.create_guild("Foreign", bots=[owner]))
    owner_api = api.with_token(owner.token)
    foreign = (await create_channel(owner_api, foreign_guild, "theirs"))["id"]
    assert_forbidden(await api.get(f"/channels/{foreign}"), 50001)
    assert_forbidden(await api.post(f"/channels/{foreign}/messages", json={"content": "x"}), 50001)
    assert (await api.get(f"/guilds/{foreign_guild}")).status == 403


async def test_channel_overwrites_are_applied(emu: Any, api: CheckedSession, bot: Any) -> None:
    guild, _, _ = await setup(emu, api, bot)
    # A member overwrite (type 1) that denies SEND_MESSAGES beats what the bot's role allows.
    overwrite = {"id": bot.id, "type": 1, "allow": "0", "deny": str(SEND_MESSAGES)}
    locked = (
        await create_channel(api, guild, "locked", permission_overwrites=[overwrite], type=0)
    )["id"]
    reply = await api.post(f"/channels/{locked}/messages", json={"content": "x"})
    assert_forbidden(reply, 50013)


async def test_deleting_anothers_message_needs_manage_messages(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    guild, channel, ids = await setup(emu, api, bot)
    other = emu.create_bot("moderator")
    emu.add_bot_to_guild(guild, other, DATABASE_BOT & ~MANAGE_MESSAGES)
    moderator = api.with_token(other.token)
    assert_forbidden(await moderator.delete(f"/channels/{channel}/messages/{ids[0]}"), 50013)
    emu.set_permissions(guild, other, DATABASE_BOT)
    assert (await moderator.delete(f"/channels/{channel}/messages/{ids[0]}")).status == 204
