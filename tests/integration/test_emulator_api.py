"""The emulator's Python API: bots, guilds, permissions, events, stats, faults and reset.

Layer: integration tests (the emulator over loopback sockets, with a small time scale).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from discobase.emulator import Emulator, EmulatorEvent
from discobase.emulator.permissions import BOT_DEFAULT, MANAGE_CHANNELS, SEND_MESSAGES

TIME_SCALE = 0.01


class Api:
    """A bare client: one bot's token, answers as (status, headers, JSON or None)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self.session = session
        self.base = url + "/api/v10"
        self.headers = {"Authorization": f"Bot {token}"} if token else {}

    async def __call__(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.session.request(
            method, self.base + path, headers=self.headers, **kwargs
        ) as reply:
            raw = await reply.read()
            body = await reply.json() if raw and reply.content_type == "application/json" else None
            return reply.status, reply.headers, body


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=TIME_SCALE) as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_tokens_have_discords_shape(emu: Emulator) -> None:
    bot = emu.create_bot("shape")
    first = bot.token.split(".")[0]
    assert len(bot.token.split(".")) == 3
    assert base64.b64decode(first + "=" * (-len(first) % 4)).decode() == bot.id
    assert emu.state.bot_by_token(bot.token) is bot
    assert emu.state.bot_by_token(bot.token + "x") is None
    assert bot.token not in repr(bot)


async def test_url_and_gateway_discovery(emu: Emulator, session: aiohttp.ClientSession) -> None:
    assert emu.url.startswith("http://127.0.0.1:")
    status, headers, body = await Api(session, emu.url, None)("GET", "/gateway")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == {"url": "ws" + emu.url[4:] + "/gateway"}


async def test_guild_seeding_and_permissions(emu: Emulator, session: aiohttp.ClientSession) -> None:
    full = emu.create_bot("full")
    weak = emu.create_bot("weak")
    guild_id = emu.create_guild("perm", bots=[full])
    emu.add_bot_to_guild(guild_id, weak, permissions=BOT_DEFAULT & ~MANAGE_CHANNELS)
    ok = await Api(session, emu.url, full.token)(
        "POST", f"/guilds/{guild_id}/channels", json={"name": "t"}
    )
    assert ok[0] == 201
    refused = await Api(session, emu.url, weak.token)(
        "POST", f"/guilds/{guild_id}/channels", json={"name": "t"}
    )
    assert refused[0] == 403 and refused[2]["code"] == 50013
    emu.set_permissions(guild_id, weak, BOT_DEFAULT & ~SEND_MESSAGES)
    channel_id = ok[2]["id"]
    mute = await Api(session, emu.url, weak.token)(
        "POST", f"/channels/{channel_id}/messages", json={"content": "x"}
    )
    assert mute[0] == 403 and mute[2]["code"] == 50013
    outsider = emu.create_bot("outsider")
    hidden = await Api(session, emu.url, outsider.token)("GET", f"/channels/{channel_id}")
    assert hidden[0] == 403 and hidden[2]["code"] == 50001


