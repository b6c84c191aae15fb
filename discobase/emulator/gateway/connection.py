"""One client's websocket on the local gateway (emulator layer, gateway side).

Layer: the emulator's gateway. Drives one aiohttp websocket: HELLO, heartbeats and their
watchdog, IDENTIFY/RESUME, the send limit, and the ordered, optionally delayed, outgoing
queue. Decisions about payloads live in :mod:`.protocol`, session bookkeeping in
:mod:`.session`; the emulator's state is reached only through the server.

Every frame goes out under one lock, so the shared compression context sees payloads in the
order the client receives them. Dispatches pass through a queue (which fault injection can
delay); control frames (HELLO, ACK, op 1/7/9) are sent directly and are never delayed.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from discobase import _json

from .codes import CloseCode, Opcode
from .compression import StreamCompressor
from .config import GatewayConfig
from .limits import SlidingLog
from .protocol import (
    Identify,
    Violation,
    check_intents,
    decode_payload,
    parse_identify,
    parse_resume,
)
from .session import Session
from .stats import ConnectionRecord, GatewayCounters

__all__ = ["ConnectionServer", "GatewayConnection"]

# A server close with one of these codes leaves nothing to resume.
_SESSION_ENDING_CLOSES = frozenset({1000, 1001, 4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014})
# A client close with these codes invalidates its session (docs: Resume).
_CLIENT_SESSION_ENDING_CLOSES = frozenset({1000, 1001})


class ConnectionServer(Protocol):
    """What a connection asks of the gateway server (``server.GatewayServer``).

    A protocol so that this module need not import the server, which imports it.
    """

    config: GatewayConfig
    counters: GatewayCounters
    dispatch_delay: float

    @property
    def scale(self) -> float: ...

    def bot_by_token(self, token: str) -> Any: ...

    def session_start_limit(self, bot: Any) -> dict[str, Any]: ...

    def take_identify_slot(self, bot: Any, shard_id: int, now: float) -> bool: ...

    def take_early_reconnect(self) -> bool: ...

    def start_session(self, conn: GatewayConnection, bot: Any, identify: Identify) -> Session: ...

    def resumable_session(
        self, session_id: str, bot_id: str, seq: int | None
    ) -> Session | None: ...

    def attached(self, session: Session) -> GatewayConnection | None: ...

    def attach(self, conn: GatewayConnection, session: Session) -> None: ...

    def detach(self, conn: GatewayConnection, *, ended: bool) -> None: ...

    def forget(self, conn: GatewayConnection) -> None: ...

    def request_guild_members(self, session: Session, d: Any) -> None: ...


class GatewayConnection:
    """The server side of one gateway websocket."""

    def __init__(
        self,
        server: ConnectionServer,
        request: web.Request,
        ws: web.WebSocketResponse,
        url_kind: str,
        compressor: StreamCompressor | None,
        record: ConnectionRecord,
    ) -> None:
        self.server = server
        self.request = request
        self.ws = ws
        self.url_kind = url_kind
        self.compressor = compressor
        self.record = record
        self.session: Session | None = None
        self.bot_id: str | None = None
        self.acking = True
        self.server_close_code: int | None = None
        self.dropped = False
        self._loop = asyncio.get_running_loop()
        config = server.config
        self.interval = max(1, round(config.heartbeat_interval_ms * server.scale))
        self._send_log = SlidingLog(config.send_limit, config.send_window * server.scale)
        self._last_beat = self._hello_at = self._loop.time()
        self._requested_by: float | None = None
        self._send_lock = asyncio.Lock()
        self._queue: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self._closing = False
        self._beat_changed = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until either side closes it."""
        writer = asyncio.create_task(self._write_dispatches())
        watchdog = asyncio.create_task(self._watch_heartbeats())
        try:
            if self.server.take_early_reconnect():
                await self._send_control(Opcode.RECONNECT, None)
            await self._send_control(Opcode.HELLO, {"heartbeat_interval": self.interval})
            await self._read()
        finally:
            writer.cancel()
            watchdog.cancel()
            await asyncio.gather(writer, watchdog, return_exceptions=True)
            self._finish()

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                await self._on_frame(msg.data)
            except Violation as violation:
                await self.close(violation.code, violation.reason)
                break
            if self._closing:
                break

    def _finish(self) -> None:
        stats = self.server.counters
        if self.server_close_code is None and not self.dropped:
            code = self.ws.close_code if self.ws.close_code is not None else 1006
            stats.client_close(code)
            self.record.client_close_code = int(code)
        self.record.open = False
        session = self.session
        if session is None or self.server.attached(session) is not self:
            self.server.forget(self)
            return
        ended = (
            self.server_close_code in _SESSION_ENDING_CLOSES
            if self.server_close_code is not None
            else not self.dropped and self.ws.close_code in _CLIENT_SESSION_ENDING_CLOSES
        )
        self.server.detach(self, ended=ended)
        self.server.forget(self)

    @property
    def closing(self) -> bool:
        """Whether a close or drop has begun (a second one does nothing)."""
        return self._closing

    async def close(self, code: int, reason: str = "") -> None:
        """Close with ``code`` (once); the reader loop then ends."""
        if self._closing:
            return
        self._closing = True
        self.server_close_code = code
        self.record.server_close_code = int(code)
        self.server.counters.server_close(code)
        session = self.session
        if (
            code in _SESSION_ENDING_CLOSES
            and session is not None
            and self.server.attached(session) is self
        ):
            # End the session before the close frame leaves, not when this socket has wound
            # down: a client that reconnects at once could otherwise RESUME it in between.
            self.server.detach(self, ended=True)
        try:
            await self.ws.close(code=code, message=reason.encode()[:120])
        except ConnectionError:
            pass

    def drop(self) -> None:
        """Cut the TCP connection without a close frame."""
        if self._closing:
            return
        self._closing = True
        self.dropped = True
        self.record.dropped = True
        self.server.counters.drops += 1
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    # -- sending ---------------------------------------------------------------------------

    async def _send(self, payload: dict[str, Any]) -> None:
        async with self._send_lock:
            if self.ws.closed or self.dropped:
                return
            raw = _json.dumps(payload)
            try:
                if self.compressor is None:
                    await self.ws.send_str(raw.decode())
                else:
                    await self.ws.send_bytes(self.compressor.compress(raw))
            except ConnectionError:
                return

    async def _send_control(self, op: Opcode, d: Any) -> None:
        await self._send({"op": int(op), "d": d, "s": None, "t": None})

    def enqueue(self, payload: dict[str, Any]) -> None:
        """Queue a dispatch; fault injection may hold it back for a while."""
        not_before = self._loop.time() + self.server.dispatch_delay * self.server.scale
        self._queue.put_nowait((not_before, payload))

    async def _write_dispatches(self) -> None:
        while True:
            not_before, payload = await self._queue.get()
            wait = not_before - self._loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._send(payload)
            self.server.counters.dispatched(str(payload["t"]))

    async def send_reconnect(self) -> None:
        """Ask the client to reconnect and resume (op 7)."""
        await self._send_control(Opcode.RECONNECT, None)

    async def send_invalid_session(self, resumable: bool) -> None:
        """Send op 9; unless ``resumable``, the session is ended first."""
        if not resumable and self.session is not None:
            self.server.detach(self, ended=True)
        await self._send_control(Opcode.INVALID_SESSION, resumable)

    async def request_heartbeat(self) -> None:
        """Ask for an immediate heartbeat (op 1 from the server)."""
        by = (
            self._loop.time()
            + self.interval / 1000 * self.server.config.requested_heartbeat_timeout_factor
        )
        self._requested_by = by
        self._beat_changed.set()
        await self._send_control(Opcode.HEARTBEAT, self.session.seq if self.session else None)

    # -- heartbeats --------------------------------------------------------------------------

    def _heartbeat_deadline(self) -> float:
        timeout = self.interval / 1000 * self.server.config.heartbeat_timeout_factor
        deadline = self._last_beat + timeout
        if self._requested_by is not None:
            deadline = min(deadline, self._requested_by)
        return deadline

    async def _watch_heartbeats(self) -> None:
        while True:
            wait = self._heartbeat_deadline() - self._loop.time()
            if wait <= 0:
                self.server.counters.missed_heartbeats += 1
                await self.close(self.server.config.missed_heartbeat_close_code, "heartbeat missed")
                return
            self._beat_changed.clear()
            try:
                await asyncio.wait_for(self._beat_changed.wait(), timeout=wait)
            except TimeoutError:
                pass

    def _on_heartbeat(self, seq: Any) -> None:
        self._last_beat = self._loop.time()
        self.record.heartbeat(self._last_beat - self._hello_at, seq if type(seq) is int else None)
        self._requested_by = None
        self._beat_changed.set()
        self.server.counters.heartbeats += 1

    # -- receiving -------------------------------------------------------------------------

    async def _on_frame(self, data: str | bytes) -> None:
        now = self._loop.time()
        self.record.frame(now - self._hello_at)
        if not self._send_log.record(now):
            raise Violation(CloseCode.RATE_LIMITED, "you are being rate limited")
        op, d = decode_payload(data)
        self.record.op(int(op))
        if op is Opcode.HEARTBEAT:
            self._on_heartbeat(d)
            if self.acking:
                await self._send_control(Opcode.HEARTBEAT_ACK, None)
                self.server.counters.acks += 1
        elif op is Opcode.IDENTIFY:
            if self.session is not None:
                raise Violation(CloseCode.ALREADY_AUTHENTICATED, "already authenticated")
            await self._identify(d)
        elif op is Opcode.RESUME:
            if self.session is not None:
                raise Violation(CloseCode.ALREADY_AUTHENTICATED, "already authenticated")
            await self._resume(d)
        elif self.session is None:
            raise Violation(CloseCode.NOT_AUTHENTICATED, "not authenticated")
        elif op is Opcode.REQUEST_GUILD_MEMBERS:
            self.server.request_guild_members(self.session, d)
        # Presence, voice and the other requests are accepted and have no effect here.

    async def _identify(self, d: Any) -> None:
        server = self.server
        identify = parse_identify(d)
        bot = server.bot_by_token(identify.token)
        if bot is None:
            raise Violation(CloseCode.AUTHENTICATION_FAILED, "authentication failed")
        check_intents(identify.intents, int(bot.approved_intents))
        if int(server.session_start_limit(bot).get("remaining", 1)) <= 0:
            # Discord resets the token of a bot that spends its daily identifies.
            raise Violation(CloseCode.AUTHENTICATION_FAILED, "daily identify limit reached")
        if not server.take_identify_slot(bot, identify.shard[0], self._loop.time()):
            server.counters.identify_rate_limited += 1
            await self._send_control(Opcode.INVALID_SESSION, False)
            return
        self.bot_id = self.record.bot_id = str(bot.id)
        self.session = server.start_session(self, bot, identify)
        self.record.started = "identify"
        self.record.ready_at = self._loop.time() - self._hello_at
        server.counters.identified(self.url_kind)

    async def _resume(self, d: Any) -> None:
        server = self.server
        resume = parse_resume(d)
        bot = server.bot_by_token(resume.token)
        if bot is None:
            raise Violation(CloseCode.AUTHENTICATION_FAILED, "authentication failed")
        session = server.resumable_session(resume.session_id, str(bot.id), resume.seq)
        if session is None or resume.seq is None:
            server.counters.resume_failures += 1
            await self._send_control(Opcode.INVALID_SESSION, False)
            return
        previous = server.attached(session)
        if previous is not None and previous is not self:
            # A session serves one socket; the stale one is closed resumably.
            server.detach(previous, ended=False)
            await previous.close(CloseCode.UNKNOWN_ERROR, "session resumed elsewhere")
        self.bot_id = self.record.bot_id = str(bot.id)
        self.session = session
        self.record.started = "resume"
        self.record.ready_at = self._loop.time() - self._hello_at
        server.attach(self, session)
        for payload in session.replay_after(resume.seq):
            self.enqueue(payload)
            server.counters.replayed += 1
        self.enqueue(session.next_payload("RESUMED", {}, replay=False))
        server.counters.resumed(self.url_kind)
