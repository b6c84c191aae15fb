"""Places where the local Discord was more lenient than Discord, found by a fidelity audit.

Layer: conformance tests (the emulator over loopback, judged by the facts sheet, Discord's
docs and the spec). Each test names the rule it holds the emulator to; bit values are
Discord's, written out here rather than taken from the emulator.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conformance.conftest import call, create_channel
from tests.conformance.openapi import CheckedSession
from tests.conformance.test_gateway_raw_client import ready_gateway

ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_ROLES = 1 << 28
# A database bot's invite (facts 3.3), without ADMINISTRATOR or MANAGE_ROLES.
DATABASE_BOT = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | MANAGE_CHANNELS


def assert_missing_permissions(reply: Any) -> None:
    assert reply.status == 403, reply.body
    assert reply.json()["code"] == 50013


# -- channel permission overwrites (resources/guild Create Guild Channel; facts §6.11) --------


async def test_creating_a_channel_may_set_only_overwrite_bits_the_bot_has(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    guild = str(emu.create_guild("Overwrites", bots=[bot], permissions=DATABASE_BOT))
    everyone = {"id": guild, "type": 0, "allow": "0", "deny": str(SEND_MESSAGES)}
    own = {"id": bot.id, "type": 1, "allow": str(SEND_MESSAGES), "deny": "0"}
    # What discobase sends: bits the bot has itself are fine, allowed or denied.
    await create_channel(api, guild, "readonly", permission_overwrites=[everyone, own])
    # EMBED_LINKS is a bit the bot lacks: Discord refuses to let it grant or deny it.
    for key in ("allow", "deny"):
        lacking = {"id": guild, "type": 0, "allow": "0", "deny": "0", key: str(EMBED_LINKS)}
        reply = await call(
            api,
            "POST",
            f"/guilds/{guild}/channels",
            json={"name": "x", "permission_overwrites": [lacking]},
        )
        assert_missing_permissions(reply)


async def test_only_administrators_may_set_manage_roles_in_a_new_channel(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    guild = str(emu.create_guild("Roles", bots=[bot], permissions=DATABASE_BOT | MANAGE_ROLES))
    body = {
        "name": "x",
        "permission_overwrites": [
            {"id": bot.id, "type": 1, "allow": str(MANAGE_ROLES), "deny": "0"}
        ],
    }
    assert_missing_permissions(await call(api, "POST", f"/guilds/{guild}/channels", json=body))
    emu.set_permissions(guild, bot, DATABASE_BOT | ADMINISTRATOR)
    assert (await call(api, "POST", f"/guilds/{guild}/channels", json=body)).status == 201


async def test_editing_overwrites_needs_manage_roles_and_bits_the_bot_has(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    # resources/channel, Modify Channel: "If modifying permission overwrites, the MANAGE_ROLES
    # permission is required. Only permissions your bot has in the guild or parent channel
    # (if applicable) can be allowed/denied".
    guild = str(emu.create_guild("Edit", bots=[bot], permissions=DATABASE_BOT))
    channel = (await create_channel(api, guild, "edited"))["id"]
    deny_send = [{"id": guild, "type": 0, "allow": "0", "deny": str(SEND_MESSAGES)}]
    edit = {"permission_overwrites": deny_send}
    assert_missing_permissions(await call(api, "PATCH", f"/channels/{channel}", json=edit))
    # Other fields still need only MANAGE_CHANNELS.
    assert (await call(api, "PATCH", f"/channels/{channel}", json={"topic": "t"})).status == 200
    emu.set_permissions(guild, bot, DATABASE_BOT | MANAGE_ROLES)
    reply = await call(api, "PATCH", f"/channels/{channel}", json=edit)
    assert reply.status == 200, reply.body
    lacking = [{"id": guild, "type": 0, "allow": "0", "deny": str(EMBED_LINKS)}]
    reply = await call(
        api, "PATCH", f"/channels/{channel}", json={"permission_overwrites": lacking}
    )
    assert_missing_permissions(reply)


# -- message bodies ---------------------------------------------------------------------------


async def send(api: CheckedSession, channel: str, **body: Any) -> Any:
    return await call(api, "POST", f"/channels/{channel}/messages", json=body)


def leaf(reply: Any, *path: str) -> str:
    """Return the first leaf code at ``path`` of a 50035 answer's ``errors`` tree."""
    assert reply.status == 400, reply.body
    body = reply.json()
    assert body["code"] == 50035, body
    node = body["errors"]
    for key in path:
        assert key in node, (path, body["errors"])
        node = node[key]
    return str(node["_errors"][0]["code"])


