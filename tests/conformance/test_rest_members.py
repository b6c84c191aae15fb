"""Guild members: ``GET /guilds/{guild_id}/members/{user_id}``.

Layer: conformance tests (the emulator over loopback, judged by the spec's
``GuildMemberResponse``). A bot reads its own member (its role ids) without the privileged
GUILD_MEMBERS intent, which gates only listing and the gateway's member events.
"""

from __future__ import annotations

from typing import Any

from tests.conformance.openapi import CheckedSession


async def test_the_bot_reads_its_own_member(
    emu: Any, api: CheckedSession, bot: Any, guild_id: str
) -> None:
    reply = await api.get(f"/guilds/{guild_id}/members/{bot.id}")
    assert reply.status == 200
    member = reply.json()
    assert member["user"]["id"] == bot.id
    guild = (await api.get(f"/guilds/{guild_id}")).json()
    managed = [r["id"] for r in guild["roles"] if r["managed"]]
    assert managed and set(managed) <= set(member["roles"])
    assert guild_id not in member["roles"]  # @everyone is implied, never listed


async def test_a_user_who_is_not_a_member_is_10007(
    emu: Any, api: CheckedSession, guild_id: str
) -> None:
    outsider = emu.create_bot("outsider")
    reply = await api.get(f"/guilds/{guild_id}/members/{outsider.id}")
    assert reply.status == 404
    assert reply.json()["code"] == 10007


async def test_a_guild_the_bot_left_is_refused(
    api: CheckedSession, bot: Any, guild_id: str
) -> None:
    assert (await api.delete(f"/users/@me/guilds/{guild_id}")).status == 204
    reply = await api.get(f"/guilds/{guild_id}/members/{bot.id}")
    assert reply.status in (403, 404)
