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

This module holds the rules: the vocabulary, the table, the reactions and the session. What
they use stands beside it, sans-IO too: ``actions.py`` (what the caller must do),
``config.py`` (:class:`ProtocolConfig`), ``connection_state.py`` (:class:`ConnectionState`),
``payloads.py`` (IDENTIFY, RESUME and heartbeats built; HELLO and READY read) and
``budget.py`` (the daily identify budget and the spacing between identifies).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from discobase.gateway import payloads
from discobase.gateway.actions import Action, Connect, Deliver, Disconnect, Fail, Send, Stop
from discobase.gateway.budget import IdentifyBudget
from discobase.gateway.config import ProtocolConfig
from discobase.gateway.connection_state import ConnectionState
from discobase.gateway.enums import CloseCode, Opcode
from discobase.gateway.errors import GatewayClosed, GatewayError, HandshakeTimeout
from discobase.gateway.events import DispatchEvent, SessionEvent
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
        self.budget = IdentifyBudget(config)
        self.identifies = 0
        self.resumes = 0
        self.last_error: GatewayError | None = None
        self.commands: deque[dict[str, Any]] = deque()
        self._socket_open = False
        self._now = 0.0

    @property
    def last_identify_at(self) -> float | None:
        """Return when the last IDENTIFY went out, or ``None``."""
        return self.budget.last_identify_at

    # --- inputs -------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin: the first connection goes to the base URL at once."""
        self.budget.start(now)
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
        payloads.check_command(payload)
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
        interval = payloads.heartbeat_interval(data)
        if interval is not None:
            conn.interval = interval
            # The first beat is jittered so that clients reconnecting together spread out.
            conn.next_beat = now + conn.interval * self._random()
            reserve = heartbeat_reserve(conn.limiter.window, conn.interval)
            conn.limiter.reserve = min(reserve, conn.limiter.limit - 1)
        if self.session_id is not None and self.seq is not None:
            conn.resuming = True
            conn.authenticate_at = now
        else:
            conn.resuming = False
            conn.authenticate_at = max(now, self.budget.allowed_at())
        return self._authenticate(now)

    def _on_start_session(self, now: float, data: Any, previous: Phase) -> list[Action]:
        conn = self._conn()
        conn.ready_deadline = None
        conn.connected_at = now
        ready = data.get("d") if isinstance(data, Mapping) else None
        session = payloads.ready_session(ready)
        if session is not None:
            self.session_id, self.resume_url = session
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
            delay = max(delay, self.budget.allowed_at() - now)
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
            payload = payloads.resume(self.config.token, self.session_id, self.seq)
            return [Send(payload, op=int(Opcode.RESUME))]
        refusal = self.budget.refusal(now)
        if refusal is not None:
            self.last_error = refusal
            self.phase = Phase.FAILED
            self.conn = None
            self._socket_open = False
            return [Disconnect(CloseCode.NORMAL), Fail(refusal)]
        self.identifies += 1
        self.budget.spend(now)
        return [Send(payloads.identify(self.config), op=int(Opcode.IDENTIFY))]

    def _heartbeat(self, now: float) -> Send:
        conn = self._conn()
        conn.limiter.record(now)
        conn.heartbeats_sent += 1
        return Send(payloads.heartbeat(self.seq), op=int(Opcode.HEARTBEAT))

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
