"""The gateway protocol's transitions, driven by hand: a fake clock and a fake random source.

Covers the design document's gateway scenarios 19-23 without a socket.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from discobase.errors import UsageError
from discobase.gateway.enums import CloseCode, Opcode
from discobase.gateway.errors import GatewayClosed, HandshakeTimeout, IdentifyBudgetExhausted
from discobase.gateway.events import DispatchEvent, SessionEvent
from discobase.gateway.protocol import (
    TRANSITIONS,
    Action,
    Connect,
    Deliver,
    Disconnect,
    Fail,
    GatewayProtocol,
    Phase,
    ProtocolConfig,
    Reaction,
    Send,
    Stop,
)

BASE = "ws://gw.test/gateway"
RESUME = "ws://gw.test/gateway/resume"
TOKEN = "Bot-secret-token-123"


class FakeRandom:
    """Returns the given values in turn, then repeats the last one."""

    def __init__(self, *values: float) -> None:
        self.values = list(values) or [0.5]
        self._it: Iterator[float] = iter(self.values)
        self.last = self.values[-1]

    def __call__(self) -> float:
        try:
            self.last = next(self._it)
        except StopIteration:
            pass
        return self.last


class Harness:
    """A protocol plus a fake clock, recording every action and every frame sent."""

    def __init__(self, rng: Any = None, **config: Any) -> None:
        self.rng = rng if rng is not None else FakeRandom(0.5)
        config.setdefault("latency_margin", 0.0)  # exact times; one test sets it
        self.proto = GatewayProtocol(
            ProtocolConfig(token=TOKEN, url=BASE, **config), random=self.rng
        )
        self.now = 100.0
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.actions: list[Action] = []

    def _record(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, Send):
                self.sent.append((self.now, action.payload))
        self.actions.extend(actions)
        return actions

    def start(self) -> list[Action]:
        return self._record(self.proto.start(self.now))

    def open(self) -> list[Action]:
        return self._record(self.proto.connection_opened(self.now))

    def refuse(self) -> list[Action]:
        return self._record(self.proto.connection_failed(self.now))

    def recv(
        self, op: int, d: Any = None, s: int | None = None, t: str | None = None
    ) -> list[Action]:
        return self._record(self.proto.receive({"op": op, "d": d, "s": s, "t": t}, self.now))

    def close(self, code: int | None) -> list[Action]:
        return self._record(self.proto.connection_closed(code, self.now))

    def hello(self, interval_ms: float = 1000.0) -> list[Action]:
        return self.recv(Opcode.HELLO, {"heartbeat_interval": interval_ms})

    def ready(self, s: int = 1) -> list[Action]:
        d = {
            "session_id": "sess-1",
            "resume_gateway_url": RESUME,
            "user": {"id": "1"},
            "guilds": [],
        }
        return self.recv(Opcode.DISPATCH, d, s=s, t="READY")

    def dispatch(self, s: int, t: str = "MESSAGE_CREATE", d: Any = None) -> list[Action]:
        return self.recv(Opcode.DISPATCH, d if d is not None else {"id": str(s)}, s=s, t=t)

    def advance(self, seconds: float, *, ack: bool = False) -> list[Action]:
        """Move the clock, ticking at every deadline on the way (ACKing each beat if asked)."""
        target = self.now + seconds
        out: list[Action] = []
        while True:
            deadline = self.proto.deadline
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            actions = self._record(self.proto.tick(self.now))
            out.extend(actions)
            if ack and any(isinstance(a, Send) and a.op == Opcode.HEARTBEAT for a in actions):
                out.extend(self.recv(Opcode.HEARTBEAT_ACK))
        self.now = target
        return out

    def connect_ready(self, interval_ms: float = 1000.0) -> None:
        self.start()
        self.open()
        self.hello(interval_ms)
        self.ready()

    def ops_sent(self) -> list[int]:
        return [p["op"] for _, p in self.sent]


def only(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


# --- the table ---------------------------------------------------------------------------


def test_every_reaction_has_a_handler_and_every_phase_is_reachable() -> None:
    for reaction in Reaction:
        assert callable(getattr(GatewayProtocol, f"_on_{reaction.value}")), reaction
    reached = {Phase.IDLE} | {nxt for _, nxt in TRANSITIONS.values() if nxt is not None}
    assert reached == set(Phase)


def test_start_connects_to_the_base_url_at_once_and_identifies_after_hello() -> None:
    h = Harness()
    assert h.start() == [Connect(BASE, 0.0, resume=False)]
    assert h.open() == []
    actions = h.hello()
    [send] = only(actions, Send)
    assert send.op == Opcode.IDENTIFY
    assert send.payload["d"]["intents"] == 513
    assert send.payload["d"]["token"] == TOKEN
    assert TOKEN not in repr(actions) and TOKEN not in repr(h.proto.config)
    actions = h.ready()
    [ready_event, session_event] = [a.event for a in only(actions, Deliver)]
    assert isinstance(ready_event, DispatchEvent) and ready_event.name == "READY"
    assert ready_event.data["session_id"] == "sess-1"
    assert actions[1] == Deliver(SessionEvent(resumed=False))
    assert h.proto.phase is Phase.CONNECTED
    assert h.proto.session_id == "sess-1" and h.proto.resume_url == RESUME


# --- scenario 19: heartbeat cadence -------------------------------------------------------


def test_first_beat_is_jittered_then_every_interval_with_the_last_non_null_seq() -> None:
    h = Harness(rng=FakeRandom(0.37))
    h.connect_ready(interval_ms=1000)
    t0 = h.now
    h.dispatch(s=5)
    h.advance(0.36)
    assert Opcode.HEARTBEAT not in h.ops_sent()
    h.advance(0.02)
    beats = [(t, p) for t, p in h.sent if p["op"] == Opcode.HEARTBEAT]
    assert len(beats) == 1 and beats[0][0] == pytest.approx(t0 + 0.37)
    assert beats[0][1]["d"] == 5
    # ACKs and heartbeat requests carry s: null and must not reset the sequence.
    h.recv(Opcode.HEARTBEAT_ACK, s=None)
    h.recv(Opcode.HEARTBEAT, s=None)
    assert h.sent[-1][1] == {"op": 1, "d": 5}
    h.dispatch(s=9)
    h.advance(5.0, ack=True)
    beats = [(t, p) for t, p in h.sent if p["op"] == Opcode.HEARTBEAT][2:]
    assert len(beats) == 5
    for (t1, _), (t2, _) in zip(beats, beats[1:], strict=False):
        assert t2 - t1 == pytest.approx(1.0)
    assert all(p["d"] == 9 for _, p in beats)


def test_first_beat_offset_is_uniform_over_twenty_connections() -> None:
    rng = random.Random(19)
    offsets = []
    for _ in range(20):
        h = Harness(rng=rng.random)
        h.connect_ready(interval_ms=1000)
        t0 = h.now
        h.advance(1.0)
        first = next(t for t, p in h.sent if p["op"] == Opcode.HEARTBEAT)
        offsets.append(first - t0)
    assert all(0.0 <= x < 1.0 for x in offsets)
    assert len({round(x, 6) for x in offsets}) == 20  # jittered, not a constant
    assert min(offsets) < 0.3 and max(offsets) > 0.7


def test_heartbeat_request_is_answered_at_once_even_before_hello() -> None:
    h = Harness()
    h.start()
    h.open()
    [send] = h.recv(Opcode.HEARTBEAT)
    assert isinstance(send, Send) and send.payload == {"op": 1, "d": None}


# --- scenario 20: zombie, then a fresh ACK state ------------------------------------------


def test_zombie_closes_with_4000_resumes_and_the_next_connection_starts_fresh() -> None:
    h = Harness(rng=FakeRandom(0.5))
    h.connect_ready(interval_ms=1000)
    h.dispatch(s=2)
    h.advance(0.5)  # first beat, never ACKed
    actions = h.advance(1.0)
    assert only(actions, Disconnect) == [Disconnect(4000)]
    assert only(actions, Connect) == [Connect(RESUME, 0.0, resume=True)]
    assert h.proto.phase is Phase.CONNECTING
    h.open()
    [resume] = only(h.hello(), Send)
    assert resume.op == Opcode.RESUME
    assert resume.payload["d"] == {"token": TOKEN, "session_id": "sess-1", "seq": 2}
    h.dispatch(s=3)  # replayed
    actions = h.recv(Opcode.DISPATCH, None, s=None, t="RESUMED")
    assert Deliver(SessionEvent(resumed=True)) in actions
    # Five more intervals with normal ACKs: no re-zombie from a stale flag.
    out = h.advance(6.0, ack=True)
    assert not only(out, Disconnect)
    assert h.proto.phase.value == "connected"
    assert h.proto.identifies == 1 and h.proto.resumes == 1


# --- scenario 21: requested heartbeat under a saturated send limit ------------------------


def test_commands_are_held_until_ready_and_never_exceed_the_send_limit() -> None:
    h = Harness(rng=FakeRandom(0.1))
    h.start()
    h.open()
    for i in range(300):
        h.proto.queue_command({"op": 3, "d": {"i": i}}, h.now)
    h.hello(interval_ms=10_000)
    assert h.ops_sent() == [Opcode.IDENTIFY]  # nothing before READY
    h.ready()
    assert h.ops_sent().count(3) > 100
    # Discord asks for a heartbeat mid-burst: the answer goes out at once.
    h.now += 0.01
    [beat] = h.recv(Opcode.HEARTBEAT)
    assert isinstance(beat, Send) and beat.op == Opcode.HEARTBEAT
    h.advance(200.0, ack=True)
    assert h.ops_sent().count(3) == 300
    times = [t for t, _ in h.sent]
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[i:] if u < t + 60.0)
        assert in_window <= 120, (t, in_window)


def test_commands_survive_a_reconnect() -> None:
    h = Harness()
    h.connect_ready()
    h.close(4000)
    h.proto.queue_command({"op": 3, "d": {}}, h.now)
    h.open()
    h.hello()
    assert 3 not in h.ops_sent()
    h.recv(Opcode.DISPATCH, None, s=None, t="RESUMED")
    assert h.ops_sent()[-1] == 3


def test_oversized_command_is_refused() -> None:
    h = Harness()
    with pytest.raises(UsageError):
        h.proto.queue_command({"op": 3, "d": "x" * 5000}, h.now)


# --- scenario 22: op 7 and op 9 ---------------------------------------------------------


def test_op7_resumes_on_the_resume_url_without_backoff() -> None:
    h = Harness()
    h.connect_ready()
    h.dispatch(s=4)
    actions = h.recv(Opcode.RECONNECT)
    assert actions == [Disconnect(4000), Connect(RESUME, 0.0, resume=True)]


def test_op9_true_resumes_after_one_to_five_seconds() -> None:
    h = Harness(rng=FakeRandom(0.25))
    h.connect_ready()
    actions = h.recv(Opcode.INVALID_SESSION, True)
    assert actions[0] == Disconnect(4000)
    connect = actions[1]
    assert isinstance(connect, Connect) and connect.resume and connect.url == RESUME
    assert connect.delay == pytest.approx(1.0 + 4 * 0.25)


def test_op9_false_identifies_on_the_base_url_after_one_to_five_seconds() -> None:
    h = Harness(rng=FakeRandom(0.0))
    h.connect_ready()
    h.dispatch(s=7)
    h.now += 10.0
    actions = h.recv(Opcode.INVALID_SESSION, False)
    connect = only(actions, Connect)[0]
    assert connect.url == BASE and not connect.resume and 1.0 <= connect.delay <= 5.0
    assert h.proto.session_id is None and h.proto.seq is None and h.proto.resume_url is None
    h.now += connect.delay
    h.open()
    [identify] = only(h.hello(), Send)
    assert identify.op == Opcode.IDENTIFY


def test_a_refused_resume_url_falls_back_to_the_base_url() -> None:
    h = Harness()
    h.connect_ready()
    [connect] = only(h.close(None), Connect)
    assert connect.url == RESUME and connect.resume
    [retry] = only(h.refuse(), Connect)
    assert retry.url == BASE and retry.resume  # still a RESUME, routed by the base URL


def test_identifies_are_kept_five_seconds_apart() -> None:
    h = Harness(rng=FakeRandom(0.0))
    h.connect_ready()
    first = h.now
    h.now += 0.5
    [connect] = only(h.recv(Opcode.INVALID_SESSION, False), Connect)
    assert connect.delay == pytest.approx(first + 5.0 - h.now)


def test_latency_margin_widens_identify_spacing_and_the_send_window() -> None:
    h = Harness(rng=FakeRandom(0.0), latency_margin=0.5, time_scale=0.01)
    h.connect_ready()
    first = h.now
    [connect] = only(h.recv(Opcode.INVALID_SESSION, False), Connect)
    assert h.now + connect.delay == pytest.approx(first + 0.05 + 0.5)
    h.open()
    assert h.proto.conn is not None and h.proto.conn.limiter.window == pytest.approx(0.6 + 0.5)


def test_identify_waits_for_the_spacing_when_the_socket_opened_early() -> None:
    h = Harness(rng=FakeRandom(0.0), invalid_session_wait=(0.0, 0.0), backoff_base=0.0)
    h.connect_ready()
    first = h.now
    h.recv(Opcode.INVALID_SESSION, False)
    h.open()  # the caller connected without honouring the delay
    assert only(h.hello(), Send) == []
    h.advance(10.0, ack=True)
    identifies = [t for t, p in h.sent if p["op"] == Opcode.IDENTIFY]
    assert identifies[1] == pytest.approx(first + 5.0)


def test_two_failed_resumes_in_a_row_fall_back_to_identify() -> None:
    h = Harness(rng=FakeRandom(0.0))
    h.connect_ready()
    for _ in range(2):
        h.close(4000)
        h.open()
        assert only(h.hello(), Send)[0].op == Opcode.RESUME
    [connect] = only(h.close(4000), Connect)
    assert connect.url == BASE and not connect.resume
    h.now += 10
    h.open()
    assert only(h.hello(), Send)[0].op == Opcode.IDENTIFY


# --- scenario 23: close-code matrix -----------------------------------------------------


@pytest.mark.parametrize("code", [4004, 4010, 4011, 4012, 4013, 4014])
def test_fatal_close_codes_raise_and_never_reconnect(code: int) -> None:
    h = Harness()
    h.connect_ready()
    actions = h.close(code)
    assert not only(actions, Connect)
    [fail] = only(actions, Fail)
    assert isinstance(fail.error, GatewayClosed) and fail.error.code == code
    assert not fail.error.may_reconnect
    assert h.proto.phase is Phase.FAILED
    h.advance(60.0)
    assert h.proto.deadline is None and not only(h.actions[-1:], Connect)


@pytest.mark.parametrize("code", [4007, 4009])
def test_new_session_close_codes_identify_on_the_base_url(code: int) -> None:
    h = Harness()
    h.connect_ready()
    [connect] = only(h.close(code), Connect)
    assert connect.url == BASE and not connect.resume and h.proto.session_id is None


@pytest.mark.parametrize("code", [4000, 4001, 4002, 4003, 4005, 4008, 1006, None, 1000, 1001])
def test_other_closes_resume_when_a_session_exists(code: int | None) -> None:
    h = Harness()
    h.connect_ready()
    [connect] = only(h.close(code), Connect)
    assert connect.url == RESUME and connect.resume


def test_no_close_code_leaves_the_client_idle() -> None:
    codes: list[int | None] = [None, *range(1000, 1016), *range(3000, 3003), *range(4000, 4021)]
    for code in codes:
        h = Harness()
        h.connect_ready()
        actions = h.close(code)
        assert only(actions, Connect) or only(actions, Fail), code
        assert (only(actions, Fail) != []) == CloseCode.fatal(code)


def test_a_close_before_any_session_identifies_again() -> None:
    h = Harness()
    h.start()
    h.open()
    [connect] = only(h.close(None), Connect)
    assert connect.url == BASE and not connect.resume


# --- handshake, backoff, budget, shutdown -----------------------------------------------


def test_hello_timeout_reconnects() -> None:
    h = Harness()
    h.start()
    h.open()
    actions = h.advance(20.0)
    assert only(actions, Disconnect) == [Disconnect(4000)]
    assert len(only(actions, Connect)) == 1
    assert isinstance(h.proto.last_error, HandshakeTimeout)


def test_ready_timeout_reconnects() -> None:
    h = Harness()
    h.start()
    h.open()
    h.hello(interval_ms=100_000)
    actions = h.advance(15.0)
    assert only(actions, Disconnect) == [Disconnect(4000)]
    assert h.proto.last_error is not None and "READY" in str(h.proto.last_error)


def test_handshake_timeouts_keep_a_real_time_floor_when_scaled() -> None:
    h = Harness(time_scale=0.001, min_real_timeout=1.0)
    h.start()
    h.open()
    assert h.proto.deadline == pytest.approx(h.now + 1.0)


def test_op7_before_hello_backs_off() -> None:
    h = Harness(rng=FakeRandom(1.0))
    h.start()
    h.open()
    [connect] = only(h.recv(Opcode.RECONNECT), Connect)
    assert connect.delay > 0


def test_backoff_is_jittered_exponential_and_capped() -> None:
    h = Harness(rng=FakeRandom(1.0))
    h.start()
    delays = []
    for _ in range(9):
        [connect] = only(h.refuse(), Connect)
        delays.append(connect.delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    h2 = Harness(rng=FakeRandom(0.3))
    h2.start()
    [connect] = only(h2.refuse(), Connect)
    assert connect.delay == pytest.approx(0.3 * 1.0)


def test_backoff_resets_after_a_minute_up() -> None:
    h = Harness(rng=FakeRandom(1.0))
    h.connect_ready(interval_ms=100_000)
    first = only(h.close(4000), Connect)[0].delay
    h.open()
    h.hello(interval_ms=100_000)
    h.recv(Opcode.DISPATCH, None, t="RESUMED")
    second = only(h.close(4000), Connect)[0].delay
    assert second > first
    h.open()
    h.hello(interval_ms=100_000)
    h.recv(Opcode.DISPATCH, None, t="RESUMED")
    h.advance(61.0, ack=True)
    assert only(h.close(4000), Connect)[0].delay == first


def test_identify_is_refused_at_the_budget_floor() -> None:
    limit = {"total": 1000, "remaining": 11, "reset_after": 3_600_000, "max_concurrency": 1}
    h = Harness(rng=FakeRandom(0.0), session_start_limit=limit, identify_floor=10)
    h.connect_ready()
    assert h.proto.identifies == 1
    h.now += 10
    h.recv(Opcode.INVALID_SESSION, False)
    h.now += 10
    h.open()
    actions = h.hello()
    assert not only(actions, Send)
    [fail] = only(actions, Fail)
    assert isinstance(fail.error, IdentifyBudgetExhausted)
    assert fail.error.remaining == 10 and TOKEN not in str(fail.error)
    assert h.proto.phase is Phase.FAILED


def test_the_budget_refills_after_reset_after() -> None:
    limit = {"total": 1000, "remaining": 11, "reset_after": 30_000, "max_concurrency": 1}
    h = Harness(rng=FakeRandom(0.0), session_start_limit=limit, identify_floor=10)
    h.connect_ready()
    h.now += 40
    h.recv(Opcode.INVALID_SESSION, False)
    h.now += 10
    h.open()
    assert only(h.hello(), Send)[0].op == Opcode.IDENTIFY


def test_close_sends_1000_and_stops() -> None:
    h = Harness()
    h.connect_ready()
    assert h.proto.close(h.now) == [Disconnect(1000), Stop()]
    assert h.proto.phase is Phase.CLOSED and h.proto.deadline is None
    assert h.proto.connection_closed(1000, h.now) == []


def test_close_while_connecting_stops_without_a_frame() -> None:
    h = Harness()
    h.start()
    assert h.proto.close(h.now) == [Stop()]


def test_unknown_opcodes_and_stray_frames_are_ignored() -> None:
    h = Harness()
    h.connect_ready()
    assert h.recv(42, {"x": 1}) == []
    assert h.hello() == []  # a second HELLO
    assert h.proto.phase is Phase.CONNECTED


def test_dispatches_are_delivered_with_their_names() -> None:
    h = Harness()
    h.connect_ready()
    [deliver] = h.dispatch(s=2, t="CHANNEL_CREATE", d={"id": "5"})
    assert deliver == Deliver(DispatchEvent("CHANNEL_CREATE", {"id": "5"}))
