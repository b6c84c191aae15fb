"""GatewayClient against a scripted gateway, for what the emulator cannot stage.

A resume URL that refuses connections (scenario 22's last case): the next attempt must go to
the base URL, still resuming. The script is a tiny aiohttp websocket handler on loopback.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import web

from discobase.gateway import GatewayClient, SessionEvent
from tests.helpers import eventually
from tests.integration.test_gateway_client_faults import WAIT


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_resume_url_sends_the_resume_to_the_base_url() -> None:
    dead_resume_url = f"ws://127.0.0.1:{_closed_port()}/gateway/resume"
    received: list[tuple[int, dict[str, Any]]] = []  # (connection number, payload)
    connections = 0

    async def gateway(request: web.Request) -> web.WebSocketResponse:
        nonlocal connections
        connections += 1
        number = connections
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 60_000}, "s": None, "t": None})
        async for message in ws:
            payload = message.json()
            received.append((number, payload))
            if payload["op"] == 2:
                ready = {"session_id": "s1", "resume_gateway_url": dead_resume_url, "guilds": []}
                await ws.send_json({"op": 0, "d": ready, "s": 1, "t": "READY"})
                await ws.close(code=4000)  # a resumable drop: the client heads for the resume URL
            elif payload["op"] == 6:
                await ws.send_json({"op": 0, "d": {}, "s": 2, "t": "RESUMED"})
        return ws

    app = web.Application()
    app.router.add_get("/gateway", gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = GatewayClient("t", url=f"ws://127.0.0.1:{port}/gateway", time_scale=0.01)
    sessions: list[bool] = []

    async def listen(event: Any) -> None:
        if isinstance(event, SessionEvent):
            sessions.append(event.resumed)

    client.add_listener(listen)
    task = asyncio.create_task(client.run())
    try:
        await eventually(lambda: sessions == [False, True], timeout=WAIT)
        assert client.stats.connect_failures == 1  # the resume URL, once
        assert [(n, p["op"]) for n, p in received if p["op"] in (2, 6)] == [(1, 2), (2, 6)]
        resume = next(p for _, p in received if p["op"] == 6)
        assert resume["d"]["session_id"] == "s1" and resume["d"]["seq"] == 1
    finally:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()