async def test_events_carry_discords_dispatch_payloads(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    seen: list[EmulatorEvent] = []
    emu.events.subscribe(seen.append)
    bot = emu.create_bot("events")
    guild_id = emu.create_guild("ev", bots=[bot])
    api = Api(session, emu.url, bot.token)
    _, _, channel = await api("POST", f"/guilds/{guild_id}/channels", json={"name": "c"})
    _, _, message = await api("POST", f"/channels/{channel['id']}/messages", json={"content": "hi"})
    await api(
        "PATCH", f"/channels/{channel['id']}/messages/{message['id']}", json={"content": "yo"}
    )
    await api("DELETE", f"/channels/{channel['id']}/messages/{message['id']}")
    emu.remove_bot_from_guild(guild_id, bot)
    names = [e.name for e in seen]
    assert names == [
        "CHANNEL_CREATE",  # #general
        "GUILD_CREATE",
        "CHANNEL_CREATE",
        "MESSAGE_CREATE",
        "MESSAGE_UPDATE",
        "MESSAGE_DELETE",
        "GUILD_DELETE",
    ]
    join, create = seen[1], seen[3]
    assert join.target_bot_id == bot.id and join.data["id"] == guild_id
    assert {c["name"] for c in join.data["channels"]} == {"general"}
    assert create.intent == 512 and create.guild_id == guild_id
    assert create.data["guild_id"] == guild_id and "member" in create.data
    assert create.data["content"] == "hi" and create.data["author"]["id"] == bot.id
    assert seen[2].intent == 1
    assert seen[5].data == {
        "id": message["id"],
        "channel_id": channel["id"],
        "guild_id": guild_id,
    }
    assert seen[6].data == {"id": guild_id} and seen[6].target_bot_id == bot.id


async def test_stats_count_requests_statuses_and_scopes(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    bot = emu.create_bot("stats")
    await Api(session, emu.url, bot.token)("GET", "/users/@me")
    await Api(session, emu.url, "nope")("GET", "/users/@me")
    await Api(session, emu.url, bot.token)("GET", "/no/such/route")
    stats = emu.stats()
    assert stats["requests_total"] == 3
    assert stats["requests_by_route"]["GET /users/@me"] == 2
    assert stats["responses_by_status"] == {200: 1, 401: 1, 404: 1}
    assert stats["invalid_requests"] == 1
    assert set(stats["ratelimited_by_scope"]) == {"user", "global", "shared"}
    assert "gateway" in stats
    emu.reset()
    assert emu.stats()["requests_total"] == 0


async def test_fail_next_before_and_after_the_write(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    bot = emu.create_bot("faults")
    guild_id = emu.create_guild("f", bots=[bot])
    api = Api(session, emu.url, bot.token)
    _, _, channel = await api("POST", f"/guilds/{guild_id}/channels", json={"name": "c"})
    path = f"/channels/{channel['id']}/messages"
    emu.fail_next("POST", r"/channels/\d+/messages$", 503)
    status, _, body = await api("POST", path, json={"content": "lost"})
    assert status == 503 and body["code"] == 0
    emu.fail_next("POST", r"/channels/\d+/messages$", 500, after_write=True)
    status, headers, _ = await api("POST", path, json={"content": "stored"})
    assert status == 500 and "X-RateLimit-Bucket" in headers
    _, _, page = await api("GET", path)
    assert [m["content"] for m in page] == ["stored"]
    assert (await api("POST", path, json={"content": "ok"}))[0] == 200
    assert emu.stats()["faults_injected"] == 2


async def test_reset_data_forgets_everything(emu: Emulator) -> None:
    bot = emu.create_bot("gone")
    emu.create_guild("gone", bots=[bot])
    emu.reset_data()
    assert emu.state.bots == {} and emu.state.guilds == {}
    assert emu.state.bot_by_token(bot.token) is None


async def test_api_v9_is_served_and_others_are_not(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    bot = emu.create_bot("versions")
    for version, expected in (("v9", 200), ("v10", 200), ("v8", 400), ("v11", 400)):
        async with session.get(
            f"{emu.url}/api/{version}/users/@me", headers={"Authorization": f"Bot {bot.token}"}
        ) as reply:
            assert reply.status == expected, version


async def test_post_guilds_is_an_unknown_route_unless_allowed(
    session: aiohttp.ClientSession,
) -> None:
    for allowed, expected in ((False, 404), (True, 201)):
        async with Emulator(time_scale=TIME_SCALE, allow_guild_create=allowed) as emu:
            bot = emu.create_bot("legacy")
            status, _, body = await Api(session, emu.url, bot.token)(
                "POST", "/guilds", json={"name": "made by a bot"}
            )
            assert status == expected
            if not allowed:
                assert body == {"message": "404: Not Found", "code": 0}
            else:
                assert body["owner_id"] == bot.id


async def test_without_message_content_others_messages_read_empty(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    writer = emu.create_bot("writer")
    reader = emu.create_bot("reader")
    reader.approved_intents = 0
    guild_id = emu.create_guild("mc", bots=[writer, reader])
    channel = emu.state.guilds[guild_id].channel_ids[0]
    write = Api(session, emu.url, writer.token)
    await write("POST", f"/channels/{channel}/messages", json={"content": "secret"})
    await write("POST", f"/channels/{channel}/messages", json={"content": f"hey <@{reader.id}>"})
    _, _, page = await Api(session, emu.url, reader.token)("GET", f"/channels/{channel}/messages")
    assert [m["content"] for m in page] == [f"hey <@{reader.id}>", ""]
    _, _, own_view = await write("GET", f"/channels/{channel}/messages")
    assert own_view[1]["content"] == "secret"


async def test_after_write_fault_waits_for_a_request_that_writes(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    bot = emu.create_bot("patient")
    guild_id = emu.create_guild("p", bots=[bot])
    channel = emu.state.guilds[guild_id].channel_ids[0]
    api = Api(session, emu.url, bot.token)
    emu.fail_next("POST", r"/messages$", 500, after_write=True)
    assert (await api("POST", f"/channels/{channel}/messages", json={}))[0] == 400
    assert (await api("POST", f"/channels/{channel}/messages", json={"content": "x"}))[0] == 500
    assert emu.stats()["faults_injected"] == 1


def test_the_emulator_imports_nothing_from_the_client() -> None:
    import ast
    from pathlib import Path

    import discobase.emulator

    root = Path(discobase.emulator.__file__).parent
    forbidden = ("discobase.http", "discobase.gateway", "discobase.storage", "discobase.database")
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert not node.module.startswith(forbidden), f"{path}: {node.module}"
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                depth = len(path.relative_to(root).parts)  # 1 = directly in emulator/
                assert node.level < depth + 1, f"{path} reaches outside the emulator"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(forbidden), f"{path}: {alias.name}"


def test_public_names_are_sorted_and_real() -> None:
    import discobase.emulator as package

    assert list(package.__all__) == sorted(package.__all__)
    assert all(hasattr(package, name) for name in package.__all__)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("components", 1),
        ("embeds", [{"fields": [1]}]),
        ("allowed_mentions", {"users": 5}),
        ("nonce", [1]),
        ("flags", "x"),
        ("message_reference", {"message_id": "abc"}),
        ("attachments", [{}]),
    ],
)
async def test_malformed_message_fields_are_form_errors_not_500s(
    emu: Emulator, session: aiohttp.ClientSession, field: str, value: Any
) -> None:
    bot = emu.create_bot("fuzz")
    guild_id = emu.create_guild("fuzz", bots=[bot])
    channel = emu.state.guilds[guild_id].channel_ids[0]
    status, _, body = await Api(session, emu.url, bot.token)(
        "POST", f"/channels/{channel}/messages", json={"content": "c", field: value}
    )
    assert status == 400 and body["code"] in (50035, 30015), body


async def test_malformed_overwrites_are_form_errors(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    bot = emu.create_bot("fuzz")
    guild_id = emu.create_guild("fuzz", bots=[bot])
    status, _, body = await Api(session, emu.url, bot.token)(
        "POST",
        f"/guilds/{guild_id}/channels",
        json={"name": "x", "permission_overwrites": [{"id": "1", "allow": "lots"}]},
    )
    assert status == 400 and body["errors"]["permission_overwrites"]["0"]["allow"]


async def test_injected_429s_of_each_scope(emu: Emulator, session: aiohttp.ClientSession) -> None:
    bot = emu.create_bot("scopes")
    api = Api(session, emu.url, bot.token)
    emu.fail_next("GET", "/users/@me$", 429, scope="shared", retry_after=2.0)
    emu.fail_next("GET", "/users/@me$", 429, scope="global")
    emu.fail_next("GET", "/users/@me$", 429)
    shared, global_, user = [await api("GET", "/users/@me") for _ in range(3)]
    assert shared[1]["X-RateLimit-Scope"] == "shared"
    assert shared[2]["retry_after"] == pytest.approx(2.0 * TIME_SCALE)
    assert global_[1]["X-RateLimit-Global"] == "true" and global_[2]["global"] is True
    assert user[1]["X-RateLimit-Scope"] == "user" and user[2]["global"] is False
    stats = emu.stats()
    assert stats["ratelimited_by_scope"] == {"user": 1, "global": 1, "shared": 1}
    assert stats["invalid_requests"] == 2  # a shared 429 is not the caller's fault
    with pytest.raises(ValueError):
        emu.fail_next("GET", "/", 429, scope="nobody")


@pytest.mark.parametrize(
    ("name", "kind", "status", "stored"),
    [
        ("My  Big Table", 0, 201, "my-big-table"),
        ("Voice Room", 2, 201, "Voice Room"),
        ("   ", 0, 400, None),
        ("x" * 101, 0, 400, None),
    ],
)
async def test_channel_names_are_normalised_and_bounded(
    emu: Emulator,
    session: aiohttp.ClientSession,
    name: str,
    kind: int,
    status: int,
    stored: str | None,
) -> None:
    bot = emu.create_bot("names")
    guild_id = emu.create_guild("names", bots=[bot])
    got, _, body = await Api(session, emu.url, bot.token)(
        "POST", f"/guilds/{guild_id}/channels", json={"name": name, "type": kind}
    )
    assert got == status
    if stored is not None:
        assert body["name"] == stored
    else:
        assert body["code"] == 50035 and "name" in body["errors"]


async def test_moderators_may_change_only_the_flags_of_others_messages(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    author = emu.create_bot("author")
    moderator = emu.create_bot("moderator")
    guild_id = emu.create_guild("mod", bots=[author, moderator])
    channel = emu.state.guilds[guild_id].channel_ids[0]
    _, _, message = await Api(session, emu.url, author.token)(
        "POST", f"/channels/{channel}/messages", json={"content": "x"}
    )
    mod = Api(session, emu.url, moderator.token)
    path = f"/channels/{channel}/messages/{message['id']}"
    status, _, body = await mod("PATCH", path, json={"flags": 4})
    assert status == 200 and body["flags"] == 4 and body["content"] == "x"
    status, _, body = await mod("PATCH", path, json={"content": "mine now"})
    assert status == 403 and body["code"] == 50005


async def test_replies_carry_the_message_they_answer(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    bot = emu.create_bot("replier")
    guild_id = emu.create_guild("replies", bots=[bot])
    channel = emu.state.guilds[guild_id].channel_ids[0]
    api = Api(session, emu.url, bot.token)
    path = f"/channels/{channel}/messages"
    _, _, first = await api("POST", path, json={"content": "question"})
    _, _, reply = await api(
        "POST", path, json={"content": "answer", "message_reference": {"message_id": first["id"]}}
    )
    assert reply["type"] == 19 and reply["referenced_message"]["id"] == first["id"]
    assert reply["message_reference"]["message_id"] == first["id"]
    await api("DELETE", f"{path}/{first['id']}")
    _, _, again = await api("GET", f"{path}/{reply['id']}")
    assert again["referenced_message"] is None
    missing, _, body = await api(
        "POST", path, json={"content": "x", "message_reference": {"message_id": first["id"]}}
    )
    assert missing == 400 and body["code"] == 50035
