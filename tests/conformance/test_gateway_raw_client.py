"""A raw gateway client for the conformance tests, and tests of the emulator's pure parts.

Layer: conformance tests. ``RawGateway`` speaks the gateway with nothing but aiohttp's client
websocket and its own zlib inflater, never discobase's gateway client: the server must be
proved right by something that cannot share its misunderstandings. The other
``test_gateway_*`` modules import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from discobase.emulator.gateway.codes import CloseCode, Opcode
from discobase.emulator.gateway.compression import ZlibStream
from discobase.emulator.gateway.limits import SlidingLog
from discobase.emulator.gateway.protocol import (
    Violation,
    decode_payload,
    in_shard,
    parse_identify,
    strip_message_content,
)
from discobase.emulator.gateway.session import SessionRegistry
from discobase.emulator.gateway.stats import ConnectionRecord

GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15
# Generous waits: the suite must pass on a loaded machine; nothing here measures durations.
WAIT = 10.0
SUFFIX = b"\x00\x00\xff\xff"


class Closed(Exception):
    """The server closed the websocket (``code`` is None when the TCP connection just ended)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"closed: {code} {reason}")
        self.code = code
        self.reason = reason


class RawGateway:
    """One websocket to the emulator's gateway, decoded by hand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, compressed: bool) -> None:
        self.ws = ws
        self.compressed = compressed
        self._inflate = zlib.decompressobj()
        self._buffer = bytearray()
        self.seq: int | None = None
        self.frames: list[dict[str, Any]] = []
        self.binary_frames = 0
        self.text_frames = 0
        self._beats: asyncio.Task[None] | None = None
        self.hello: dict[str, Any] = {}

    @classmethod
    async def connect(
        cls,
        session: aiohttp.ClientSession,
        base: str,
        path: str = "/gateway",
        *,
        compress: str | None = "zlib-stream",
        query: dict[str, str] | None = None,
        read_hello: bool = True,
    ) -> RawGateway:
        """Open a websocket and (by default) read HELLO."""
        params = {"v": "10", "encoding": "json"}
        if compress:
            params["compress"] = compress
        if query is not None:
            params = query
        url = "ws" + base[len("http") :] + path
        ws = await session.ws_connect(url, params=params, autoping=True)
        gw = cls(ws, compressed=bool(compress))
        if read_hello:
            gw.hello = await gw.recv()
            assert gw.hello["op"] == Opcode.HELLO, gw.hello
        return gw

    @property
    def interval(self) -> float:
        """HELLO's heartbeat interval in real seconds."""
        return float(self.hello["d"]["heartbeat_interval"]) / 1000

    def _decode(self, data: bytes) -> dict[str, Any] | None:
        self._buffer += data
        if not self._buffer.endswith(SUFFIX):
            return None
        text = self._inflate.decompress(bytes(self._buffer))
        self._buffer.clear()
        payload: dict[str, Any] = orjson.loads(text)
        return payload

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        """Return the next payload, raising :class:`Closed` when the socket closes."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type is aiohttp.WSMsgType.BINARY:
                self.binary_frames += 1
                payload = self._decode(msg.data)
                if payload is None:
                    continue
            elif msg.type is aiohttp.WSMsgType.TEXT:
                self.text_frames += 1
                payload = orjson.loads(msg.data)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                raise Closed(msg.data, msg.extra or "")
            else:
                raise Closed(self.ws.close_code if msg.type is aiohttp.WSMsgType.CLOSED else None)
            if payload.get("s") is not None:
                self.seq = payload["s"]
            self.frames.append(payload)
            return payload

    async def recv_op(self, op: int, timeout: float = WAIT) -> dict[str, Any]:
        """Skip heartbeat ACKs and dispatches until a payload with ``op`` arrives."""
        while True:
            payload = await self.recv(timeout)
            if payload["op"] == op:
                return payload

    async def recv_answer(self, timeout: float = WAIT) -> dict[str, Any]:
        """Return the next payload that is not a heartbeat ACK."""
        while True:
            payload = await self.recv(timeout)
            if payload["op"] != Opcode.HEARTBEAT_ACK:
                return payload

    async def recv_dispatch(self, name: str, timeout: float = WAIT) -> dict[str, Any]:
        """Return the next dispatch named ``name``, skipping everything else."""
        while True:
            payload = await self.recv(timeout)
            if payload["op"] == Opcode.DISPATCH and payload["t"] == name:
                return payload

    async def expect_close(self, timeout: float = WAIT) -> int | None:
        """Read until the server closes; return its close code."""
        try:
            while True:
                await self.recv(timeout)
        except Closed as closed:
            return closed.code

    async def send(self, op: int, d: Any) -> None:
        """Send one payload as a text frame."""
        await self.ws.send_str(orjson.dumps({"op": op, "d": d}).decode())

    async def heartbeat(self) -> None:
        """Send op 1 with the last sequence number seen."""
        await self.send(Opcode.HEARTBEAT, self.seq)

    def start_heartbeats(self) -> None:
        """Heartbeat every half interval in the background (sends only, never reads)."""

        async def beat() -> None:
            while not self.ws.closed:
                with contextlib.suppress(ConnectionError):
                    await self.heartbeat()
                await asyncio.sleep(self.interval / 2)

        self._beats = asyncio.create_task(beat())

    async def identify(
        self, token: str, intents: int = GUILDS | GUILD_MESSAGES, **extra: Any
    ) -> None:
        """Send IDENTIFY."""
        d = {"token": token, "properties": {"os": "linux", "browser": "raw", "device": "raw"}}
        d["intents"] = intents
        d.update(extra)
        await self.send(Opcode.IDENTIFY, d)

    async def resume(self, token: str, session_id: str, seq: int | None) -> None:
        """Send RESUME."""
        await self.send(Opcode.RESUME, {"token": token, "session_id": session_id, "seq": seq})

    async def close(self, code: int = 1000) -> None:
        """Close from the client side with ``code``."""
        if self._beats is not None:
            self._beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beats
        await self.ws.close(code=code)


@contextlib.asynccontextmanager
async def ready_gateway(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    intents: int = GUILDS | GUILD_MESSAGES,
    *,
    compress: str | None = "zlib-stream",
    guilds: int = 1,
) -> AsyncIterator[tuple[RawGateway, dict[str, Any]]]:
    """Connect, heartbeat, identify, and read READY plus ``guilds`` GUILD_CREATEs."""
    gw = await RawGateway.connect(session, base, compress=compress)
    gw.start_heartbeats()
    try:
        await gw.identify(token, intents)
        ready = await gw.recv_dispatch("READY")
        for _ in range(guilds):
            await gw.recv_dispatch("GUILD_CREATE")
        yield gw, ready["d"]
    finally:
        await gw.close(4000)


# -- the pure parts, without a socket ----------------------------------------------------


def test_zlib_stream_shares_one_context_and_ends_each_payload_with_sync_flush() -> None:
    stream = ZlibStream()
    inflate = zlib.decompressobj()
    for i in range(5):
        frame = stream.compress(orjson.dumps({"op": 0, "d": {"n": i, "pad": "x" * 50}}))
        assert frame.endswith(SUFFIX)
        assert orjson.loads(inflate.decompress(frame))["d"]["n"] == i
    # Only the first payload of a connection carries the zlib header.
    fresh = ZlibStream()
    assert fresh.compress(b'{"op":10}')[:1] == b"\x78"
    assert fresh.compress(b'{"op":11}')[:1] != b"\x78"


def test_sliding_log_refuses_the_121st_payload_in_any_60s_window() -> None:
    log = SlidingLog(120, 60.0)
    assert all(log.record(i * 0.1) for i in range(120))
    assert not log.allows(11.0)
    assert log.allows(60.0)  # the first event (t=0) has left the window


def test_decode_payload_close_codes() -> None:
    cases = {
        b"x" * 4097: CloseCode.DECODE_ERROR,
        b"not json": CloseCode.DECODE_ERROR,
        b"[1]": CloseCode.DECODE_ERROR,
        b'{"op": 5}': CloseCode.UNKNOWN_OPCODE,
        b'{"op": "1"}': CloseCode.UNKNOWN_OPCODE,
        b'{"d": null}': CloseCode.UNKNOWN_OPCODE,
    }
    for raw, code in cases.items():
        try:
            decode_payload(raw)
        except Violation as violation:
            assert violation.code == code, raw
        else:
            raise AssertionError(raw)
    assert decode_payload('{"op": 1, "d": 7}') == (Opcode.HEARTBEAT, 7)


def test_identify_repr_hides_the_token() -> None:
    identify = parse_identify({"token": "secret-token", "properties": {}, "intents": 513})
    assert "secret-token" not in repr(identify)
    assert identify.shard == (0, 1)


def test_shards_split_guilds_by_the_documented_formula() -> None:
    gid = 175928847299117063  # (gid >> 22) % 2 == 0
    assert in_shard(gid, (0, 2)) and not in_shard(gid, (1, 2))
    assert in_shard(None, (0, 2)) and not in_shard(None, (1, 2))


def test_message_content_rules() -> None:
    message = {
        "id": "1",
        "author": {"id": "9"},
        "content": "secret",
        "embeds": [{"title": "t"}],
        "attachments": [{"id": "2"}],
        "components": [{"type": 1}],
        "poll": {"question": {}},
        "mentions": [],
    }
    stripped = strip_message_content("MESSAGE_CREATE", message, "5", GUILDS)
    assert stripped["content"] == "" and stripped["embeds"] == [] and "poll" not in stripped
    assert message["content"] == "secret"  # the shared bus copy is untouched
    assert strip_message_content("MESSAGE_CREATE", message, "9", GUILDS) is message
    assert strip_message_content("MESSAGE_CREATE", message, "5", MESSAGE_CONTENT) is message
    mentioned = dict(message, mentions=[{"id": "5"}])
    assert strip_message_content("MESSAGE_UPDATE", mentioned, "5", GUILDS)["content"] == "secret"
    assert strip_message_content("MESSAGE_DELETE", {"id": "1"}, "5", 0) == {"id": "1"}


def test_session_replays_after_seq_and_refuses_what_it_no_longer_holds() -> None:
    registry = SessionRegistry()
    session = registry.create("b", 513, (0, 1), replay_limit=3)
    session.next_payload("READY", {}, replay=False)
    for i in range(5):
        session.next_payload("MESSAGE_CREATE", {"n": i})
    assert session.seq == 6
    assert [p["s"] for p in session.replay_after(4)] == [5, 6]
    assert session.can_resume_from(3) and not session.can_resume_from(2)
    assert not session.can_resume_from(7) and not session.can_resume_from(None)
    session.detached_at = 100.0
    assert registry.get(session.session_id, now=150.0, ttl=60.0) is session
    assert registry.get(session.session_id, now=161.0, ttl=60.0) is None


def test_connection_record_finds_the_busiest_window() -> None:
    record = ConnectionRecord(url="base", compression="none")
    for at in (0.0, 1.0, 1.5, 2.0, 10.0, 10.5):
        record.frame(at)
    assert record.max_frames_in(2.0) == 3  # 0.0 has left the window [0.0, 2.0) at 2.0
    assert record.max_frames_in(60.0) == 6


def test_a_reply_strips_the_referenced_message_on_its_own() -> None:
    referenced = {"id": "1", "author": {"id": "7"}, "content": "theirs", "mentions": []}
    reply = {
        "id": "2",
        "author": {"id": "5"},
        "content": "mine",
        "mentions": [],
        "referenced_message": referenced,
    }
    seen = strip_message_content("MESSAGE_CREATE", reply, "5", GUILDS)
    assert seen["content"] == "mine"
    assert seen["referenced_message"]["content"] == ""
    assert reply["referenced_message"]["content"] == "theirs"
