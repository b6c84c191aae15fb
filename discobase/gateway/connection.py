"""The websocket loop that drives :class:`GatewayProtocol` (gateway layer: the aiohttp seam).

The only gateway module that imports aiohttp; ``client.py`` loads it when ``run()`` starts, so
``import discobase.gateway`` stays free of aiohttp. It knows nothing of the gateway's rules:
it opens the sockets the protocol asks for, feeds it every frame, close and deadline, and does
what it answers. It must not know storage or the HTTP client.

One task owns everything that touches the protocol. A reader task per socket only decodes
frames into an inbox, tagged with its connection number, so frames and closes from a socket
the protocol already left are dropped. Before acting on a timer the loop drains the inbox:
an ACK that has arrived is not missing, however late the loop woke up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from discobase._json import JSONDecodeError, dumps_str, loads
from discobase.gateway.actions import Action, Connect, Deliver, Disconnect, Fail, Send, Stop
from discobase.gateway.events import GatewayEvent
from discobase.gateway.inflate import InflateError, ZlibStreamInflater
from discobase.gateway.protocol import GatewayProtocol

__all__ = ["LATE_BEAT_WARNING", "GatewayRunner", "RunnerStats", "gateway_url"]

_log = logging.getLogger("discobase.gateway")

#: Real seconds a heartbeat may always be late before a warning is logged (at full scale the
#: threshold is 10 s, or half an interval when that is shorter).
LATE_BEAT_WARNING = 1.0


def gateway_url(url: str, *, compress: bool) -> str:
    """Return ``url`` with the query the gateway expects (v10, JSON, optional zlib-stream)."""
    query: dict[str, str | int] = {"v": 10, "encoding": "json"}
    if compress:
        query["compress"] = "zlib-stream"
    return str(URL(url).update_query(query))


@dataclass(frozen=True, slots=True)
class _Frame:
    conn: int
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Closed:
    conn: int
    code: int | None
    reason: str


class _Wake:
    """Something outside the loop (a command, a close request) added actions."""


_WAKE = _Wake()
_Inbox = asyncio.Queue[_Frame | _Closed | _Wake]


@dataclass(slots=True)
class RunnerStats:
    """Counters of what the loop did on the wire."""

    connects: int = 0
    connect_failures: int = 0
    frames_sent: int = 0
    frames_received: int = 0


class GatewayRunner:
    """Drive one protocol over aiohttp websockets until it stops or fails.

    Args:
        protocol: the state machine to drive.
        emit: called (synchronously, in order) with every event to deliver.
        compress: ask for ``zlib-stream`` transport compression.
        connect_timeout: real seconds to open a socket.
        close_timeout: real seconds to wait for the peer's close frame.
    """

    def __init__(
        self,
        protocol: GatewayProtocol,
        *,
        emit: Callable[[GatewayEvent], None],
        compress: bool = True,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
    ) -> None:
        self.protocol = protocol
        self.stats = RunnerStats()
        self._emit = emit
        self._compress = compress
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._inbox: _Inbox = asyncio.Queue()
        self._pending: deque[Action] = deque()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._conn_id = 0
        self._reader: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._target: tuple[str, float] | None = None
        self._stopped = False

    # --- called from outside the loop ---------------------------------------------------

    def submit(self, actions: list[Action]) -> None:
        """Queue actions the protocol returned to a call made outside the loop; wake it."""
        self._pending.extend(actions)
        self._inbox.put_nowait(_WAKE)

    def now(self) -> float:
        """Return the loop's monotonic time, the protocol's clock."""
        return asyncio.get_running_loop().time()

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Run until the protocol stops (return) or fails (raise its error)."""
        self._pending.extend(self.protocol.start(self.now()))
        session = aiohttp.ClientSession()
        try:
            while True:
                await self._perform_pending()
                if self._stopped:
                    return
                if self._target is not None:
                    await self._connect(session)
                else:
                    await self._wait_for_input()
        finally:
            await self._drop_socket(None)
            if self._closing:
                await asyncio.gather(*self._closing, return_exceptions=True)
            await session.close()

    async def _perform_pending(self) -> None:
        while self._pending:
            action = self._pending.popleft()
            if isinstance(action, Send):
                await self._send(action)
            elif isinstance(action, Disconnect):
                await self._drop_socket(action.code)
            elif isinstance(action, Connect):
                self._target = (action.url, self.now() + action.delay)
            elif isinstance(action, Deliver):
                self._emit(action.event)
            elif isinstance(action, Fail):
                await self._drop_socket(None)
                raise action.error
            elif isinstance(action, Stop):
                self._stopped = True
                self._target = None

    async def _send(self, action: Send) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return  # the reader reports the close; the protocol decides what comes next
        try:
            await ws.send_str(dumps_str(action.payload))
            self.stats.frames_sent += 1
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            pass

    async def _connect(self, session: aiohttp.ClientSession) -> None:
        assert self._target is not None
        url, at = self._target
        delay = at - self.now()
        if delay > 0:
            # Sleep on the inbox, so that close() during a backoff is seen at once.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    # A wake-up brought actions (close()); old sockets' frames are moot.
                    await self._inbox.get()
                    return
        self._target = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                ws = await session.ws_connect(
                    gateway_url(url, compress=self._compress),
                    autoping=True,
                    max_msg_size=0,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self._close_timeout),
                )
        except (aiohttp.ClientError, OSError, TimeoutError):
            self.stats.connect_failures += 1
            self._pending.extend(self.protocol.connection_failed(self.now()))
            return
        self.stats.connects += 1
        self._conn_id += 1
        self._ws = ws
        self._reader = asyncio.create_task(self._read(ws, self._conn_id))
        self._pending.extend(self.protocol.connection_opened(self.now()))

    async def _wait_for_input(self) -> None:
        self._drain()
        if self._pending:
            return
        deadline = self.protocol.deadline
        if deadline is not None and deadline <= self.now():
            self._tick()
            return
        timeout = None if deadline is None else deadline - self.now()
        try:
            async with asyncio.timeout(timeout):
                item = await self._inbox.get()
        except TimeoutError:
            self._drain()  # what arrived while we slept counts before the timer does
            if not self._pending:
                self._tick()
            return
        self._handle(item)

    def _tick(self) -> None:
        now = self.now()
        conn = self.protocol.conn
        if conn is not None and conn.next_beat is not None and conn.interval is not None:
            late = now - conn.next_beat
            if late > max(LATE_BEAT_WARNING, min(10.0, conn.interval / 2)):
                # The event loop was blocked: Discord will soon see a missed heartbeat.
                _log.warning("gateway heartbeat is %.1f s late; is the event loop blocked?", late)
        self._pending.extend(self.protocol.tick(now))

    def _drain(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._handle(item)

    def _handle(self, item: _Frame | _Closed | _Wake) -> None:
        if isinstance(item, _Wake) or item.conn != self._conn_id or self._ws is None:
            return
        if isinstance(item, _Frame):
            self.stats.frames_received += 1
            self._pending.extend(self.protocol.receive(item.payload, self.now()))
        else:
            self._forget_socket()
            self._pending.extend(
                self.protocol.connection_closed(item.code, self.now(), item.reason)
            )

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, conn: int) -> None:
        inflater = ZlibStreamInflater()  # never shared: one zlib stream per connection
        code: int | None = None
        reason = ""
        try:
            while True:
                message = await ws.receive()
                if message.type is aiohttp.WSMsgType.BINARY:
                    data = inflater.feed(message.data)
                    if data is None:
                        continue
                elif message.type is aiohttp.WSMsgType.TEXT:
                    data = message.data
                elif message.type is aiohttp.WSMsgType.CLOSE:
                    code, reason = message.data, str(message.extra or "")
                    break
                else:  # CLOSING, CLOSED, ERROR: the socket went away
                    code = ws.close_code
                    break
                payload = loads(data)
                if isinstance(payload, dict):
                    self._inbox.put_nowait(_Frame(conn, payload))
        except (InflateError, JSONDecodeError, UnicodeDecodeError):
            # A corrupt stream cannot be resynchronised: drop it (4000 keeps the session).
            with contextlib.suppress(Exception):
                await ws.close(code=4000)
            code = None
        except (aiohttp.ClientError, ConnectionError):
            code = ws.close_code
        self._inbox.put_nowait(_Closed(conn, code, reason))

    def _forget_socket(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self._reader = None
        self._ws = None

    async def _drop_socket(self, code: int | None) -> None:
        ws, reader = self._ws, self._reader
        self._forget_socket()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if ws is None or ws.closed:
            return
        close_code = 4000 if code is None else code
        # Closing waits for the peer's answer; a zombie peer must not hold up the next socket.
        task = asyncio.create_task(_close_quietly(ws, close_code))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _close_quietly(ws: aiohttp.ClientWebSocketResponse, code: int) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code=code)
