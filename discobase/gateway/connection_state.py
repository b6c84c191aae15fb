"""What belongs to one gateway connection (gateway layer: plain data, no I/O).

The protocol builds a :class:`ConnectionState` on every connect and drops it when the
connection ends, so a stale "not ACKed" flag or a full send log can never kill the next
connection. The session (``session_id``, ``resume_url``, ``seq``), which outlives
connections, stays on :class:`~discobase.gateway.protocol.GatewayProtocol`.
"""

from __future__ import annotations

from dataclasses import dataclass

from discobase.gateway.sendlimit import SendLimiter

__all__ = ["ConnectionState"]


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
