"""What the original discobase (1.0.0) asks of Discord beyond messages and channels.

Layer: conformance tests (the emulator over loopback, every answer checked against Discord's
OpenAPI spec by ``CheckedSession``). The original logs an invite link and syncs its slash
commands on every login, and is invited with ADMINISTRATOR because bots can no longer own the
guild (facts 3.3, fact 4). Sources: the spec's ``create_channel_invite`` (200
``GuildInviteResponse``) and ``bulk_set_application_commands`` (200, a list of
``ApplicationCommandResponse``); the permissions table in the docs (ADMINISTRATOR "allows all
permissions", CREATE_INSTANT_INVITE ``1 << 0``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from discobase.emulator.events import GUILD_INVITES
from discobase.emulator.permissions import ADMINISTRATOR, BOT_DEFAULT, CREATE_INSTANT_INVITE
from tests.conformance.conftest import create_channel
from tests.conformance.openapi import CheckedSession
from tests.conformance.test_rest_limits_table import documented_limits

COMMANDS = [
    {"name": "find", "description": "Find records.", "type": 1, "options": []},
    {"name": "reset", "description": "Erase the database."},
]


async def test_administrator_grants_guild_level_permissions(
    emu: Any, bot: Any, api: CheckedSession, guild_id: str
) -> None:
    emu.set_permissions(guild_id, bot, ADMINISTRATOR)
    created = await api.post(f"/guilds/{guild_id}/channels", json={"name": "by-admin"})
    assert created.status == 201, created.body
    listed = (await api.get("/users/@me/guilds")).json()
    assert int(listed[0]["permissions"]) & CREATE_INSTANT_INVITE


async def test_create_invite_answers_a_guild_invite_and_announces_it(
    emu: Any, bot: Any, api: CheckedSession, guild_id: str, channel_id: str
) -> None:
    seen: list[Any] = []
    emu.events.subscribe(seen.append)
    emu.set_permissions(guild_id, bot, BOT_DEFAULT | CREATE_INSTANT_INVITE)

    reply = await api.post(f"/channels/{channel_id}/invites", json={})
    assert reply.status == 200, reply.body
    invite = reply.json()
    assert invite["type"] == 0 and invite["guild_id"] == guild_id
    assert invite["channel"]["id"] == channel_id and invite["inviter"]["id"] == bot.id
    assert invite["max_age"] == 86_400 and invite["max_uses"] == 0 and invite["uses"] == 0
    assert reply.header("X-RateLimit-Limit") is not None
    (event,) = [e for e in seen if e.name == "INVITE_CREATE"]
    assert event.intent == GUILD_INVITES and event.data["code"] == invite["code"]

    never = await api.post(f"/channels/{channel_id}/invites", json={"max_age": 0})
    assert never.json()["expires_at"] is None


async def test_create_invite_needs_the_permission_and_valid_numbers(
    emu: Any, bot: Any, api: CheckedSession, guild_id: str, channel_id: str
) -> None:
    refused = await api.post(f"/channels/{channel_id}/invites", json={})
    assert (refused.status, refused.json()["code"]) == (403, 50013)

    emu.set_permissions(guild_id, bot, BOT_DEFAULT | CREATE_INSTANT_INVITE)
    too_old = await api.post(f"/channels/{channel_id}/invites", json={"max_age": 604_801})
    assert (too_old.status, too_old.json()["code"]) == (400, 50035)
    assert "max_age" in too_old.json()["errors"]


async def test_bulk_overwrite_of_global_commands_keeps_ids_by_name(
    bot: Any, api: CheckedSession
) -> None:
    path = f"/applications/{bot.application_id}/commands"
    first = await api.put(path, json=COMMANDS)
    assert first.status == 200, first.body
    stored = first.json()
    assert [c["name"] for c in stored] == ["find", "reset"]
    assert all(c["application_id"] == bot.application_id and c["type"] == 1 for c in stored)

    second = (await api.put(path, json=COMMANDS[:1])).json()
    assert second[0]["id"] == stored[0]["id"]
    listed = await api.get(path)
    assert listed.status == 200 and [c["name"] for c in listed.json()] == ["find"]

    cleared = await api.put(path, json=[])
    assert cleared.status == 200 and cleared.json() == []


async def test_bulk_overwrite_refuses_bad_commands_and_other_applications(
    bot: Any, api: CheckedSession
) -> None:
    path = f"/applications/{bot.application_id}/commands"
    no_description = await api.put(path, json=[{"name": "find", "description": ""}])
    assert (no_description.status, no_description.json()["code"]) == (400, 50035)
    assert "description" in no_description.json()["errors"]["0"]

    other = await api.put(f"/applications/{int(bot.application_id) + 1}/commands", json=[])
    assert (other.status, other.json()["code"]) == (403, 50001)


@pytest.mark.parametrize("name", ["invite_create", "application_commands"])
async def test_their_route_limits_match_the_doc(start_emulator: Any, name: str) -> None:
    """The recipes ``test_rest_limits_table.py`` lacks for these two rows of the doc's table."""
    limit, window = documented_limits()[name]
    # Ten real seconds per Discord second: no window can pass during the burst.
    emu, bot, api, guild = await start_emulator(time_scale=10.0)
    emu.set_permissions(guild, bot, ADMINISTRATOR)
    if name == "invite_create":
        channel = (await create_channel(api, guild, "invites"))["id"]
        fire = partial(api.post, f"/channels/{channel}/invites", json={})
    else:
        fire = partial(api.put, f"/applications/{bot.application_id}/commands", json=COMMANDS)
    replies = [await fire() for _ in range(limit + 1)]
    assert [r.status for r in replies[:limit]] == [200] * limit
    assert int(replies[0].header("X-RateLimit-Limit") or -1) == limit
    assert 0 < float(replies[0].header("X-RateLimit-Reset-After") or -1) <= window * 10.0
    refused = replies[limit]
    assert refused.status == 429 and refused.header("X-RateLimit-Scope") == "user"


async def test_the_command_line_seeds_the_bot_with_the_given_permissions(emu: Any) -> None:
    """``--permissions 8``: how to serve the original, which creates an invite on login."""
    from discobase.emulator.cli import seed

    token, guild_id = seed(emu, "original", "My discord database", ADMINISTRATOR)
    bot = emu.state.bot_by_token(token)
    guild = emu.state.guilds[guild_id]
    assert emu.state.guild_permissions(guild, bot.id) & CREATE_INSTANT_INVITE
    assert seed(emu, "original", "My discord database", BOT_DEFAULT) == (token, guild_id)
    assert not emu.state.guild_permissions(guild, bot.id) & CREATE_INSTANT_INVITE
