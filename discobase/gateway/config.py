"""The constants a gateway session runs on (gateway layer: plain data, no I/O).

Times are Discord seconds, scaled by ``time_scale`` where the protocol uses them, except the
two margins that stand for the network and the host (real seconds).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from discobase.gateway.enums import Intents

__all__ = ["ProtocolConfig"]


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
