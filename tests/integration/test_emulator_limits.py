"""The emulator's rate limits: the pure engine (times passed in) and what reaches the wire.

Layer: integration tests; the engine tests need no socket and no clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from discobase.emulator import DEFAULT_LIMITS, Emulator, LimitConfig, RouteLimit
from discobase.emulator.limits import RateLimiter


def test_buckets_are_fixed_windows_per_resource() -> None:
    limiter = RateLimiter()
    decisions = [limiter.check("message_create", "bot:1", 100.0 + i * 0.1) for i in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].reset_after == pytest.approx(4.5)
    assert limiter.check("message_create", "bot:2", 100.6).allowed  # another channel
    assert limiter.check("message_create", "bot:1", 105.0).remaining == 4  # a new window


def test_global_limit_is_a_sliding_second() -> None:
    limiter = RateLimiter()
    waits = [limiter.check_global("bot", 10.0 + i * 0.01) for i in range(51)]
    assert waits[:50] == [0.0] * 50 and waits[50] > 0
    assert limiter.check_global("bot", 11.001) == 0.0
    assert limiter.check_global("other", 10.5) == 0.0


def test_invalid_requests_lead_to_a_ban_that_expires() -> None:
    limiter = RateLimiter(LimitConfig(invalid_limit=3, invalid_window=600, ban_duration=60))
    assert [limiter.record_invalid("1.2.3.4", t) for t in (1.0, 2.0, 3.0)] == [
        False,
        False,
        True,
    ]
    assert limiter.banned_for("1.2.3.4", 30.0) == pytest.approx(33.0)
    assert limiter.banned_for("5.6.7.8", 30.0) == 0
    assert limiter.banned_for("1.2.3.4", 63.0) == 0


def test_every_default_has_a_source_and_overrides_apply() -> None:
    assert all(limit.source and limit.bucket for limit in DEFAULT_LIMITS.values())
    assert DEFAULT_LIMITS["message_create"].limit == 5
    assert DEFAULT_LIMITS["channel_name_topic"].window == 600
    config = LimitConfig().with_overrides(
        {"message_create": (10, 1.0), "global_limit": 5, "pin": RouteLimit(1, 9.0, "test")}
    )
    assert config.routes["message_create"].limit == 10
    assert config.routes["message_create"].bucket == DEFAULT_LIMITS["message_create"].bucket
    assert config.routes["pin"].bucket == DEFAULT_LIMITS["pin"].bucket
    assert config.global_limit == 5
    with pytest.raises(KeyError):
        LimitConfig().with_overrides({"no_such_limit": 1})


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_ban_is_cloudflare_html_without_via(session: aiohttp.ClientSession) -> None:
    limits = {"invalid_limit": 5, "ban_duration": 3600.0}
    async with Emulator(time_scale=0.01, limits=limits) as emu:
        url = emu.url + "/api/v10/users/@me"
        for _ in range(5):
            async with session.get(url, headers={"Authorization": "Bot wrong"}) as reply:
                assert reply.status == 401
        bot = emu.create_bot("banned")
        async with session.get(url, headers={"Authorization": f"Bot {bot.token}"}) as reply:
            assert reply.status == 429
            assert reply.content_type == "text/html"
            assert "Via" not in reply.headers
            assert "Retry-After" in reply.headers
            assert b"<html" in await reply.read()
        stats = emu.stats()
        assert stats["bans"] == 1 and stats["banned_requests"] == 1


async def messages_path(
    session: aiohttp.ClientSession, emu: Emulator
) -> tuple[str, dict[str, str]]:
    """Seed a bot and guild, create a channel; return its messages URL and the bot's headers."""
    bot = emu.create_bot("limits")
    guild_id = emu.create_guild("limits", bots=[bot])
    headers = {"Authorization": f"Bot {bot.token}"}
    base = emu.url + "/api/v10"
    async with session.post(
        f"{base}/guilds/{guild_id}/channels", json={"name": "c"}, headers=headers
    ) as reply:
        channel: dict[str, Any] = await reply.json()
    return f"{base}/channels/{channel['id']}/messages", headers


async def test_young_deletes_carry_no_rate_limit_headers(session: aiohttp.ClientSession) -> None:
    # time_scale 1.0: the message is certainly younger than 10 Discord seconds.
    async with Emulator(time_scale=1.0) as emu:
        path, headers = await messages_path(session, emu)
        async with session.post(path, json={"content": "x"}, headers=headers) as reply:
            message = await reply.json()
        async with session.delete(f"{path}/{message['id']}", headers=headers) as reply:
            assert reply.status == 204
            assert "X-RateLimit-Bucket" not in reply.headers
        async with session.post(path, json={"content": "y"}, headers=headers) as reply:
            older = await reply.json()
        emu.advance(60)
        async with session.delete(f"{path}/{older['id']}", headers=headers) as reply:
            assert reply.status == 204
            assert reply.headers["X-RateLimit-Limit"] == "3"


async def test_time_scale_shrinks_reported_windows(session: aiohttp.ClientSession) -> None:
    async with Emulator(time_scale=0.02) as emu:
        bot = emu.create_bot("scaled")
        async with session.get(
            emu.url + "/api/v10/users/@me", headers={"Authorization": f"Bot {bot.token}"}
        ) as reply:
            reset_after = float(reply.headers["X-RateLimit-Reset-After"])
            assert 0 < reset_after <= 5 * 0.02
        async with session.get(
            emu.url + "/api/v10/gateway/bot", headers={"Authorization": f"Bot {bot.token}"}
        ) as reply:
            limit = (await reply.json())["session_start_limit"]
            assert limit["reset_after"] == int(86_400 * 0.02 * 1000)


async def test_retry_after_header_is_whole_discord_seconds_scaled(
    session: aiohttp.ClientSession,
) -> None:
    """Discord's ``Retry-After`` is whole seconds rounded up. Scaled, it stays whole *Discord*
    seconds said in real ones: at time scale 0.01 a 5-second window's refusal says at most
    0.05, not a real second (100 Discord seconds), so the header keeps Discord's ratios."""
    async with Emulator(time_scale=0.01) as emu:
        path, headers = await messages_path(session, emu)
        statuses = []
        for n in range(6):
            async with session.post(path, json={"content": f"m{n}"}, headers=headers) as reply:
                statuses.append(reply.status)
                if reply.status == 429:
                    header = float(reply.headers["Retry-After"])
                    body = (await reply.json())["retry_after"]
        assert statuses[-1] == 429, statuses
        whole = header / 0.01
        assert abs(whole - round(whole)) < 1e-6 and 1 <= round(whole) <= 5
        assert body <= header < body + 0.01
