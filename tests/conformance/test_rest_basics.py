"""Authentication, discovery, unknown routes and snowflakes, as Discord documents them.

Layer: conformance tests (the emulator over loopback, judged by the facts sheet and the spec).
Sources: discord-api-facts.md sections 3.4, 3.5, 5.1, 5.2, 6.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conformance.conftest import call, snowflake_ms
from tests.conformance.openapi import CheckedSession

UNAUTHORIZED = {"message": "401: Unauthorized", "code": 0}
NOT_FOUND = {"message": "404: Not Found", "code": 0}


async def test_missing_token_is_401_with_discords_body(api: CheckedSession) -> None:
    reply = await api.get("/users/@me", auth=False)
    assert reply.status == 401
    assert reply.content_type == "application/json"
    assert reply.json() == UNAUTHORIZED


@pytest.mark.parametrize(
    "header",
    [
        "Bot MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
        "Bot not-a-token",
        "Bearer whatever",
        "",
    ],
)
async def test_wrong_token_is_401(api: CheckedSession, header: str) -> None:
    reply = await api.get("/users/@me", auth=header)
    assert reply.status == 401
    assert reply.json() == UNAUTHORIZED


async def test_token_of_one_bot_is_not_valid_with_the_id_segment_of_another(
    emu: Any, api: CheckedSession, bot: Any
) -> None:
    other = emu.create_bot("other")
    _, middle, tail = other.token.split(".", 2)
    forged = ".".join([bot.token.split(".", 1)[0], middle, tail])
    reply = await api.get("/users/@me", auth=f"Bot {forged}")
    assert reply.status == 401


def test_token_first_segment_is_base64_of_the_bot_id(bot: Any) -> None:
    first = bot.token.split(".")[0]
    decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode()
    assert decoded == bot.id
    assert len(bot.token.split(".")) == 3


async def test_users_me(api: CheckedSession, bot: Any) -> None:
    reply = await api.get("/users/@me")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    user = reply.json()
    assert user["id"] == bot.id
    assert isinstance(user["id"], str)
    assert user["bot"] is True
    assert isinstance(user["username"], str)


async def test_v9_is_served_too(api: CheckedSession, bot: Any) -> None:
    reply = await api.get("/api/v9/users/@me")
    assert reply.status == 200
    assert reply.json()["id"] == bot.id


async def test_current_application(api: CheckedSession, bot: Any) -> None:
    reply = await api.get("/oauth2/applications/@me")
    assert reply.status == 200
    app = reply.json()
    assert app["id"] == str(bot.application_id)
    if "bot" in app:
        assert app["bot"]["id"] == bot.id


async def test_gateway_needs_no_auth(api: CheckedSession) -> None:
    reply = await api.get("/gateway", auth=False)
    assert reply.status == 200
    assert reply.json()["url"].startswith(("ws://", "wss://"))


async def test_gateway_bot_reports_session_start_limit(api: CheckedSession) -> None:
    reply = await api.get("/gateway/bot")
    assert reply.status == 200
    body = reply.json()
    assert body["url"].startswith(("ws://", "wss://"))
    assert isinstance(body["shards"], int) and body["shards"] >= 1
    limit = body["session_start_limit"]
    assert limit["total"] == 1000
    assert 0 <= limit["remaining"] <= limit["total"]
    assert isinstance(limit["reset_after"], int) and limit["reset_after"] >= 0
    assert limit["max_concurrency"] >= 1


async def test_gateway_urls_point_at_this_server(emu: Any, api: CheckedSession) -> None:
    origin = urlsplit(emu.url)
    for path in ("/gateway", "/gateway/bot"):
        url = urlsplit((await api.get(path)).json()["url"])
        assert (url.hostname, url.port) == (origin.hostname, origin.port)


async def test_session_start_limit_reset_is_scaled_milliseconds(api: CheckedSession) -> None:
    limit = (await api.get("/gateway/bot")).json()["session_start_limit"]
    # A day in ms, times the suite's time scale of 0.01.
    assert 0 < limit["reset_after"] <= 86_400_000 * 0.01


async def test_gateway_bot_needs_a_token(api: CheckedSession) -> None:
    reply = await api.get("/gateway/bot", auth=False)
    assert reply.status == 401
    assert reply.json() == UNAUTHORIZED


@pytest.mark.parametrize(
    "path", ["/nowhere", "/users/@me/nothing-here", "/channels/1/messages/2/nope/3"]
)
async def test_unknown_route_is_404_code_0(api: CheckedSession, path: str) -> None:
    reply = await api.get(path)
    assert reply.status == 404
    assert reply.content_type == "application/json"
    assert reply.json() == NOT_FOUND


async def test_wrong_method_is_405(api: CheckedSession) -> None:
    reply = await api.request("PUT", "/gateway/bot")
    assert reply.status == 405
    assert reply.json()["code"] == 0


async def test_snowflakes_are_increasing_strings_in_discord_time(
    api: CheckedSession, channel_id: str
) -> None:
    ids = []
    for i in range(5):
        reply = await call(
            api, "POST", f"/channels/{channel_id}/messages", json={"content": str(i)}
        )
        message = reply.json()
        assert isinstance(message["id"], str) and message["id"].isdigit()
        # A message's timestamp is its snowflake's time.
        stamp = datetime.fromisoformat(message["timestamp"]).timestamp() * 1000
        assert abs(stamp - snowflake_ms(message["id"])) < 1000
        ids.append(int(message["id"]))
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert isinstance(channel_id, str)


async def test_snowflake_time_follows_the_discord_clock(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    first = (
        await call(api, "POST", f"/channels/{channel_id}/messages", json={"content": "a"})
    ).json()
    emu.advance(86_400)
    second = (
        await call(api, "POST", f"/channels/{channel_id}/messages", json={"content": "b"})
    ).json()
    gap_ms = snowflake_ms(second["id"]) - snowflake_ms(first["id"])
    assert gap_ms >= 86_400_000
    # After 2015-01-01 and before 2100: a real epoch, not a counter.
    assert datetime(2015, 1, 1).timestamp() * 1000 < snowflake_ms(first["id"])
    assert snowflake_ms(second["id"]) < datetime(2100, 1, 1).timestamp() * 1000


@pytest.mark.parametrize("version", ["v5", "v4", "v3"])
async def test_discontinued_versions_are_400(api: CheckedSession, version: str) -> None:
    reply = await api.get(f"/api/{version}/users/@me")
    assert reply.status == 400
    assert reply.json()["code"] == 50041


@pytest.mark.parametrize("content_type", ["text/plain", None])
async def test_body_without_an_accepted_content_type_is_50035(
    api: CheckedSession, channel_id: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    reply = await api.post(
        f"/channels/{channel_id}/messages", data=b'{"content": "x"}', headers=headers
    )
    assert reply.status == 400
    assert reply.json()["code"] == 50035


async def test_invalid_json_is_50109(api: CheckedSession, channel_id: str) -> None:
    reply = await api.post(
        f"/channels/{channel_id}/messages",
        data=b'{"content": ',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400
    assert reply.json()["code"] == 50109


async def test_form_urlencoded_fields_are_accepted(api: CheckedSession, channel_id: str) -> None:
    reply = await api.post(f"/channels/{channel_id}/messages", data={"content": "from a form"})
    assert reply.status == 200
    assert reply.json()["content"] == "from a form"


async def test_malformed_snowflake_in_path_is_a_form_error(api: CheckedSession) -> None:
    reply = await api.get("/channels/not-a-number")
    assert reply.status == 400
    assert reply.json()["code"] == 50035
