"""Counters of the local gateway (emulator layer, gateway side).

Layer: the emulator's gateway. Plain counting; ``Emulator.stats()`` shows them under
``"gateway"`` and the admin API serves them as JSON. Knows nothing of sockets or clocks:
callers pass times in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConnectionRecord", "GatewayCounters"]


def _by_url() -> dict[str, int]:
    return {"base": 0, "resume": 0}


# Injected dispatch faults and guild outages; "suppressed" counts the dispatches a session
# did not get because their guild was down for it.
FAULT_COUNTERS = (
    "withheld",
    "duplicated",
    "reordered",
    "delayed",
    "guild_outages",
    "guild_restores",
    "suppressed",
)


def _faults() -> Counter[str]:
    return Counter(dict.fromkeys(FAULT_COUNTERS, 0))


@dataclass
class GatewayCounters:
    """What happened on the gateway since the emulator started (or was reset)."""

    connections: int = 0
    connects_by_url: dict[str, int] = field(default_factory=_by_url)
    connects_by_compression: Counter[str] = field(default_factory=Counter)
    identifies: int = 0
    identifies_by_url: dict[str, int] = field(default_factory=_by_url)
    identify_rate_limited: int = 0
    resumes: int = 0
    resumes_by_url: dict[str, int] = field(default_factory=_by_url)
    resume_failures: int = 0
    replayed: int = 0
    heartbeats: int = 0
    acks: int = 0
    missed_heartbeats: int = 0
    dispatches: int = 0
    dispatches_by_name: Counter[str] = field(default_factory=Counter)
    drops: int = 0
    refused_connects: int = 0
    close_codes: Counter[int] = field(default_factory=Counter)
    client_close_codes: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=_faults)

    def connected(self, url_kind: str, compression: str) -> None:
        """Count a websocket accepted on the base or resume URL, by ``compress`` asked."""
        self.connections += 1
        self.connects_by_url[url_kind] += 1
        self.connects_by_compression[compression] += 1

    def identified(self, url_kind: str) -> None:
        """Count a successful IDENTIFY."""
        self.identifies += 1
        self.identifies_by_url[url_kind] += 1

    def resumed(self, url_kind: str) -> None:
        """Count a successful RESUME."""
        self.resumes += 1
        self.resumes_by_url[url_kind] += 1

    def dispatched(self, name: str) -> None:
        """Count a dispatch written to a socket."""
        self.dispatches += 1
        self.dispatches_by_name[name] += 1

    def server_close(self, code: int) -> None:
        """Count a close frame the server sent."""
        self.close_codes[int(code)] += 1

    def client_close(self, code: int) -> None:
        """Count a close the client started (1006 when the socket just ended)."""
        self.client_close_codes[int(code)] += 1

    def snapshot(self) -> dict[str, Any]:
        """Return plain dicts (close codes keyed by int)."""
        out: dict[str, Any] = {}
        for name, value in vars(self).items():
            out[name] = dict(value) if isinstance(value, dict) else value
        return out


# Frames remembered per connection: enough for several send windows, bounded for long runs.
_MAX_TIMES = 2_000


@dataclass
class ConnectionRecord:
    """What one connection did, for tests of client behaviour (cadence, URLs, closes).

    Times are real seconds after HELLO was sent.

    Attributes:
        url: ``"base"`` or ``"resume"``.
        compression: The ``compress`` query value, or ``"none"``.
        bot_id: The bot once IDENTIFY or RESUME named a valid token.
        started: ``"identify"`` or ``"resume"`` once a session was started or resumed on it.
        heartbeats: When each op 1 arrived.
        heartbeat_seqs: The ``d`` of each op 1.
        frames: When each client payload arrived (heartbeats included).
        ops: The opcode of each decodable client payload, in order.
        ready_at: When the session was started (READY queued) or resumed (replay queued).
        server_close_code: The code the server closed with, if it did.
        client_close_code: The code the client closed with (1006 if the socket just ended).
        dropped: The server cut the socket without a close frame.
        open: The socket is still open.
    """

    url: str
    compression: str
    bot_id: str | None = None
    started: str | None = None
    heartbeats: list[float] = field(default_factory=list)
    heartbeat_seqs: list[int | None] = field(default_factory=list)
    frames: list[float] = field(default_factory=list)
    ops: list[int] = field(default_factory=list)
    ready_at: float | None = None
    server_close_code: int | None = None
    client_close_code: int | None = None
    dropped: bool = False
    open: bool = True

    def frame(self, at: float) -> None:
        """Note a client payload at ``at``."""
        if len(self.frames) < _MAX_TIMES:
            self.frames.append(at)

    def op(self, op: int) -> None:
        """Note the opcode of the payload just noted."""
        if len(self.ops) < _MAX_TIMES:
            self.ops.append(op)

    def heartbeat(self, at: float, seq: int | None) -> None:
        """Note an op 1 at ``at`` carrying ``seq``."""
        if len(self.heartbeats) < _MAX_TIMES:
            self.heartbeats.append(at)
            self.heartbeat_seqs.append(seq)

    def max_frames_in(self, window: float) -> int:
        """Return the most client payloads seen in any ``window`` seconds."""
        best = start = 0
        for end, at in enumerate(self.frames):
            while at - self.frames[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def as_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON-ready values."""
        return dict(vars(self))
