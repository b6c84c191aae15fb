"""Interactions in the local Discord: commands, callbacks, follow-ups, clicks, autocomplete.

Layer: conformance tests. The app side is played by hand, over the raw gateway client and
``CheckedSession`` (every answer checked against Discord's spec), and by an unmodified
discord.py bot with an app command tree. The member side is the emulator's documented
Python API (``create_member``, ``invoke_command``, ``click``, ``autocomplete``) and its admin
routes. Facts: docs interactions/receiving-and-responding (3-second callback, 15-minute
token, 10062, 40060, ephemeral flag 64), application-commands, message-components.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conformance.conftest import call
from tests.conformance.openapi import CheckedSession, OpenAPISpec
from tests.conformance.test_gateway_raw_client import GUILDS, RawGateway, ready_gateway

# A slower clock than the suite's 0.01: the 3-second deadline lasts 750 ms, which a test on a
# loaded machine can meet; lateness is tested by moving the Discord clock, not by sleeping.
TIME_SCALE = 0.25
MANAGE_GUILD = 1 << 5
EPHEMERAL = 1 << 6
LOADING = 1 << 7

COMMANDS = [
    {
        "name": "find",
        "description": "Find records",
        "options": [
            {
                "type": 3,
                "name": "table",
                "description": "Table",
                "required": True,
                "autocomplete": True,
            },
            {"type": 4, "name": "limit", "description": "At most", "min_value": 1},
            {"type": 5, "name": "public", "description": "Show to all"},
        ],
    },
    {
        "name": "wipe",
        "description": "Delete everything",
        "default_member_permissions": str(MANAGE_GUILD),
    },
]


@pytest.fixture
async def iemu() -> AsyncIterator[Any]:
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE) as emulator:
        yield emulator


@pytest.fixture
def ibot(iemu: Any) -> Any:
    return iemu.create_bot("commands-bot")


@pytest.fixture
def iguild(iemu: Any, ibot: Any) -> str:
    return str(iemu.create_guild("Commands", bots=[ibot]))


@pytest.fixture
def iapi(
    iemu: Any, ibot: Any, http_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> CheckedSession:
    return CheckedSession(http_session, iemu.url, openapi_spec, ibot.token)


@contextlib.asynccontextmanager
async def app_gateway(session: aiohttp.ClientSession, emu: Any, bot: Any) -> AsyncIterator[Any]:
    """The bot on the gateway with only GUILDS: interactions need no intent."""
    async with ready_gateway(session, emu.url, bot.token, GUILDS) as (gw, _ready):
        yield gw


async def register(api: CheckedSession, bot: Any, guild: str) -> list[dict[str, Any]]:
    reply = await call(
        api, "PUT", f"/applications/{bot.application_id}/guilds/{guild}/commands", json=COMMANDS
    )
    assert reply.status == 200, reply.body
    commands: list[dict[str, Any]] = reply.json()
    return commands


async def callback(
    api: CheckedSession, interaction: dict[str, Any], body: dict[str, Any], **params: Any
) -> Any:
    path = f"/interactions/{interaction['id']}/{interaction['token']}/callback"
    return await api.post(path, json=body, auth=False, params=params or None)


async def next_interaction(gw: RawGateway) -> dict[str, Any]:
    frame = await gw.recv_dispatch("INTERACTION_CREATE")
    data: dict[str, Any] = frame["d"]
    return data


# -- registering ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_guild_commands_are_registered_listed_replaced_and_deleted(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession
) -> None:
    base = f"/applications/{ibot.application_id}/guilds/{iguild}/commands"
    stored = await register(iapi, ibot, iguild)
    assert [c["name"] for c in stored] == ["find", "wipe"]
    assert all(c["guild_id"] == iguild for c in stored)
    assert stored[1]["default_member_permissions"] == str(MANAGE_GUILD)
    listed = (await call(iapi, "GET", base)).json()
    assert {c["id"] for c in listed} == {c["id"] for c in stored}
    # A second overwrite keeps ids of the names it repeats.
    again = await register(iapi, ibot, iguild)
    assert [c["id"] for c in again] == [c["id"] for c in stored]

    created = await call(iapi, "POST", base, json={"name": "schema", "description": "Schema"})
    assert created.status == 201
    replaced = await call(iapi, "POST", base, json={"name": "schema", "description": "Fields"})
    assert replaced.status == 200 and replaced.json()["id"] == created.json()["id"]
    deleted = await call(iapi, "DELETE", f"{base}/{created.json()['id']}")
    assert deleted.status == 204
    gone = await call(iapi, "GET", f"{base}/{created.json()['id']}")
    assert gone.status == 404 and gone.json()["code"] == 10063

    # Guild commands are not global ones.
    global_list = await call(iapi, "GET", f"/applications/{ibot.application_id}/commands")
    assert global_list.json() == []
    assert len(iemu.guild_commands(iguild)) == 2


async def test_bad_command_definitions_are_refused_as_invalid_form_bodies(
    ibot: Any, iguild: str, iapi: CheckedSession
) -> None:
    base = f"/applications/{ibot.application_id}/guilds/{iguild}/commands"
    for body in (
        [{"name": "Find", "description": "upper case"}],
        [{"name": "find", "description": ""}],
        [
            {
                "name": "find",
                "description": "x",
                "options": [
                    {"type": 3, "name": "a", "description": "a"},
                    {"type": 3, "name": "b", "description": "b", "required": True},
                ],
            }
        ],
    ):
        reply = await call(iapi, "PUT", base, json=body)
        assert reply.status == 400 and reply.json()["code"] == 50035, body


async def test_two_hundred_command_creations_a_day_per_guild(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession
) -> None:
    base = f"/applications/{ibot.application_id}/guilds/{iguild}/commands"

    def named(prefix: str, count: int) -> list[dict[str, Any]]:
        return [{"name": f"{prefix}{i}", "description": "x"} for i in range(count)]

    assert (await call(iapi, "PUT", base, json=named("a", 100))).status == 200
    # Names that exist already are not creations.
    assert (await call(iapi, "PUT", base, json=named("a", 100))).status == 200
    assert (await call(iapi, "PUT", base, json=named("b", 100))).status == 200
    refused = await call(iapi, "PUT", base, json=named("c", 1))
    assert refused.status == 400 and refused.json()["code"] == 30034
    iemu.advance(86_400)
    assert (await call(iapi, "PUT", base, json=named("c", 1))).status == 200


async def test_global_commands_are_seen_in_every_guild(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    reply = await iapi.post(
        f"/applications/{ibot.application_id}/commands",
        json={"name": "ping", "description": "Ping"},
    )
    assert reply.status == 201
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(iemu.invoke_command(iguild, None, "ping"))
        interaction = await next_interaction(gw)
        assert "guild_id" not in interaction["data"]
        await callback(iapi, interaction, {"type": 4, "data": {"content": "pong"}})
        assert (await task).content == "pong"


# -- invoking ------------------------------------------------------------------------------


async def test_a_member_invokes_a_command_and_sees_an_ephemeral_reply(
    iemu: Any,
    ibot: Any,
    iguild: str,
    iapi: CheckedSession,
    http_session: aiohttp.ClientSession,
    openapi_spec: OpenAPISpec | None,
) -> None:
    commands = await register(iapi, ibot, iguild)
    member = iemu.create_member(iguild, "alice", permissions=1 << 10 | 1 << 11)
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(
            iemu.invoke_command(iguild, member, "find", {"table": "users", "limit": 3})
        )
        interaction = await next_interaction(gw)
        assert interaction["type"] == 2
        assert interaction["guild_id"] == iguild
        assert interaction["application_id"] == ibot.application_id
        assert interaction["member"]["user"]["id"] == member
        assert int(interaction["member"]["permissions"]) & (1 << 11)
        assert not int(interaction["member"]["permissions"]) & MANAGE_GUILD
        assert int(interaction["app_permissions"]) > 0
        assert interaction["data"]["id"] == commands[0]["id"]
        if openapi_spec is not None:
            # The gateway's interaction has no schema in the spec; its parts do.
            member_part = {k: v for k, v in interaction["member"].items() if k != "permissions"}
            assert openapi_spec.validate_schema(member_part, "GuildMemberResponse") == []
            assert (
                openapi_spec.validate_schema(interaction["channel"], "GuildChannelResponse") == []
            )
        assert interaction["data"]["options"] == [
            {"name": "table", "type": 3, "value": "users"},
            {"name": "limit", "type": 4, "value": 3},
        ]
        reply = await callback(
            iapi,
            interaction,
            {"type": 4, "data": {"content": "3 users", "flags": EPHEMERAL}},
            with_response="true",
        )
        assert reply.status == 200, reply.body  # InteractionCallbackResponse, spec-checked
        body = reply.json()
        assert body["interaction"]["response_message_ephemeral"] is True
        assert body["resource"]["message"]["content"] == "3 users"
        result = await task
    assert result.responded and result.response_type == 4
    assert result.content == "3 users" and result.ephemeral
    assert result.message["interaction_metadata"]["user"]["id"] == member
    # Ephemeral: not a message of the channel.
    history = await iapi.get(f"/channels/{interaction['channel_id']}/messages")
    assert all(m["id"] != result.message["id"] for m in history.json())


async def test_a_public_reply_is_a_message_of_the_channel(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(iemu.invoke_command(iguild, None, "find", {"table": "t"}))
        interaction = await next_interaction(gw)
        await callback(iapi, interaction, {"type": 4, "data": {"content": "public"}})
        result = await task
    assert not result.ephemeral and result.message["type"] == 20
    history = await iapi.get(f"/channels/{interaction['channel_id']}/messages")
    assert history.json()[0]["id"] == result.message["id"]


async def test_the_client_refuses_what_discord_would_not_send(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession
) -> None:
    from discobase.emulator.interactions import InteractionError

    await register(iapi, ibot, iguild)
    member = iemu.create_member(iguild, "bob")
    for name, options in (
        ("nope", {}),
        ("find", {}),  # a required option missing
        ("find", {"table": "t", "limit": "three"}),  # not an integer
        ("find", {"table": "t", "limit": 0}),  # below min_value
        ("find", {"table": "t", "colour": "red"}),  # no such option
    ):
        with pytest.raises(InteractionError):
            await iemu.invoke_command(iguild, member, name, options)
    # default_member_permissions hides /wipe from a member without Manage Server ...
    with pytest.raises(InteractionError, match="default_member_permissions"):
        await iemu.invoke_command(iguild, member, "wipe")


async def test_a_permission_override_lets_a_member_through_with_their_own_permissions(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    member = iemu.create_member(iguild, "carol")
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(
            iemu.invoke_command(iguild, member, "wipe", override_permissions=True)
        )
        interaction = await next_interaction(gw)
        # The payload carries the member's real permissions: the app can check again.
        assert not int(interaction["member"]["permissions"]) & MANAGE_GUILD
        await callback(iapi, interaction, {"type": 4, "data": {"content": "no", "flags": 64}})
        assert (await task).content == "no"


# -- the deadline, acknowledgements and the token -----------------------------------------


async def test_a_late_callback_gets_unknown_interaction_and_the_member_sees_a_failure(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(iemu.invoke_command(iguild, None, "find", {"table": "t"}))
        interaction = await next_interaction(gw)
        iemu.advance(3.5)  # the app took longer than 3 seconds
        late = await callback(iapi, interaction, {"type": 4, "data": {"content": "late"}})
        assert late.status == 404 and late.json()["code"] == 10062
        result = await task
    assert not result.responded and result.message is None
    assert result.error == "The application did not respond"


async def test_an_interaction_is_acknowledged_once(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(iemu.invoke_command(iguild, None, "find", {"table": "t"}))
        interaction = await next_interaction(gw)
        wrong = dict(interaction, token="not-the-token")
        refused = await callback(iapi, wrong, {"type": 4, "data": {"content": "x"}})
        assert refused.status == 404 and refused.json()["code"] == 10062
        bad_type = await callback(iapi, interaction, {"type": 8, "data": {"choices": []}})
        assert bad_type.status == 400 and bad_type.json()["code"] == 50035
        empty = await callback(iapi, interaction, {"type": 4, "data": {"content": ""}})
        assert empty.status == 400 and empty.json()["code"] == 50006
        first = await callback(iapi, interaction, {"type": 4, "data": {"content": "one"}})
        assert first.status == 204
        second = await callback(iapi, interaction, {"type": 4, "data": {"content": "two"}})
        assert second.status == 400 and second.json()["code"] == 40060
        assert (await task).content == "one"


async def test_a_deferred_reply_is_edited_and_followed_up_for_15_minutes(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(iemu.invoke_command(iguild, None, "find", {"table": "t"}))
        interaction = await next_interaction(gw)
        hook = f"/webhooks/{ibot.application_id}/{interaction['token']}"
        early = await iapi.post(hook, json={"content": "too early"}, auth=False)
        assert early.status == 404 and early.json()["code"] == 10015
        deferred = await callback(
            iapi, interaction, {"type": 5, "data": {"flags": EPHEMERAL}}, with_response="true"
        )
        assert deferred.json()["interaction"]["response_message_loading"] is True
        iemu.advance(60)  # slow work: well past 3 seconds, within 15 minutes
        original = await iapi.get(f"{hook}/messages/@original", auth=False)
        assert original.status == 200 and original.json()["flags"] & LOADING
        edited = await iapi.patch(
            f"{hook}/messages/@original", json={"content": "done"}, auth=False
        )
        assert edited.status == 200, edited.body
        assert edited.json()["flags"] == EPHEMERAL  # no longer loading, still ephemeral
        result = await task
        assert result.content == "done" and result.ephemeral and not result.deferred
        followup = await iapi.post(hook, json={"content": "and more", "flags": 64}, auth=False)
        assert followup.status == 200, followup.body
        changed = await iapi.patch(
            f"{hook}/messages/{followup.json()['id']}", json={"content": "changed"}, auth=False
        )
        assert changed.json()["content"] == "changed"
        iemu.advance(15 * 60)
        expired = await iapi.post(hook, json={"content": "too late"}, auth=False)
        assert expired.status == 401 and expired.json()["code"] == 50027


async def test_a_deferral_never_followed_up_still_shows_thinking(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(
            iemu.invoke_command(iguild, None, "find", {"table": "t"}, timeout=0.2)
        )
        interaction = await next_interaction(gw)
        await callback(iapi, interaction, {"type": 5})
        result = await task
    assert result.responded and result.deferred


async def test_interaction_routes_do_not_count_toward_the_global_limit(
    http_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> None:
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE, limits={"global_limit": 2}) as emu:
        bot = emu.create_bot("busy")
        guild = str(emu.create_guild("Busy", bots=[bot]))
        api = CheckedSession(http_session, emu.url, openapi_spec, bot.token)
        await register(api, bot, guild)
        async with app_gateway(http_session, emu, bot) as gw:
            task = asyncio.create_task(emu.invoke_command(guild, None, "find", {"table": "t"}))
            interaction = await next_interaction(gw)
            await callback(api, interaction, {"type": 5})
            hook = f"/webhooks/{bot.application_id}/{interaction['token']}"
            for i in range(6):  # three times the global limit, within one second
                reply = await api.post(hook, json={"content": f"m{i}"}, auth=f"Bot {bot.token}")
                assert reply.status == 200, reply.body
            await task
        assert emu.stats()["ratelimited_by_scope"]["global"] == 0


# -- components and autocomplete -----------------------------------------------------------


async def test_clicking_a_button_updates_the_message(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    member = iemu.create_member(iguild, "dave")
    row = {
        "type": 1,
        "components": [
            {"type": 2, "style": 2, "label": "<", "custom_id": "page:0", "disabled": True},
            {"type": 2, "style": 2, "label": ">", "custom_id": "page:2"},
        ],
    }
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(iemu.invoke_command(iguild, member, "find", {"table": "t"}))
        interaction = await next_interaction(gw)
        await callback(
            iapi,
            interaction,
            {"type": 4, "data": {"content": "page 1", "components": [row], "flags": 64}},
        )
        first = await task
        assert [b["custom_id"] for b in first.buttons()] == ["page:0", "page:2"]
        assert first.text() == "page 1\n[< (disabled)] [>]"

        from discobase.emulator.interactions import InteractionError

        with pytest.raises(InteractionError, match="disabled"):
            await iemu.click(first, "page:0")
        with pytest.raises(InteractionError, match="ephemeral"):
            await iemu.click(first, "page:2", iemu.create_member(iguild, "eve"))

        clicked = asyncio.create_task(iemu.click(first, "page:2"))
        click = await next_interaction(gw)
        assert click["type"] == 3 and click["member"]["user"]["id"] == member
        assert click["data"] == {"custom_id": "page:2", "component_type": 2}
        assert click["message"]["id"] == first.message["id"]
        update = await callback(
            iapi,
            click,
            {"type": 7, "data": {"content": "page 2", "components": [row]}},
            with_response="true",
        )
        assert update.status == 200, update.body
        second = await clicked
    assert second.message["id"] == first.message["id"]
    assert second.content == "page 2" and second.ephemeral


async def test_autocomplete_returns_the_apps_choices(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    async with app_gateway(http_session, iemu, ibot) as gw:
        task = asyncio.create_task(
            iemu.autocomplete(iguild, None, "find", {"table": "us"}, "table")
        )
        interaction = await next_interaction(gw)
        assert interaction["type"] == 4
        assert interaction["data"]["options"] == [
            {"name": "table", "type": 3, "value": "us", "focused": True}
        ]
        wrong = await callback(iapi, interaction, {"type": 4, "data": {"content": "no"}})
        assert wrong.status == 400
        too_many = [{"name": str(i), "value": str(i)} for i in range(26)]
        refused = await callback(iapi, interaction, {"type": 8, "data": {"choices": too_many}})
        assert refused.status == 400
        ok = await callback(
            iapi,
            interaction,
            {"type": 8, "data": {"choices": [{"name": "users", "value": "users"}]}},
        )
        assert ok.status == 204
        assert await task == [{"name": "users", "value": "users"}]


async def test_the_admin_api_invokes_commands_without_showing_a_token(
    iemu: Any, ibot: Any, iguild: str, iapi: CheckedSession, http_session: aiohttp.ClientSession
) -> None:
    await register(iapi, ibot, iguild)
    member = await iapi.post(
        f"/_emulator/guilds/{iguild}/members", json={"name": "frank"}, auth=False
    )
    assert member.status == 201
    member_id = member.json()["id"]
    async with app_gateway(http_session, iemu, ibot) as gw:
        invoked = asyncio.create_task(
            iapi.post(
                "/_emulator/interactions/commands",
                json={
                    "guild_id": iguild,
                    "member": member_id,
                    "name": "find",
                    "options": {"table": "t"},
                },
                auth=False,
            )
        )
        interaction = await next_interaction(gw)
        await callback(iapi, interaction, {"type": 4, "data": {"content": "hi", "flags": 64}})
        reply = await invoked
    out = reply.json()
    assert reply.status == 200 and out["responded"] and out["message"]["content"] == "hi"
    assert "token" not in out["interaction"] and interaction["token"] not in reply.body.decode()
    refused = await iapi.post(
        "/_emulator/interactions/commands",
        json={"guild_id": iguild, "member": member_id, "name": "wipe"},
        auth=False,
    )
    assert refused.status == 400 and "default_member_permissions" in refused.json()["error"]
    listed = await iapi.get(f"/_emulator/guilds/{iguild}/commands", auth=False)
    assert {c["name"] for c in listed.json()} == {"find", "wipe"}


# -- an unmodified third-party bot ----------------------------------------------------------


async def test_a_discord_py_app_command_tree_registers_and_answers(
    iemu: Any, ibot: Any, iguild: str, http_session: aiohttp.ClientSession, proxy_for: Any
) -> None:
    discord = pytest.importorskip("discord")
    yarl = pytest.importorskip("yarl")
    from discord import app_commands
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    checking = await proxy_for(iemu)
    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = checking.url + "/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("ws" + iemu.url[len("http") :] + "/gateway")
    iemu.gateway.config.heartbeat_timeout_factor = 10
    try:
        client = discord.Client(intents=discord.Intents.none(), guild_ready_timeout=0.5)
        tree = app_commands.CommandTree(client)
        guild = discord.Object(id=int(iguild))
        synced: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

        @tree.command(name="greet", description="Greet someone", guild=guild)
        @app_commands.describe(name="Who")
        async def greet(interaction: Any, name: str, times: int = 1) -> None:
            await interaction.response.send_message(f"hello {name} x{times}", ephemeral=True)

        @client.event
        async def setup_hook() -> None:
            pass

        @client.event
        async def on_ready() -> None:
            if not synced.done():
                synced.set_result(await tree.sync(guild=guild))

        runner = asyncio.create_task(client.start(ibot.token))
        try:
            commands = await asyncio.wait_for(synced, 30)
            assert [c.name for c in commands] == ["greet"]
            result = await iemu.invoke_command(
                iguild, iemu.create_member(iguild, "gina"), "greet", {"name": "gina", "times": 2}
            )
            assert result.responded and result.content == "hello gina x2" and result.ephemeral
        finally:
            await client.close()
            await asyncio.wait_for(runner, 30)
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved
    assert checking.ledger.problems == []


@pytest.fixture
async def proxy_for(openapi_spec: OpenAPISpec | None) -> AsyncIterator[Any]:
    from tests.conformance.openapi import SpecCheckingProxy

    async with contextlib.AsyncExitStack() as stack:

        async def make(emu: Any) -> SpecCheckingProxy:
            return await stack.enter_async_context(SpecCheckingProxy(emu.url, openapi_spec))

        yield make


# -- what discobase's own commands send --------------------------------------------------------


def test_discobase_command_definitions_and_answers_match_the_spec(
    require_spec: OpenAPISpec,
) -> None:
    from discobase.commands import definitions
    from discobase.commands.render import error_embed, message, page_buttons, records_embed

    for command in definitions(MANAGE_GUILD, MANAGE_GUILD):
        # The docs type default_member_permissions as a string (a bit set), as discobase and
        # discord.py send it; the spec's request schema says integer. Checked as the spec has
        # it, the rest of the definition must match exactly.
        as_spec = dict(command, default_member_permissions=int(MANAGE_GUILD))
        assert require_spec.validate_schema(as_spec, "ApplicationCommandUpdateRequest") == []
    page = message(
        records_embed("user: records", [(1, {"name": "x"})], page=0, pages=2, total=6),
        components=page_buttons("k", 0, 2),
    )
    bodies = [
        ("CreateMessageInteractionCallbackRequest", {"type": 4, "data": {**page, "flags": 64}}),
        ("CreateMessageInteractionCallbackRequest", {"type": 5, "data": {"flags": 64}}),
        ("UpdateMessageInteractionCallbackRequest", {"type": 7, "data": page}),
        ("UpdateMessageInteractionCallbackRequest", {"type": 6}),
        (
            "ApplicationCommandAutocompleteCallbackRequest",
            {"type": 8, "data": {"choices": [{"name": "user", "value": "user"}]}},
        ),
        (
            "IncomingWebhookUpdateForInteractionCallbackRequestPartial",
            message(error_embed("a", "b")),
        ),
    ]
    for schema, body in bodies:
        assert require_spec.validate_schema(body, schema) == [], schema