async def test_embed_fields_need_a_name_and_a_value(api: CheckedSession, channel_id: str) -> None:
    # docs resources/message, Embed Field Structure: name and value are both required; errors
    # mirror the body's shape (facts 5.1), down to the field's key.
    for missing in ("name", "value"):
        item = {"name": "n", "value": "v"}
        del item[missing]
        reply = await send(api, channel_id, embeds=[{"fields": [item]}])
        assert leaf(reply, "embeds", "0", "fields", "0", missing) == "BASE_TYPE_REQUIRED"
    reply = await send(api, channel_id, embeds=[{"fields": [{"name": "n" * 257, "value": "v"}]}])
    assert leaf(reply, "embeds", "0", "fields", "0", "name") == "BASE_TYPE_MAX_LENGTH"
    reply = await send(api, channel_id, embeds=[{"fields": [{"name": "n", "value": "v" * 1025}]}])
    assert leaf(reply, "embeds", "0", "fields", "0", "value") == "BASE_TYPE_MAX_LENGTH"
    ok = await send(api, channel_id, embeds=[{"fields": [{"name": "n", "value": "v"}]}])
    assert ok.status == 200, ok.body
    # The answer says whether each field is inline, false when not sent (spec:
    # MessageEmbedFieldResponse requires name, value and inline).
    assert ok.json()["embeds"][0]["fields"] == [{"name": "n", "value": "v", "inline": False}]


async def test_embed_media_sizes_and_proxy_urls_cannot_be_set(
    api: CheckedSession, channel_id: str
) -> None:
    # facts 2.1 (docs resources/message, Embed Image Structure): on send, an image's height,
    # width and proxy_url cannot be set; Discord fills them itself, never from the request.
    sent = {"url": "https://example.com/a.png", "height": 7, "width": 9, "proxy_url": "x"}
    reply = await send(api, channel_id, embeds=[{"image": sent, "thumbnail": dict(sent)}])
    assert reply.status == 200, reply.body
    embed = reply.json()["embeds"][0]
    for media in ("image", "thumbnail"):
        assert embed[media]["url"] == sent["url"]
        assert embed[media].get("height") != 7 and embed[media].get("width") != 9
        assert embed[media].get("proxy_url") != "x"


async def test_allowed_mentions_lists_hold_at_most_100_ids(
    api: CheckedSession, channel_id: str
) -> None:
    # facts 2.3 and the spec (MessageAllowedMentionsRequest): users and roles <= 100 ids.
    ids = [str(10**17 + i) for i in range(101)]
    for kind in ("users", "roles"):
        reply = await send(api, channel_id, content="x", allowed_mentions={kind: ids})
        assert leaf(reply, "allowed_mentions", kind) == "BASE_TYPE_MAX_LENGTH"
        ok = await send(api, channel_id, content="x", allowed_mentions={kind: ids[:100]})
        assert ok.status == 200, ok.body
    # A malformed list is named where it is in the body, under allowed_mentions.
    reply = await send(api, channel_id, content="x", allowed_mentions={"parse": "users"})
    assert leaf(reply, "allowed_mentions", "parse") == "BASE_TYPE_LIST"


