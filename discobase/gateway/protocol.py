"""The gateway protocol as a sans-IO state machine (gateway layer: no aiohttp, no asyncio).

Theory
------
A gateway session outlives its connections. Discord says what to do after each way a
connection can end; this module encodes those rules and nothing else. The caller (the
websocket loop in ``connection.py``, or a test) owns the socket and the clock; it feeds the
protocol what happened and carries out the actions it gets back::

    protocol.start(now)                    -> [Connect(url, delay)]
    protocol.connection_opened(now)        -> []               (a fresh per-connection state)
    protocol.receive(payload, now)         -> [Send(identify), Deliver(event), ...]
    protocol.connection_closed(code, now)  -> [Connect(...)] | [Fail(error)]
    protocol.tick(now)                     -> [Send(heartbeat)] | [Disconnect(4000), Connect(...)]
    protocol.deadline                      -> when to call tick() next

Every input is first named as a :class:`Trigger`; :data:`TRANSITIONS` (the one table) maps the
current :class:`Phase` and the trigger to a :class:`Reaction` and the next phase. Pairs not in
the table are ignored. Reactions are methods of :class:`GatewayProtocol`.

Two kinds of state are kept apart, because libraries lost sessions by mixing them:

* the **session** (``session_id``, ``resume_url``, ``seq``) survives reconnects until Discord
  says it is gone (op 9 ``false``, 4007, 4009) or two RESUMEs in a row fail;
* the **connection** (:class:`ConnectionState`: heartbeat interval and ACK flag, handshake
  deadlines, send limiter) is built new on every connect, so a stale "not ACKed" flag or a full
  send log can never kill the next connection.

All times are real seconds on the caller's monotonic clock. ``time_scale`` (real seconds per
Discord second) scales this module's own constants; the heartbeat interval arrives already
scaled in HELLO.
"""

from __future__ import annotations

import enum
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from discobase._json import dumps
from discobase.errors import UsageError
from discobase.gateway.enums import CloseCode, Intents, Opcode
from discobase.gateway.errors import (
    GatewayClosed,
    GatewayError,
    HandshakeTimeout,
    IdentifyBudgetExhausted,
)
from discobase.gateway.events import DispatchEvent, GatewayEvent, SessionEvent
from discobase.gateway.sendlimit import (
    GATEWAY_SEND_LIMIT,
    GATEWAY_SEND_WINDOW,
    SendLimiter,
    heartbeat_reserve,
)

__all__ = [
    "TRANSITIONS",
    "Action",
    "Connect",
    "ConnectionState",
    "Deliver",
    "Disconnect",
    "Fail",
    "GatewayProtocol",
    "Phase",
    "ProtocolConfig",
    "Reaction",
    "Send",
    "Stop",
    "Trigger",
]

#: Largest payload Discord accepts from a client, in bytes (bigger ones close with 4002).
MAX_PAYLOAD_BYTES = 4096


