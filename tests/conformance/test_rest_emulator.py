"""The emulator as a product: counters, fault injection, reset, admin API, legacy guild creation
and state kept across restarts (embedded ``data_dir`` and the ``--data`` command line).

Layer: conformance tests. These features are the emulator's own (issue 2, "How people use
it"); Discord has no equivalent, so they are judged by the issue and ARCHITECTURE.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conformance.conftest import call, create_channel, post_messages
from tests.conformance.openapi import CheckedSession, OpenAPISpec

REPO_ROOT = Path(__file__).resolve().parents[2]


def count(mapping: Mapping[Any, Any], key: int) -> int:
    """Read a counter keyed by status, whether the key is an int or a string."""
    return int(mapping.get(key, 0)) + int(mapping.get(str(key), 0))


async def test_stats_count_requests_statuses_scopes_and_invalid(start_emulator: Any) -> None:
    emu, _, api, guild = await start_emulator(time_scale=1.0)
    channel = (await create_channel(api, guild, "counted"))["id"]
    emu.reset()
    assert (await api.get("/users/@me", auth=False)).status == 401
    statuses = [
        (await api.post(f"/channels/{channel}/messages", json={"content": "x"})).status
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]

    stats = emu.stats()
    assert stats["requests_total"] == 7
    assert stats["requests_by_route"]["POST /channels/{channel_id}/messages"] == 6
    assert stats["requests_by_route"]["GET /users/@me"] == 1
    by_status = stats["responses_by_status"]
    assert (count(by_status, 200), count(by_status, 401), count(by_status, 429)) == (5, 1, 1)
    assert stats["ratelimited_by_scope"]["user"] == 1
    assert stats["ratelimited_by_scope"]["global"] == 0
    assert stats["invalid_requests"] == 2


async def test_reset_clears_counters_and_windows_keeps_data(start_emulator: Any) -> None:
    emu, _, api, guild = await start_emulator(time_scale=1.0)
    channel = (await create_channel(api, guild, "kept"))["id"]
    for _ in range(5):
        assert (
            await api.post(f"/channels/{channel}/messages", json={"content": "x"})
        ).status == 200
    assert (await api.post(f"/channels/{channel}/messages", json={"content": "x"})).status == 429
    emu.reset()
    assert emu.stats()["requests_total"] == 0
    assert (await api.post(f"/channels/{channel}/messages", json={"content": "y"})).status == 200
    assert len((await api.get(f"/channels/{channel}/messages")).json()) == 6


async def test_fail_next_n_then_recover(emu: Any, api: CheckedSession) -> None:
    emu.fail_next("GET", r"/users/@me$", 502, count=2)
    statuses = [(await api.get("/users/@me")).status for _ in range(3)]
    assert statuses == [502, 502, 200]
    assert emu.stats()["faults_injected"] == 2


async def test_fault_matches_method_and_path_only(emu: Any, api: CheckedSession) -> None:
    emu.fail_next("POST", r"/users/@me$", 500)
    assert (await api.get("/users/@me")).status == 200
    assert (await api.get("/gateway/bot")).status == 200


async def test_500_before_the_write_stores_nothing(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    emu.fail_next("POST", r"/channels/\d+/messages$", 500)
    reply = await api.post(f"/channels/{channel_id}/messages", json={"content": "lost"})
    assert reply.status == 500
    assert (await api.get(f"/channels/{channel_id}/messages")).json() == []


async def test_500_after_the_write_and_a_nonce_retry(
    emu: Any, api: CheckedSession, channel_id: str
) -> None:
    emu.fail_next("POST", r"/channels/\d+/messages$", 500, after_write=True)
    body = {"content": "stored anyway", "nonce": "retry-1", "enforce_nonce": True}
    failed = await api.post(f"/channels/{channel_id}/messages", json=body)
    assert failed.status == 500
    stored = (await api.get(f"/channels/{channel_id}/messages")).json()
    assert [m["content"] for m in stored] == ["stored anyway"]
    retried = await call(api, "POST", f"/channels/{channel_id}/messages", json=body)
    assert retried.status == 200
    assert retried.json()["id"] == stored[0]["id"]
    assert len((await api.get(f"/channels/{channel_id}/messages")).json()) == 1


async def test_post_guilds_with_the_legacy_option(start_emulator: Any) -> None:
    _, bot, api, _ = await start_emulator(time_scale=0.01, allow_guild_create=True)
    reply = await api.post("/guilds", json={"name": "Legacy"})
    assert reply.status == 201
    guild = reply.json()
    assert guild["name"] == "Legacy" and isinstance(guild["id"], str)
    listed = [g["id"] for g in (await api.get("/users/@me/guilds")).json()]
    assert guild["id"] in listed
    assert (await create_channel(api, guild["id"], "works"))["guild_id"] == guild["id"]


# -- the admin API ---------------------------------------------------------------------------


async def test_admin_api_seeds_and_controls(
    emu: Any, http_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> None:
    admin = CheckedSession(http_session, emu.url, openapi_spec)
    health = await admin.get("/_emulator")
    assert health.status == 200 and health.json()["url"] == emu.url

    made = await admin.post("/_emulator/bots", json={"name": "remote"})
    assert made.status == 201
    bot = made.json()
    guild = await admin.post("/_emulator/guilds", json={"name": "Remote", "bots": [bot["id"]]})
    assert guild.status == 201
    guild_id = guild.json()["id"]

    api = admin.with_token(bot["token"])
    assert (await api.get("/users/@me")).json()["id"] == bot["id"]
    assert guild_id in [g["id"] for g in (await api.get("/users/@me/guilds")).json()]

    fault = {"method": "GET", "path_regex": r"/users/@me$", "status": 503}
    assert (await admin.post("/_emulator/faults", json=fault)).status == 204
    assert (await api.get("/users/@me")).status == 503

    stats = (await admin.get("/_emulator/stats")).json()
    assert stats["faults_injected"] == 1 and stats["requests_total"] >= 3

    channel = (await create_channel(api, guild_id, "remote"))["id"]
    old = await post_messages(api, channel, 1)
    advanced = await admin.post("/_emulator/advance", json={"seconds": 15 * 86_400})
    assert advanced.status == 200
    fresh = await post_messages(api, channel, 1)
    bulk = await api.post(
        f"/channels/{channel}/messages/bulk-delete", json={"messages": old + fresh}
    )
    assert bulk.json()["code"] == 50034

    perms = {"permissions": str(1 << 10)}
    path = f"/_emulator/guilds/{guild_id}/bots/{bot['id']}/permissions"
    assert (await admin.put(path, json=perms)).status == 204
    denied = await api.post(f"/channels/{channel}/messages", json={"content": "x"})
    assert denied.status == 403 and denied.json()["code"] == 50013

    assert (await admin.post("/_emulator/reset", json={})).status == 204
    # Admin calls are not Discord traffic: only API requests are counted.
    assert (await admin.get("/_emulator/stats")).json()["requests_total"] == 0


async def test_admin_api_refuses_bad_input(emu: Any, api: CheckedSession) -> None:
    reply = await api.post("/_emulator/faults", json={"status": 500}, auth=False)
    assert reply.status == 400


# -- persistence -----------------------------------------------------------------------------


async def test_data_dir_keeps_state_across_restarts(
    tmp_path: Path, http_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> None:
    from discobase.emulator import Emulator

    async with Emulator(time_scale=0.01, data_dir=tmp_path) as first:
        bot = first.create_bot("durable")
        guild = str(first.create_guild("Durable", bots=[bot]))
        api = CheckedSession(http_session, first.url, openapi_spec, bot.token)
        channel = (await create_channel(api, guild, "kept"))["id"]
        ids = await post_messages(api, channel, 3)
        await call(api, "PUT", f"/channels/{channel}/messages/pins/{ids[0]}")

    async with Emulator(time_scale=0.01, data_dir=tmp_path) as second:
        api = CheckedSession(http_session, second.url, openapi_spec, bot.token)
        assert (await api.get("/users/@me")).json()["id"] == bot.id
        history = (await api.get(f"/channels/{channel}/messages")).json()
        assert [m["id"] for m in history if m["type"] == 0] == ids[::-1]
        pins = (await api.get(f"/channels/{channel}/messages/pins")).json()
        assert [i["message"]["id"] for i in pins["items"]] == [ids[0]]
        # Snowflakes keep increasing after a restart.
        newer = await post_messages(api, channel, 1)
        assert int(newer[0]) > max(int(m["id"]) for m in history)


async def test_uploaded_files_survive_a_restart(
    tmp_path: Path, http_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> None:
    from discobase.emulator import Emulator

    async with Emulator(time_scale=0.01, data_dir=tmp_path) as first:
        bot = first.create_bot("files")
        guild = str(first.create_guild("Files", bots=[bot]))
        api = CheckedSession(http_session, first.url, openapi_spec, bot.token)
        channel = (await create_channel(api, guild, "files"))["id"]
        form = aiohttp.FormData(quote_fields=False)
        form.add_field(
            "payload_json", json.dumps({"content": "f"}), content_type="application/json"
        )
        form.add_field("files[0]", b"persisted bytes", filename="p.bin")
        message = (await api.post(f"/channels/{channel}/messages", data=form)).json()

    async with Emulator(time_scale=0.01, data_dir=tmp_path) as second:
        api = CheckedSession(http_session, second.url, openapi_spec, bot.token)
        fetched = (await api.get(f"/channels/{channel}/messages/{message['id']}")).json()
        download = await api.get(fetched["attachments"][0]["url"], auth=False)
        assert download.status == 200 and download.body == b"persisted bytes"


class ServerProcess:
    """``python -m discobase emulator`` as a child process of this test."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.process: asyncio.subprocess.Process | None = None
        self.values: dict[str, str] = {}

    async def __aenter__(self) -> ServerProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "discobase",
            "emulator",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        assert self.process.stdout is not None
        while not {"DISCOBASE_API_URL", "DISCOBASE_TOKEN"} <= self.values.keys():
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout=60)
            if not line:
                raise AssertionError("the emulator exited before printing its URL and token")
            key, sep, value = line.decode().strip().partition("=")
            if sep:
                self.values[key] = value
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), timeout=60)


