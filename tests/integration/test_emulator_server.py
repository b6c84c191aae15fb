"""The emulator as a server in another process: the command line and the admin API.

Layer: integration tests (a real subprocess and loopback sockets; generous timeouts).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from discobase.emulator import Emulator

_RUN = "from discobase.emulator.cli import main; raise SystemExit(main())"


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _RUN.replace("main()", f"main({list(args)!r})"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: dict[str, str] = {}
    while "DISCOBASE_TIME_SCALE" not in lines:
        raw = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        assert raw, "the emulator exited before printing its address"
        key, _, value = raw.decode().strip().partition("=")
        lines[key] = value
    return process, lines


async def _stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGINT)
    return await asyncio.wait_for(process.wait(), timeout=60)


async def test_cli_prints_how_to_connect_and_keeps_the_token(tmp_path: Path) -> None:
    data = str(tmp_path / "state")
    process, first = await _start("--data", data, "--time-scale", "0.05", "--guild", "mydb")
    try:
        assert first["DISCOBASE_API_URL"].startswith("http://127.0.0.1:")
        assert first["DISCOBASE_DATABASE"] == "mydb"
        assert first["DISCOBASE_TIME_SCALE"] == "0.05"
        headers = {"Authorization": f"Bot {first['DISCOBASE_TOKEN']}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(first["DISCOBASE_API_URL"] + "/api/v10/users/@me/guilds") as r:
                assert [g["name"] for g in await r.json()] == ["mydb"]
    finally:
        assert await _stop(process) == 0
    process, second = await _start("--data", data, "--guild", "mydb")
    try:
        assert second["DISCOBASE_TOKEN"] == first["DISCOBASE_TOKEN"]
        assert second["DISCOBASE_GUILD_ID"] == first["DISCOBASE_GUILD_ID"]
    finally:
        assert await _stop(process) == 0


@pytest.fixture
async def admin() -> AsyncIterator[tuple[Emulator, aiohttp.ClientSession, str]]:
    async with Emulator(time_scale=0.01) as emu, aiohttp.ClientSession() as session:
        yield emu, session, emu.url + "/_emulator"


async def _json(reply: aiohttp.ClientResponse) -> Any:
    return await reply.json()


async def test_admin_api_seeds_and_controls(admin: Any) -> None:
    emu, session, base = admin
    async with session.post(f"{base}/bots", json={"name": "remote"}) as reply:
        assert reply.status == 201
        bot = await reply.json()
    async with session.post(
        f"{base}/guilds", json={"name": "remote db", "bots": [bot["id"]]}
    ) as reply:
        guild_id = (await reply.json())["id"]
    api = emu.url + "/api/v10"
    headers = {"Authorization": f"Bot {bot['token']}"}
    async with session.get(f"{api}/guilds/{guild_id}", headers=headers) as reply:
        assert reply.status == 200
    async with session.put(
        f"{base}/guilds/{guild_id}/bots/{bot['id']}/permissions", json={"permissions": "1024"}
    ) as reply:
        assert reply.status == 204
    async with session.post(
        f"{api}/guilds/{guild_id}/channels", json={"name": "x"}, headers=headers
    ) as reply:
        assert reply.status == 403
    async with session.post(
        f"{base}/faults", json={"method": "GET", "path_regex": "/users/@me$", "status": 502}
    ) as reply:
        assert reply.status == 204
    async with session.get(f"{api}/users/@me", headers=headers) as reply:
        assert reply.status == 502
    async with session.get(f"{base}/stats") as reply:
        stats = await reply.json()
    assert stats["responses_by_status"]["502"] == 1
    assert stats["faults_injected"] == 1 and "gateway" in stats
    before = emu.clock.now()
    async with session.post(f"{base}/advance", json={"seconds": 86400}) as reply:
        assert (await reply.json())["now"] >= before + 86400
    async with session.post(f"{base}/reset", json={}) as reply:
        assert reply.status == 204
    assert emu.stats()["requests_total"] == 0 and emu.state.bots
    async with session.delete(f"{base}/guilds/{guild_id}/bots/{bot['id']}", json={}) as reply:
        assert reply.status == 204
    async with session.post(f"{base}/reset", json={"data": True}) as reply:
        assert reply.status == 204
    assert not emu.state.bots
    async with session.post(f"{base}/guilds", json={"bots": ["404"]}) as reply:
        assert reply.status == 400 and "error" in await reply.json()