async def test_sticker_ids_and_components_are_bounded(api: CheckedSession, channel_id: str) -> None:
    # facts 2.1 and the spec (MessageCreateRequest): sticker_ids <= 3, components <= 40
    # top-level items; MessageEditRequestPartial bounds components alike.
    stickers = [str(10**17 + i) for i in range(4)]
    reply = await send(api, channel_id, content="x", sticker_ids=stickers)
    assert leaf(reply, "sticker_ids") == "BASE_TYPE_MAX_LENGTH"
    rows = [{"type": 1, "components": []}] * 41
    reply = await send(api, channel_id, content="x", components=rows)
    assert leaf(reply, "components") == "BASE_TYPE_MAX_LENGTH"
    created = await send(api, channel_id, content="x")
    assert created.status == 200, created.body
    path = f"/channels/{channel_id}/messages/{created.json()['id']}"
    reply = await call(api, "PATCH", path, json={"components": rows})
    assert leaf(reply, "components") == "BASE_TYPE_MAX_LENGTH"


async def test_a_number_beyond_64_bits_is_no_snowflake(
    api: CheckedSession, channel_id: str
) -> None:
    # Snowflakes are unsigned 64-bit integers (facts 3.5); a larger number in a path, a query
    # or a body is a form error naming where it was, not a lookup of something unknown.
    too_big, largest = str(1 << 64), str((1 << 64) - 1)
    assert leaf(await call(api, "GET", f"/channels/{too_big}"), "channel_id") == (
        "NUMBER_TYPE_COERCE"
    )
    unknown = await call(api, "GET", f"/channels/{largest}")
    assert unknown.status == 404 and unknown.json()["code"] == 10003
    path = f"/channels/{channel_id}/messages"
    assert leaf(await call(api, "GET", f"{path}?before={too_big}"), "before") == (
        "NUMBER_TYPE_COERCE"
    )
    assert (await call(api, "GET", f"{path}?before={largest}")).status == 200
    bulk = {"messages": [largest, too_big]}
    reply = await call(api, "POST", f"{path}/bulk-delete", json=bulk)
    assert leaf(reply, "messages", "1") == "NUMBER_TYPE_COERCE"


# -- rate-limit answers --------------------------------------------------------------------------


async def test_a_shared_429_carries_the_route_buckets_headers(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    # topics/rate-limits, the shared-scope example (facts 1.1): the 429 carries the route's
    # X-RateLimit-* headers, and Remaining may be above 0 because the caller's own quota is
    # not spent; only Retry-After says how long to wait.
    path = f"/channels/{channel_id}/messages"
    first = await call(api, "POST", path, json={"content": "counted"})
    assert first.status == 200, first.body
    emu.fail_next("POST", r"/messages$", 429, scope="shared", retry_after=3.0)
    reply = await api.post(path, json={"content": "refused"})
    assert reply.status == 429 and reply.json()["global"] is False
    assert reply.header("X-RateLimit-Scope") == "shared"
    assert reply.header("X-RateLimit-Global") is None
    assert reply.header("X-RateLimit-Bucket") == first.header("X-RateLimit-Bucket")
    assert reply.header("X-RateLimit-Limit") == first.header("X-RateLimit-Limit")
    assert int(reply.header("X-RateLimit-Remaining") or -1) > 0
    assert reply.header("X-RateLimit-Reset-After") is not None
    assert reply.header("Retry-After") is not None


# -- gateway dispatch shapes -----------------------------------------------------------------


async def test_mentions_in_message_events_carry_a_partial_member(
    emu: Any,
    session: aiohttp.ClientSession,
    bot: Any,
    guild_id: str,
    channel_id: str,
    api: CheckedSession,
) -> None:
    # gateway-events, Message Create (and Update, which has the same extra fields):
    # "mentions: array of user objects, with an additional partial member field".
    path = f"/channels/{channel_id}/messages"
    async with ready_gateway(session, emu.url, bot.token) as (gw, _):
        created = (await send(api, channel_id, content=f"hi <@{bot.id}>")).json()
        assert [u["id"] for u in created["mentions"]] == [bot.id]
        for name in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            if name == "MESSAGE_UPDATE":
                edit = {"content": f"again <@{bot.id}>"}
                reply = await call(api, "PATCH", f"{path}/{created['id']}", json=edit)
                assert reply.status == 200, reply.body
            event = (await gw.recv_dispatch(name))["d"]
            (mention,) = event["mentions"]
            assert mention["id"] == bot.id
            member = mention["member"]
            assert "user" not in member  # partial: the user is the mention itself
            assert isinstance(member["roles"], list) and "joined_at" in member