@pytest.fixture
async def cli_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_command_line_server_with_data_keeps_state(
    tmp_path: Path, cli_session: aiohttp.ClientSession, openapi_spec: OpenAPISpec | None
) -> None:
    args = ("--data", str(tmp_path), "--time-scale", "0.01", "--guild", "CLI")
    async with ServerProcess(*args) as server:
        url, token = server.values["DISCOBASE_API_URL"], server.values["DISCOBASE_TOKEN"]
        url = url.split("/api/")[0]
        api = CheckedSession(cli_session, url, openapi_spec, token)
        guilds = (await api.get("/users/@me/guilds")).json()
        assert [g["name"] for g in guilds] == ["CLI"]
        channel = (await create_channel(api, guilds[0]["id"], "durable"))["id"]
        ids = await post_messages(api, channel, 2)

    async with ServerProcess(*args) as again:
        assert again.values["DISCOBASE_TOKEN"] == token
        url = again.values["DISCOBASE_API_URL"].split("/api/")[0]
        api = CheckedSession(cli_session, url, openapi_spec, token)
        guilds = (await api.get("/users/@me/guilds")).json()
        assert [g["name"] for g in guilds] == ["CLI"]
        assert [m["id"] for m in (await api.get(f"/channels/{channel}/messages")).json()] == ids[
            ::-1
        ]
