"""``GatewayClient``: a gateway connection that always comes back (gateway layer).

Wires the sans-IO protocol, the websocket loop (imported when ``run()`` starts, so importing
this module does not import aiohttp), the cache and the listeners. Must not import
``discobase.http`` or storage: ``Database`` passes the URL and ``session_start_limit`` from
``GET /gateway/bot``.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from discobase.errors import UsageError
from discobase.gateway.cache import GatewayCache, GuildState
from discobase.gateway.config import ProtocolConfig
from discobase.gateway.enums import Intents
from discobase.gateway.errors import GatewayClientClosed, GatewayError
from discobase.gateway.events import DispatchEvent, GatewayEvent
from discobase.gateway.protocol import GatewayProtocol, Phase

if TYPE_CHECKING:
    from discobase.gateway.connection import GatewayRunner

__all__ = ["GatewayClient", "GatewayStats", "Listener"]

_log = logging.getLogger("discobase.gateway")

Listener = Callable[[GatewayEvent], Awaitable[None]]

_STOP = object()
# Dispatches that can change whether the client or one of its guilds is ready.
_AVAILABILITY_EVENTS = frozenset({"READY", "GUILD_CREATE", "GUILD_DELETE"})


@dataclass(frozen=True, slots=True)
class GatewayStats:
    """What the client has done so far.

    Attributes:
        connects: sockets opened.
        connect_failures: sockets that could not open.
        identifies: IDENTIFY payloads sent (each spends one daily session start).
        resumes: RESUME payloads sent.
        frames_sent: payloads sent, all kinds.
        frames_received: payloads received.
        phase: the protocol's phase (``"connected"``, ``"connecting"``, ...).
    """

    connects: int
    connect_failures: int
    identifies: int
    resumes: int
    frames_sent: int
    frames_received: int
    phase: str


class GatewayClient:
    """One gateway session for a bot, reconnected and resumed for as long as it runs.

    Args:
        token: the bot token (never logged, printed or put in a repr).
        url: the gateway URL from ``GET /gateway/bot``.
        intents: the intents to identify with; ``GUILDS | GUILD_MESSAGES`` is all discobase
            needs (a bot reads its own messages' content without the privileged intent).
        session_start_limit: ``session_start_limit`` from ``GET /gateway/bot``; the client
            refuses to identify when ``remaining`` would fall to ``identify_floor``.
        time_scale: real seconds per Discord second; scales the client's own constants
            (identify spacing, op 9 wait, backoff, handshake timeouts).
        identify_floor: session starts always left unused.
        compress: use ``zlib-stream`` transport compression.
        random: the jitter source, a function returning floats in [0, 1).
        connect_timeout: real seconds allowed to open a socket.
    """

    def __init__(
        self,
        token: str,
        *,
        url: str,
        intents: Intents | int = Intents.GUILDS | Intents.GUILD_MESSAGES,
        session_start_limit: Mapping[str, Any] | None = None,
        time_scale: float = 1.0,
        identify_floor: int = 10,
        compress: bool = True,
        random: Callable[[], float] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self._config = ProtocolConfig(
            token=token,
            url=url,
            intents=int(intents),
            time_scale=time_scale,
            session_start_limit=dict(session_start_limit) if session_start_limit else None,
            identify_floor=identify_floor,
        )
        self._random = random or _random.random
        self._compress = compress
        self._connect_timeout = connect_timeout
        self._listeners: list[Listener] = []
        self._cache = GatewayCache()
        self._protocol: GatewayProtocol | None = None
        self._runner: GatewayRunner | None = None
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._error: GatewayError | None = None
        self._closed = False
        self._loop_done = asyncio.Event()
        self._run_done = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        phase = self._protocol.phase.value if self._protocol else "idle"
        return f"<GatewayClient url={self._config.url!r} phase={phase}>"

    # --- state --------------------------------------------------------------------------

    @property
    def user(self) -> dict[str, Any] | None:
        """Return the bot user from READY, or ``None`` before it."""
        return self._cache.user

    @property
    def guilds(self) -> dict[str, GuildState]:
        """Return the bot's guilds by id (a string snowflake), with their channels."""
        return self._cache.guilds

    @property
    def is_ready(self) -> bool:
        """Return whether READY and every listed guild's GUILD_CREATE have been seen."""
        return self._cache.ready

    @property
    def stats(self) -> GatewayStats:
        """Return counters of connections, identifies, resumes and frames."""
        proto, runner = self._protocol, self._runner
        return GatewayStats(
            connects=runner.stats.connects if runner else 0,
            connect_failures=runner.stats.connect_failures if runner else 0,
            identifies=proto.identifies if proto else 0,
            resumes=proto.resumes if proto else 0,
            frames_sent=runner.stats.frames_sent if runner else 0,
            frames_received=runner.stats.frames_received if runner else 0,
            phase=proto.phase.value if proto else Phase.IDLE.value,
        )

    @property
    def last_error(self) -> GatewayError | None:
        """Return why the last connection ended (recovered from or not), for diagnostics."""
        return self._protocol.last_error if self._protocol else None

    def add_listener(self, callback: Listener) -> None:
        """Call ``await callback(event)`` for every DispatchEvent and SessionEvent, in order.

        Listeners run in one task apart from the connection, so a slow listener delays later
        events but never a heartbeat. An exception in a listener is logged and swallowed.
        """
        self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling ``callback``."""
        self._listeners.remove(callback)

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and stay connected until :meth:`close`.

        Raises:
            GatewayError: a failure reconnecting cannot cure (a fatal close code, or an
                identify that would spend the daily budget below its floor).
            UsageError: the client already ran or was closed.
        """
        if self._protocol is not None or self._closed:
            raise UsageError("a GatewayClient runs once; make a new one to reconnect")
        from discobase.gateway.connection import GatewayRunner  # loads aiohttp

        self._protocol = GatewayProtocol(self._config, random=self._random)
        self._runner = GatewayRunner(
            self._protocol,
            emit=self._on_event,
            compress=self._compress,
            connect_timeout=self._connect_timeout,
        )
        dispatcher = self._dispatcher = asyncio.create_task(self._dispatch_events())
        try:
            await self._runner.run()
        except GatewayError as exc:
            self._error = exc
            raise
        finally:
            self._closed = True
            self._loop_done.set()
            self._notify()
            self._events.put_nowait(_STOP)
            try:
                await asyncio.shield(dispatcher)
            finally:
                self._run_done.set()

    async def wait_ready(self) -> None:
        """Wait for READY and every guild's GUILD_CREATE.

        A guild in an outage (unavailable at READY) holds this back until it returns; a
        program that needs one guild only should use :meth:`wait_guild`.

        Raises:
            GatewayError: the run failed first.
            GatewayClientClosed: the client was closed first.
        """
        await self._wait_until(lambda: self._cache.ready)

    async def wait_session(self) -> None:
        """Wait for READY: the session is established (its guilds may still be on their way).

        Raises:
            GatewayError: the run failed first.
            GatewayClientClosed: the client was closed first.
        """
        await self._wait_until(lambda: self._cache.user is not None)

    async def wait_guild(self, guild_id: str) -> None:
        """Wait for READY and ``guild_id``'s GUILD_CREATE, whatever the other guilds do.

        Discord sends a guild that is down at READY as unavailable and its GUILD_CREATE only
        when it is back, which may be long after; other guilds' outages do not matter here.

        Raises:
            GatewayError: the run failed first.
            GatewayClientClosed: the client was closed first.
        """
        await self._wait_until(lambda: self._cache.guild_available(str(guild_id)))

    def guild_available(self, guild_id: str) -> bool:
        """Return whether ``guild_id`` arrived in this session and is not in an outage."""
        return self._cache.guild_available(str(guild_id))

    async def _wait_until(self, done: Callable[[], bool]) -> None:
        while True:
            if self._error is not None:
                raise self._error
            if done():
                return
            if self._closed:
                raise GatewayClientClosed("the gateway client was closed before it was ready")
            changed = self._changed
            await changed.wait()

    def send_command(self, op: int, d: Any) -> None:
        """Queue a command (e.g. op 3, presence); it is sent after READY within the limit.

        Raises:
            UsageError: the client is not running, or the payload is over 4096 bytes.
        """
        if self._protocol is None or self._runner is None or self._closed:
            raise UsageError("the gateway client is not running")
        payload = {"op": int(op), "d": d}
        self._runner.submit(self._protocol.queue_command(payload, self._runner.now()))

    async def close(self) -> None:
        """Close the connection with 1000 (which ends the session) and stop :meth:`run`."""
        if self._closed:
            if self._protocol is not None and asyncio.current_task() is not self._dispatcher:
                await self._run_done.wait()
            return
        if self._protocol is None or self._runner is None:
            self._closed = True
            self._notify()
            return
        self._runner.submit(self._protocol.close(self._runner.now()))
        if asyncio.current_task() is self._dispatcher:
            # Called from a listener: run() finishes once this listener returns.
            await self._loop_done.wait()
        else:
            await self._run_done.wait()

    # --- internals ----------------------------------------------------------------------

    def _on_event(self, event: GatewayEvent) -> None:
        # The cache is updated in the loop's task, before listeners run, so that listeners
        # and ``guilds`` see the same state.
        if isinstance(event, DispatchEvent):
            self._cache.apply(event.name, event.data)
            if event.name in _AVAILABILITY_EVENTS:
                self._notify()
        self._events.put_nowait(event)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _dispatch_events(self) -> None:
        while True:
            event = await self._events.get()
            if event is _STOP:
                return
            for listener in list(self._listeners):
                try:
                    await listener(event)  # type: ignore[arg-type]
                except Exception:
                    _log.exception("gateway listener %r failed", listener)