# --- actions: what the caller must do ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``payload`` as one JSON text frame on the current connection."""

    payload: dict[str, Any] = field(repr=False)  # IDENTIFY and RESUME carry the token
    op: int = 0


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the current connection with ``code`` and forget it (its close is not reported)."""

    code: int


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a new connection to ``url`` after ``delay`` seconds, then report how it went."""

    url: str
    delay: float
    resume: bool


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand ``event`` to the listeners."""

    event: GatewayEvent


@dataclass(frozen=True, slots=True)
class Fail:
    """Stop for good and raise ``error`` to the application."""

    error: GatewayError


@dataclass(frozen=True, slots=True)
class Stop:
    """The client was closed; stop the loop."""


Action = Send | Disconnect | Connect | Deliver | Fail | Stop


# --- the state machine's vocabulary --------------------------------------------------------


class Phase(enum.Enum):
    """Where the client is in the life of a connection."""

    IDLE = "idle"  # not started
    CONNECTING = "connecting"  # a Connect action is outstanding (including its delay)
    AWAITING_HELLO = "awaiting_hello"  # socket open, HELLO not yet seen
    HANDSHAKING = "handshaking"  # IDENTIFY or RESUME due or sent, READY/RESUMED not yet seen
    CONNECTED = "connected"  # READY or RESUMED seen
    CLOSED = "closed"  # closed by the application
    FAILED = "failed"  # a fatal error was raised


class Trigger(enum.Enum):
    """Everything that can happen to the client, already classified."""

    START = "start"
    OPENED = "opened"
    CONNECT_FAILED = "connect_failed"
    HELLO = "hello"
    READY = "ready"
    RESUMED = "resumed"
    DISPATCH = "dispatch"
    HEARTBEAT_REQUEST = "heartbeat_request"  # op 1 from Discord
    HEARTBEAT_ACK = "heartbeat_ack"
    RECONNECT_REQUEST = "reconnect_request"  # op 7
    INVALID_SESSION_RESUMABLE = "invalid_session_resumable"  # op 9, d: true
    INVALID_SESSION = "invalid_session"  # op 9, d: false
    CLOSED_RESUMABLE = "closed_resumable"  # any code not below, 1006, no close frame
    CLOSED_NEW_SESSION = "closed_new_session"  # 4007, 4009
    CLOSED_FATAL = "closed_fatal"  # 4004, 4010-4014
    HELLO_TIMEOUT = "hello_timeout"
    READY_TIMEOUT = "ready_timeout"
    ZOMBIE = "zombie"  # our last heartbeat was not ACKed before the next one was due
    USER_CLOSE = "user_close"


class _Wait(enum.Enum):
    IMMEDIATE = "immediate"
    INVALID_SESSION = "invalid_session"
    BACKOFF = "backoff"


class Reaction(enum.Enum):
    """What the protocol does in answer to a trigger; each is a method ``_on_<value>``."""

    CONNECT = "connect"  # first connection, no delay
    BEGIN_CONNECTION = "begin_connection"  # fresh ConnectionState, HELLO deadline
    RETRY_CONNECT = "retry_connect"  # back off; a refused resume URL is dropped
    AUTHENTICATE = "authenticate"  # start heartbeats; RESUME or IDENTIFY
    START_SESSION = "start_session"  # READY: keep session, flush held commands
    RESUME_SESSION = "resume_session"  # RESUMED: flush held commands
    DELIVER = "deliver"
    BEAT_NOW = "beat_now"
    RECORD_ACK = "record_ack"
    RESUME_NOW = "resume_now"  # close 4000; resume with no backoff on the first try
    RESUME_LATER = "resume_later"  # close 4000; resume after 1-5 s
    IDENTIFY_LATER = "identify_later"  # drop the session; identify on the base URL after 1-5 s
    RECONNECT = "reconnect"  # close 4000 (if open); back off; resume if a session exists
    RECONNECT_NEW_SESSION = "reconnect_new_session"  # drop the session; back off; identify
    FAIL = "fail"
    SHUTDOWN = "shutdown"  # close 1000; stop


P, T, R = Phase, Trigger, Reaction

_OPEN = (P.AWAITING_HELLO, P.HANDSHAKING, P.CONNECTED)

#: Rules that hold in every phase with an open socket (expanded into the table below).
_WHILE_OPEN: dict[Trigger, tuple[Reaction, Phase | None]] = {
    T.HEARTBEAT_REQUEST: (R.BEAT_NOW, None),
    T.INVALID_SESSION_RESUMABLE: (R.RESUME_LATER, P.CONNECTING),
    T.INVALID_SESSION: (R.IDENTIFY_LATER, P.CONNECTING),
    T.CLOSED_RESUMABLE: (R.RECONNECT, P.CONNECTING),
    T.CLOSED_NEW_SESSION: (R.RECONNECT_NEW_SESSION, P.CONNECTING),
    T.CLOSED_FATAL: (R.FAIL, P.FAILED),
    T.USER_CLOSE: (R.SHUTDOWN, P.CLOSED),
}

#: (phase, trigger) -> (reaction, next phase); ``None`` keeps the phase. Absent pairs are
#: ignored (an ACK after a close, a second HELLO, ...).
TRANSITIONS: dict[tuple[Phase, Trigger], tuple[Reaction, Phase | None]] = {
    (P.IDLE, T.START): (R.CONNECT, P.CONNECTING),
    (P.IDLE, T.USER_CLOSE): (R.SHUTDOWN, P.CLOSED),
    (P.CONNECTING, T.OPENED): (R.BEGIN_CONNECTION, P.AWAITING_HELLO),
    (P.CONNECTING, T.CONNECT_FAILED): (R.RETRY_CONNECT, P.CONNECTING),
    (P.CONNECTING, T.USER_CLOSE): (R.SHUTDOWN, P.CLOSED),
    **{(phase, trigger): rule for phase in _OPEN for trigger, rule in _WHILE_OPEN.items()},
    (P.AWAITING_HELLO, T.HELLO): (R.AUTHENTICATE, P.HANDSHAKING),
    (P.AWAITING_HELLO, T.HELLO_TIMEOUT): (R.RECONNECT, P.CONNECTING),
    # Op 7 before HELLO: Discord is not ready for us; back off instead of hammering it.
    (P.AWAITING_HELLO, T.RECONNECT_REQUEST): (R.RECONNECT, P.CONNECTING),
    (P.HANDSHAKING, T.READY): (R.START_SESSION, P.CONNECTED),
    (P.HANDSHAKING, T.RESUMED): (R.RESUME_SESSION, P.CONNECTED),
    # A RESUME replays the missed dispatches before RESUMED.
    (P.HANDSHAKING, T.DISPATCH): (R.DELIVER, None),
    (P.HANDSHAKING, T.HEARTBEAT_ACK): (R.RECORD_ACK, None),
    (P.HANDSHAKING, T.RECONNECT_REQUEST): (R.RESUME_NOW, P.CONNECTING),
    (P.HANDSHAKING, T.READY_TIMEOUT): (R.RECONNECT, P.CONNECTING),
    (P.HANDSHAKING, T.ZOMBIE): (R.RESUME_NOW, P.CONNECTING),
    (P.CONNECTED, T.DISPATCH): (R.DELIVER, None),
    (P.CONNECTED, T.READY): (R.DELIVER, None),
    (P.CONNECTED, T.RESUMED): (R.DELIVER, None),
    (P.CONNECTED, T.HEARTBEAT_ACK): (R.RECORD_ACK, None),
    (P.CONNECTED, T.RECONNECT_REQUEST): (R.RESUME_NOW, P.CONNECTING),
    (P.CONNECTED, T.ZOMBIE): (R.RESUME_NOW, P.CONNECTING),
}


# --- configuration and state ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtocolConfig:
    """The constants the protocol runs on; times in Discord seconds, scaled by ``time_scale``.

    Attributes:
        token: the bot token (sent in IDENTIFY and RESUME only).
        url: the base gateway URL from ``GET /gateway/bot``.
        intents: the intents to identify with.
        time_scale: real seconds per Discord second.
        session_start_limit: ``session_start_limit`` from ``GET /gateway/bot``
            (``total``, ``remaining``, ``reset_after`` in wire milliseconds, already scaled by the
            server like every interval), or ``None`` when unknown.
        identify_floor: session starts always left unused; identifying below it raises.
        identify_spacing: seconds between two identifies (Discord: ``max_concurrency`` per 5 s).
        hello_timeout: seconds to wait for HELLO after the socket opens.
        ready_timeout: seconds to wait for READY or RESUMED after IDENTIFY or RESUME.
        min_real_timeout: a floor in *real* seconds under the scaled handshake timeouts:
            network and scheduling latency do not shrink with ``time_scale``.
        latency_margin: real seconds added to the scaled send window and identify spacing:
            Discord measures arrivals, the client departures, and latency does not scale.
        backoff_base: seconds; the first retry waits up to this (full jitter).
        backoff_cap: seconds; no retry waits longer.
        backoff_reset_after: seconds a connection must stay up before the backoff restarts.
        invalid_session_wait: (low, high) seconds to wait after op 9.
        properties: the ``properties`` object of IDENTIFY.
    """

    token: str = field(repr=False)
    url: str
    intents: int = int(Intents.GUILDS | Intents.GUILD_MESSAGES)
    time_scale: float = 1.0
    session_start_limit: Mapping[str, Any] | None = None
    identify_floor: int = 10
    identify_spacing: float = 5.0
    hello_timeout: float = 20.0
    ready_timeout: float = 15.0
    min_real_timeout: float = 1.0
    latency_margin: float = 0.5
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    backoff_reset_after: float = 60.0
    invalid_session_wait: tuple[float, float] = (1.0, 5.0)
    properties: Mapping[str, str] = field(
        default_factory=lambda: {"os": sys.platform, "browser": "discobase", "device": "discobase"}
    )


@dataclass(slots=True)
class ConnectionState:
    """What belongs to one connection and must be new on every connect."""

    url: str
    opened_at: float
    limiter: SendLimiter
    hello_deadline: float | None
    interval: float | None = None  # heartbeat interval, real seconds
    next_beat: float | None = None
    acked: bool = True  # no heartbeat sent yet on this connection, so none is missing
    resuming: bool = False
    authenticate_at: float | None = None  # IDENTIFY held back by the identify spacing
    ready_deadline: float | None = None
    connected_at: float | None = None
    heartbeats_sent: int = 0


class GatewayProtocol:
    """The gateway's rules for one shard, fed events, answering with actions.

    Args:
        config: the constants.
        random: returns a float in [0, 1); the jitter source (inject a fake in tests).
    """

    def __init__(self, config: ProtocolConfig, *, random: Callable[[], float]) -> None:
        self.config = config
        self._random = random
        self.phase = Phase.IDLE
        # The session: survives connections.
        self.session_id: str | None = None
        self.resume_url: str | None = None
        self.seq: int | None = None
        self.failed_resumes = 0
        # Across connections.
        self.conn: ConnectionState | None = None
        self.pending_url: str | None = None
        self.pending_resume = False
        self.failures = 0  # consecutive connections that ended without staying up
        self.last_identify_at: float | None = None
        self.identifies = 0
        self.resumes = 0
        self.last_error: GatewayError | None = None
        self.commands: deque[dict[str, Any]] = deque()
        self._socket_open = False
        self._now = 0.0
        self._budget_remaining: int | None = None
        self._budget_resets_at: float | None = None

    # --- inputs -------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin: the first connection goes to the base URL at once."""
        limit = self.config.session_start_limit
        if limit is not None and "remaining" in limit:
            self._budget_remaining = int(limit["remaining"])
            reset_after = float(limit.get("reset_after", 0)) / 1000.0
            self._budget_resets_at = now + reset_after
        return self._transition(Trigger.START, now)

    def connection_opened(self, now: float) -> list[Action]:
        """Report that the socket requested by the last :class:`Connect` is open."""
        return self._transition(Trigger.OPENED, now)

    def connection_failed(self, now: float) -> list[Action]:
        """Report that the socket requested by the last :class:`Connect` could not open."""
        return self._transition(Trigger.CONNECT_FAILED, now)

    def connection_closed(self, code: int | None, now: float, reason: str = "") -> list[Action]:
        """Report that the current socket closed (``code`` ``None``: no close frame)."""
        if self.phase not in _OPEN:
            return []
        self._socket_open = False
        if CloseCode.fatal(code):
            self.last_error = GatewayClosed(code, reason)
            return self._transition(Trigger.CLOSED_FATAL, now)
        self.last_error = GatewayClosed(code, reason)
        if CloseCode.needs_new_session(code):
            return self._transition(Trigger.CLOSED_NEW_SESSION, now)
        # Everything else, a remote 1000/1001 included, tries to RESUME: if the session is
        # gone Discord answers op 9 false and that costs a connection, while identifying
        # needlessly costs a session start from the daily budget.
        return self._transition(Trigger.CLOSED_RESUMABLE, now)

    def receive(self, payload: Mapping[str, Any], now: float) -> list[Action]:
        """Feed one decoded payload from the current connection."""
        op = payload.get("op")
        if op == Opcode.DISPATCH:
            seq = payload.get("s")
            if isinstance(seq, int):
                self.seq = seq
            trigger = _DISPATCH_TRIGGERS.get(str(payload.get("t")), Trigger.DISPATCH)
            return self._transition(trigger, now, payload)
        if op == Opcode.HELLO:
            return self._transition(Trigger.HELLO, now, payload.get("d"))
        if op == Opcode.HEARTBEAT_ACK:
            return self._transition(Trigger.HEARTBEAT_ACK, now)
        if op == Opcode.HEARTBEAT:
            return self._transition(Trigger.HEARTBEAT_REQUEST, now)
        if op == Opcode.RECONNECT:
            return self._transition(Trigger.RECONNECT_REQUEST, now)
        if op == Opcode.INVALID_SESSION:
            if payload.get("d") is True:
                return self._transition(Trigger.INVALID_SESSION_RESUMABLE, now)
            return self._transition(Trigger.INVALID_SESSION, now)
        return []  # unknown opcodes are ignored, as Discord asks of clients

    def tick(self, now: float) -> list[Action]:
        """Act on every deadline that has passed: handshake timeouts, heartbeats, commands."""
        self._now = now
        conn = self.conn
        if conn is None or self.phase not in _OPEN:
            return []
        if conn.hello_deadline is not None and now >= conn.hello_deadline:
            self.last_error = HandshakeTimeout("HELLO")
            return self._transition(Trigger.HELLO_TIMEOUT, now)
        if conn.ready_deadline is not None and now >= conn.ready_deadline:
            self.last_error = HandshakeTimeout("READY")
            return self._transition(Trigger.READY_TIMEOUT, now)
        actions: list[Action] = []
        if conn.next_beat is not None and now >= conn.next_beat:
            if not conn.acked:
                return self._transition(Trigger.ZOMBIE, now)
            actions.append(self._heartbeat(now))
            conn.acked = False
            assert conn.interval is not None
            conn.next_beat = now + conn.interval
        if conn.authenticate_at is not None and now >= conn.authenticate_at:
            actions.extend(self._authenticate(now))
        actions.extend(self._flush_commands(now))
        return actions

    def queue_command(self, payload: dict[str, Any], now: float) -> list[Action]:
        """Queue a command (op 3, 8, ...); it goes out after READY, within the send limit.

        Raises:
            UsageError: the payload is larger than Discord accepts.
        """
        self._now = now
        if len(dumps(payload)) > MAX_PAYLOAD_BYTES:
            raise UsageError(f"gateway payloads are limited to {MAX_PAYLOAD_BYTES} bytes")
        self.commands.append(payload)
        return self._flush_commands(now)

    def close(self, now: float) -> list[Action]:
        """Close for good (with 1000, which ends the session)."""
        return self._transition(Trigger.USER_CLOSE, now)

    @property
    def deadline(self) -> float | None:
        """Return when :meth:`tick` must next be called, or ``None`` for "no timer"."""
        conn = self.conn
        if conn is None or self.phase not in _OPEN:
            return None
        times = [
            t
            for t in (
                conn.hello_deadline,
                conn.ready_deadline,
                conn.next_beat,
                conn.authenticate_at,
            )
            if t is not None
        ]
        if self.commands and self.phase is Phase.CONNECTED:
            times.append(conn.limiter.next_slot(self._now))
        return min(times) if times else None

    # --- the machine --------------------------------------------------------------------

    def _transition(self, trigger: Trigger, now: float, data: Any = None) -> list[Action]:
        self._now = now
        entry = TRANSITIONS.get((self.phase, trigger))
        if entry is None:
            return []
        reaction, next_phase = entry
        previous = self.phase
        if next_phase is not None:
            self.phase = next_phase
        handler: Callable[[float, Any, Phase], list[Action]] = getattr(
            self, f"_on_{reaction.value}"
        )
        return handler(now, data, previous)

    # --- reactions ----------------------------------------------------------------------

    def _on_connect(self, now: float, data: Any, previous: Phase) -> list[Action]:
        return [self._plan_connect(now, delay=0.0)]

    def _on_begin_connection(self, now: float, data: Any, previous: Phase) -> list[Action]:
        self._socket_open = True
        url = self.pending_url or self.config.url
        # Discord counts arrivals, we count departures: latency can bunch a burst sent across
        # a window edge into one server window, so the log also covers that slack.
        window = self._scaled(GATEWAY_SEND_WINDOW) + self.config.latency_margin
        self.conn = ConnectionState(
            url=url,
            opened_at=now,
            limiter=SendLimiter(window, GATEWAY_SEND_LIMIT, reserve=2),
            hello_deadline=now + self._timeout(self.config.hello_timeout),
        )
        return []

    def _on_retry_connect(self, now: float, data: Any, previous: Phase) -> list[Action]:
        if self.pending_url is not None and self.pending_url == self.resume_url:
            # The resume URL refused us: it may be gone; the base URL still routes a RESUME.
            self.resume_url = None
        delay = self._backoff()
        self.failures += 1
        return [self._plan_connect(now, delay)]

    def _on_authenticate(self, now: float, data: Any, previous: Phase) -> list[Action]:
        conn = self._conn()
        conn.hello_deadline = None
        interval_ms = data.get("heartbeat_interval") if isinstance(data, Mapping) else None
        if isinstance(interval_ms, int | float) and interval_ms > 0:
            conn.interval = float(interval_ms) / 1000.0
            # The first beat is jittered so that clients reconnecting together spread out.
            conn.next_beat = now + conn.interval * self._random()
            reserve = heartbeat_reserve(conn.limiter.window, conn.interval)
            conn.limiter.reserve = min(reserve, conn.limiter.limit - 1)
        if self.session_id is not None and self.seq is not None:
            conn.resuming = True
            conn.authenticate_at = now
        else:
            conn.resuming = False
            conn.authenticate_at = max(now, self._identify_allowed_at())
        return self._authenticate(now)

    def _on_start_session(self, now: float, data: Any, previous: Phase) -> list[Action]:
        conn = self._conn()
        conn.ready_deadline = None
        conn.connected_at = now
        ready = data.get("d") if isinstance(data, Mapping) else None
        if isinstance(ready, Mapping):
            self.session_id = _str_or_none(ready.get("session_id"))
            self.resume_url = _str_or_none(ready.get("resume_gateway_url"))
        self.failed_resumes = 0
        actions: list[Action] = [
            Deliver(DispatchEvent("READY", ready)),
            Deliver(SessionEvent(resumed=False)),
        ]
        return actions + self._flush_commands(now)

    def _on_resume_session(self, now: float, data: Any, previous: Phase) -> list[Action]:
        conn = self._conn()
        conn.ready_deadline = None
        conn.connected_at = now
        self.failed_resumes = 0
        resumed = data.get("d") if isinstance(data, Mapping) else None
        actions: list[Action] = [
            Deliver(DispatchEvent("RESUMED", resumed)),
            Deliver(SessionEvent(resumed=True)),
        ]
        return actions + self._flush_commands(now)

    def _on_deliver(self, now: float, data: Any, previous: Phase) -> list[Action]:
        if isinstance(data, Mapping) and isinstance(data.get("t"), str):
            return [Deliver(DispatchEvent(data["t"], data.get("d")))]
        return []

    def _on_beat_now(self, now: float, data: Any, previous: Phase) -> list[Action]:
        # Discord asked: answer at once, send limit or not. The ACK flag is left alone, so an
        # answer just before a scheduled beat cannot make the connection look like a zombie.
        return [self._heartbeat(now)]

    def _on_record_ack(self, now: float, data: Any, previous: Phase) -> list[Action]:
        self._conn().acked = True
        return []

    def _on_resume_now(self, now: float, data: Any, previous: Phase) -> list[Action]:
        return self._leave(now, previous, _Wait.IMMEDIATE)

    def _on_resume_later(self, now: float, data: Any, previous: Phase) -> list[Action]:
        return self._leave(now, previous, _Wait.INVALID_SESSION)

    def _on_identify_later(self, now: float, data: Any, previous: Phase) -> list[Action]:
        return self._leave(now, previous, _Wait.INVALID_SESSION, forget_session=True)

    def _on_reconnect(self, now: float, data: Any, previous: Phase) -> list[Action]:
        return self._leave(now, previous, _Wait.BACKOFF)

    def _on_reconnect_new_session(self, now: float, data: Any, previous: Phase) -> list[Action]:
        return self._leave(now, previous, _Wait.BACKOFF, forget_session=True)

    def _on_fail(self, now: float, data: Any, previous: Phase) -> list[Action]:
        self.conn = None
        self._socket_open = False
        error = self.last_error or GatewayError("gateway failed")
        return [Fail(error)]

    def _on_shutdown(self, now: float, data: Any, previous: Phase) -> list[Action]:
        actions: list[Action] = []
        if self._socket_open:
            actions.append(Disconnect(CloseCode.NORMAL))
        self._socket_open = False
        self.conn = None
        self._forget_session()  # closing with 1000 ends the session on Discord's side
        actions.append(Stop())
        return actions

    # --- helpers ------------------------------------------------------------------------

    def _leave(
        self, now: float, previous: Phase, wait: _Wait, *, forget_session: bool = False
    ) -> list[Action]:
        """End the current connection (closing it with 4000 if still open); plan the next."""
        conn = self.conn
        if conn is not None:
            uptime = now - conn.connected_at if conn.connected_at is not None else 0.0
            if uptime >= self._scaled(self.config.backoff_reset_after):
                self.failures = 0
            if conn.resuming and previous is not Phase.CONNECTED:
                self.failed_resumes += 1  # a RESUME was sent and RESUMED never came
        if forget_session:
            self._forget_session()
        if wait is _Wait.IMMEDIATE:
            # Op 7 and zombies are routine: the first retry skips the backoff, a loop does not.
            delay = 0.0 if self.failures == 0 else self._backoff()
        elif wait is _Wait.INVALID_SESSION:
            delay = self._invalid_session_wait()
        else:
            delay = self._backoff()
        if wait is _Wait.BACKOFF or previous is not Phase.CONNECTED:
            self.failures += 1
        actions: list[Action] = []
        if self._socket_open:
            # Never 1000/1001 here: those end the session on Discord's side.
            actions.append(Disconnect(CloseCode.UNKNOWN_ERROR))
        self._socket_open = False
        self.conn = None
        actions.append(self._plan_connect(now, delay))
        return actions

    def _backoff(self) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**failures)]."""
        ceiling = min(self.config.backoff_cap, self.config.backoff_base * 2**self.failures)
        return self._scaled(ceiling) * self._random()

    def _invalid_session_wait(self) -> float:
        low, high = self.config.invalid_session_wait
        return self._scaled(low + (high - low) * self._random())

    def _plan_connect(self, now: float, delay: float) -> Connect:
        if self.failed_resumes >= 2:
            # RESUME keeps failing: a loop of them can last forever, a new session cannot.
            self._forget_session()
        resume = self.session_id is not None and self.seq is not None
        url = (self.resume_url or self.config.url) if resume else self.config.url
        if not resume:
            # Do not hold a socket open while the identify spacing runs out.
            delay = max(delay, self._identify_allowed_at() - now)
        self.pending_url = url
        self.pending_resume = resume
        return Connect(url=url, delay=max(0.0, delay), resume=resume)

    def _authenticate(self, now: float) -> list[Action]:
        conn = self._conn()
        if conn.authenticate_at is None or now < conn.authenticate_at:
            return []
        conn.authenticate_at = None
        conn.ready_deadline = now + self._timeout(self.config.ready_timeout)
        conn.limiter.record(now)
        if conn.resuming:
            self.resumes += 1
            payload = {
                "op": int(Opcode.RESUME),
                "d": {"token": self.config.token, "session_id": self.session_id, "seq": self.seq},
            }
            return [Send(payload, op=int(Opcode.RESUME))]
        refusal = self._check_budget(now)
        if refusal is not None:
            self.last_error = refusal
            self.phase = Phase.FAILED
            self.conn = None
            self._socket_open = False
            return [Disconnect(CloseCode.NORMAL), Fail(refusal)]
        self.identifies += 1
        self.last_identify_at = now
        if self._budget_remaining is not None:
            self._budget_remaining -= 1
        payload = {
            "op": int(Opcode.IDENTIFY),
            "d": {
                "token": self.config.token,
                "intents": int(self.config.intents),
                "properties": dict(self.config.properties),
                "compress": False,
                "large_threshold": 50,
            },
        }
        return [Send(payload, op=int(Opcode.IDENTIFY))]

    def _check_budget(self, now: float) -> IdentifyBudgetExhausted | None:
        if self._budget_remaining is None or self._budget_resets_at is None:
            return None
        limit = self.config.session_start_limit or {}
        if now >= self._budget_resets_at and "total" in limit:
            # Discord refilled the budget; assume the same daily window again.
            self._budget_remaining = int(limit["total"])
            self._budget_resets_at = now + self._scaled(86400.0)
        if self._budget_remaining <= self.config.identify_floor:
            reset_in = max(0.0, self._budget_resets_at - now)
            return IdentifyBudgetExhausted(
                self._budget_remaining, self.config.identify_floor, reset_in
            )
        return None

    def _identify_allowed_at(self) -> float:
        if self.last_identify_at is None:
            return float("-inf")
        spacing = self._scaled(self.config.identify_spacing) + self.config.latency_margin
        return self.last_identify_at + spacing

    def _heartbeat(self, now: float) -> Send:
        conn = self._conn()
        conn.limiter.record(now)
        conn.heartbeats_sent += 1
        return Send({"op": int(Opcode.HEARTBEAT), "d": self.seq}, op=int(Opcode.HEARTBEAT))

    def _flush_commands(self, now: float) -> list[Action]:
        conn = self.conn
        if conn is None or self.phase is not Phase.CONNECTED:
            return []  # commands are held until READY/RESUMED and survive reconnects
        actions: list[Action] = []
        while self.commands and conn.limiter.can_send(now):
            conn.limiter.record(now)
            payload = self.commands.popleft()
            actions.append(Send(payload, op=int(payload.get("op", -1))))
        return actions

    def _forget_session(self) -> None:
        self.session_id = None
        self.resume_url = None
        self.seq = None
        self.failed_resumes = 0

    def _conn(self) -> ConnectionState:
        assert self.conn is not None, "no connection in an open phase"
        return self.conn

    def _scaled(self, discord_seconds: float) -> float:
        return discord_seconds * self.config.time_scale

    def _timeout(self, discord_seconds: float) -> float:
        return max(self._scaled(discord_seconds), self.config.min_real_timeout)


_DISPATCH_TRIGGERS = {"READY": Trigger.READY, "RESUMED": Trigger.RESUMED}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
