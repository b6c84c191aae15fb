"""What the gateway protocol asks its caller to do (gateway layer: plain data, no I/O).

:class:`~discobase.gateway.protocol.GatewayProtocol` answers every input with a list of these;
the websocket loop (``connection.py``) or a test carries them out in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from discobase.gateway.errors import GatewayError
from discobase.gateway.events import GatewayEvent

__all__ = ["Action", "Connect", "Deliver", "Disconnect", "Fail", "Send", "Stop"]


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
