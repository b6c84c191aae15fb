"""GatewayClient's start, budget, pacing and shutdown over real sockets."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from discobase.gateway import DispatchEvent, GatewayClient, IdentifyBudgetExhausted, SessionEvent
from tests.helpers import eventually
from tests.integration.gateway_world import open_world
from tests.integration.test_gateway_client_faults import SCALE, WAIT, connected


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_gateway_is_retried_until_closed() -> None:
    client = GatewayClient("t", url=f"ws://127.0.0.1:{_closed_port()}/gateway", time_scale=0.001)
    task = asyncio.create_task(client.run())
    await eventually(lambda: client.stats.connect_failures >= 3)
    assert client.stats.phase == "connecting"
    await client.close()  # during a backoff: returns without waiting it out
    await asyncio.wait_for(task, WAIT)
    assert task.exception() is None


@pytest.mark.slow
async def test_new_sessions_keep_identifies_apart() -> None:
    async with connected() as h:
        for n in range(3):
            await h.world.gateway.send_invalid_session(False)
            await eventually(lambda n=n: len(h.sessions()) == n + 2)  # type: ignore[misc]
        gw = h.gw()
        assert gw["identifies"] == 4 and gw["identify_rate_limited"] == 0


async def test_identify_is_refused_before_the_budget_runs_out() -> None:
    budget = {"total": 1000, "remaining": 11, "reset_after": 86_400_000, "max_concurrency": 1}
    async with open_world(SCALE) as world:
        client = GatewayClient(
            world.token,
            url=world.gateway_url,
            session_start_limit=budget,
            identify_floor=10,
            time_scale=SCALE,
        )
        task = asyncio.create_task(client.run())
        try:
            await asyncio.wait_for(client.wait_ready(), WAIT)
            await world.gateway.send_invalid_session(False)
            with pytest.raises(IdentifyBudgetExhausted) as info:
                await asyncio.wait_for(asyncio.shield(task), WAIT)
            assert info.value.remaining == 10 and world.token not in str(info.value)
            assert world.gateway.stats()["identifies"] == 1
        finally:
            await client.close()
            await asyncio.gather(task, return_exceptions=True)


@pytest.mark.slow
async def test_a_slow_ready_times_out_and_the_client_still_gets_in() -> None:
    async with open_world(SCALE) as world:
        # READY held for 100 Discord seconds (2 real s): past the client's READY timeout.
        world.gateway.delay_dispatches(100)
        client = GatewayClient(world.token, url=world.gateway_url, time_scale=SCALE)
        events: list[Any] = []

        async def listen(event: Any) -> None:
            events.append(event)

        client.add_listener(listen)
        task = asyncio.create_task(client.run())
        try:
            await eventually(lambda: client.stats.connects >= 2)
            world.gateway.delay_dispatches(0)
            await asyncio.wait_for(client.wait_ready(), WAIT)
            assert "READY" in str(client.last_error)
            assert any(isinstance(e, SessionEvent) for e in events)
        finally:
            await client.close()
            await asyncio.gather(task, return_exceptions=True)


async def test_close_from_a_listener_does_not_deadlock() -> None:
    async with open_world(SCALE) as world:
        client = GatewayClient(world.token, url=world.gateway_url, time_scale=SCALE)

        async def close_on_ready(event: Any) -> None:
            if isinstance(event, SessionEvent):
                await client.close()

        client.add_listener(close_on_ready)
        await asyncio.wait_for(client.run(), WAIT)
        await eventually(lambda: world.gateway.stats()["client_close_codes"].get(1000) == 1)


async def test_message_events_reach_listeners_with_their_content() -> None:
    async with connected() as h:
        message_id = await h.world.write("first")
        await h.world.http.edit_message(h.world.channel_id, message_id, content="second")
        await h.world.http.delete_message(h.world.channel_id, message_id)

        def names() -> list[str]:
            return [e.name for e in h.events if isinstance(e, DispatchEvent)]

        await eventually(lambda: "MESSAGE_DELETE" in names())
        by_name = {e.name: e.data for e in h.events if isinstance(e, DispatchEvent)}
        assert by_name["MESSAGE_CREATE"]["content"] == "first"  # own messages keep content
        assert by_name["MESSAGE_UPDATE"]["content"] == "second"
        assert by_name["MESSAGE_DELETE"]["id"] == message_id
