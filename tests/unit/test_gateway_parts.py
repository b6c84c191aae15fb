"""The gateway's small pure parts: inflater, send limiter, enums, errors, cache, client guards."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import discobase.gateway as gateway
from discobase.errors import DiscobaseError, UsageError
from discobase.gateway import (
    CloseCode,
    GatewayCache,
    GatewayClient,
    GatewayClientClosed,
    GatewayClosed,
    IdentifyBudgetExhausted,
    Intents,
)
from discobase.gateway.inflate import InflateError, ZlibStreamInflater
from discobase.gateway.sendlimit import SendLimiter, heartbeat_reserve

TOKEN = "Bot-secret-token-xyz"


def _deflate_stream(payloads: list[dict[str, object]]) -> list[bytes]:
    compressor = zlib.compressobj()
    return [
        compressor.compress(json.dumps(p).encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        for p in payloads
    ]


# --- package hygiene -------------------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    assert list(gateway.__all__) == sorted(gateway.__all__)
    for name in gateway.__all__:
        assert hasattr(gateway, name), name


def test_import_does_not_load_aiohttp_or_the_http_client() -> None:
    code = (
        "import sys, discobase.gateway; "
        "print(','.join(m for m in ('aiohttp', 'discobase.http') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


SANS_IO = [
    "protocol",
    "actions",
    "budget",
    "config",
    "connection_state",
    "payloads",
    "enums",
    "errors",
    "events",
    "sendlimit",
    "inflate",
    "cache",
]


def _imports(path: Path) -> set[str]:
    """Return every module ``path`` imports (``from x import y``: ``x`` and ``x.y``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("module", SANS_IO)
def test_the_sans_io_modules_import_neither_aiohttp_nor_asyncio(module: str) -> None:
    """The protocol and its parts, and every discobase module they import in turn, stay sans-IO.

    Packages' ``__init__`` are not followed: ``discobase.gateway``'s loads the client, but
    nothing of the parts' own code depends on it.
    """
    root = Path(gateway.__file__).parents[1]
    seen: set[str] = set()
    todo = [f"discobase.gateway.{module}"]
    while todo:
        name = todo.pop()
        path = root.joinpath(*name.split(".")[1:]).with_suffix(".py")
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        imported = _imports(path)
        tops = {n.split(".")[0] for n in imported}
        assert not tops & {"aiohttp", "asyncio"}, (name, tops)
        todo.extend(n for n in imported if n.startswith("discobase."))
    assert not seen & {"discobase.gateway.connection", "discobase.gateway.client"}, seen


# --- zlib-stream -----------------------------------------------------------------------


def test_inflater_buffers_until_the_sync_flush_suffix() -> None:
    frames = _deflate_stream([{"op": 10, "d": {"heartbeat_interval": 45000}}, {"op": 11}])
    inflater = ZlibStreamInflater()
    first = frames[0]
    assert inflater.feed(first[:5]) is None
    assert json.loads(inflater.feed(first[5:]) or b"") == {
        "op": 10,
        "d": {"heartbeat_interval": 45000},
    }
    assert json.loads(inflater.feed(frames[1]) or b"") == {"op": 11}


def test_a_new_connection_needs_a_new_inflater() -> None:
    old = ZlibStreamInflater()
    for frame in _deflate_stream([{"op": 11}, {"op": 11}]):
        old.feed(frame)
    fresh_stream = _deflate_stream([{"op": 10, "d": {}}])  # starts with a new zlib header
    with pytest.raises(InflateError):
        old.feed(fresh_stream[0])
    assert json.loads(ZlibStreamInflater().feed(fresh_stream[0]) or b"")["op"] == 10


# --- send limiter ----------------------------------------------------------------------


def test_send_limiter_keeps_a_reserve_for_heartbeats() -> None:
    limiter = SendLimiter(60.0, 120, reserve=heartbeat_reserve(60.0, 41.25))
    assert limiter.reserve == 4
    for _ in range(116):
        assert limiter.can_send(0.0)
        limiter.record(0.0)
    assert not limiter.can_send(0.0)
    assert limiter.can_send(0.0, priority=True)
    assert limiter.next_slot(1.0) == 60.0
    assert limiter.can_send(60.0)


def test_send_limiter_slides() -> None:
    limiter = SendLimiter(10.0, 3, reserve=0)
    for t in (0.0, 4.0, 8.0):
        limiter.record(t)
    assert limiter.next_slot(9.0) == 10.0
    assert limiter.count(10.0) == 2 and limiter.count(14.0) == 1


# --- enums and errors ------------------------------------------------------------------


def test_close_codes_know_which_may_reconnect() -> None:
    fatal = {c for c in CloseCode if not c.may_reconnect}
    assert fatal == {4004, 4010, 4011, 4012, 4013, 4014}
    assert CloseCode.INVALID_SEQ.ends_session and CloseCode.SESSION_TIMED_OUT.ends_session
    assert not CloseCode.fatal(None) and not CloseCode.fatal(4999)


def test_default_intents_are_guilds_and_guild_messages() -> None:
    assert int(Intents.GUILDS | Intents.GUILD_MESSAGES) == 513
    assert Intents.MESSAGE_CONTENT == 1 << 15


def test_errors_sit_under_discobase_error() -> None:
    closed = GatewayClosed(4014, "Disallowed intent(s).")
    assert isinstance(closed, DiscobaseError) and not closed.may_reconnect
    assert "4014" in str(closed) and "DISALLOWED_INTENTS" in str(closed)
    assert GatewayClosed(4000).may_reconnect
    assert isinstance(IdentifyBudgetExhausted(3, 10, 60.0), DiscobaseError)
    assert issubclass(GatewayClientClosed, UsageError)


# --- cache -----------------------------------------------------------------------------


def test_cache_follows_guild_and_channel_dispatches() -> None:
    cache = GatewayCache()
    cache.apply("READY", {"user": {"id": "1"}, "guilds": [{"id": "10", "unavailable": True}]})
    assert not cache.ready and cache.user == {"id": "1"}
    cache.apply(
        "GUILD_CREATE",
        {"id": "10", "name": "db", "channels": [{"id": "100", "name": "a", "type": 0}]},
    )
    assert cache.ready
    guild = cache.guilds["10"]
    assert guild.name == "db" and guild.channels["100"]["guild_id"] == "10"
    cache.apply("CHANNEL_CREATE", {"id": "101", "guild_id": "10", "name": "b"})
    cache.apply("CHANNEL_UPDATE", {"id": "100", "guild_id": "10", "name": "a2"})
    cache.apply("CHANNEL_DELETE", {"id": "101", "guild_id": "10"})
    assert {k: v["name"] for k, v in guild.channels.items()} == {"100": "a2"}
    cache.apply("GUILD_UPDATE", {"id": "10", "name": "renamed"})
    assert cache.guilds["10"].name == "renamed"
    cache.apply("GUILD_DELETE", {"id": "10", "unavailable": True})
    assert cache.guilds["10"].unavailable
    cache.apply("GUILD_DELETE", {"id": "10"})  # removed from the guild
    assert cache.guilds == {}


def test_a_new_ready_forgets_guilds_it_does_not_list() -> None:
    cache = GatewayCache()
    cache.apply("READY", {"guilds": [{"id": "1"}, {"id": "2"}]})
    cache.apply("GUILD_CREATE", {"id": "1", "name": "a"})
    cache.apply("GUILD_CREATE", {"id": "2", "name": "b"})
    cache.apply("READY", {"guilds": [{"id": "2"}]})
    assert set(cache.guilds) == {"2"} and not cache.ready
    cache.apply("GUILD_CREATE", {"id": "2", "name": "b"})
    assert cache.ready


# --- client guards (no network) --------------------------------------------------------


async def test_client_refuses_misuse_and_hides_its_token() -> None:
    client = GatewayClient(TOKEN, url="ws://127.0.0.1:9/gateway")
    assert TOKEN not in repr(client)
    with pytest.raises(UsageError):
        client.send_command(3, {})
    await client.close()
    with pytest.raises(GatewayClientClosed):
        await client.wait_ready()
    with pytest.raises(UsageError):
        await client.run()
