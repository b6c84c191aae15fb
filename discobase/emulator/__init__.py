"""The local Discord: REST v10, CDN, gateway and an admin API, faithful to Discord's limits.

Layer: the emulator. It is an independent implementation of Discord's side and imports
nothing from the client (``discobase.http``, ``discobase.gateway``, ``discobase.storage``),
so the client and the server cannot share one misunderstanding. ``import discobase`` never
imports this package. See ``docs/emulator.md``.
"""

from __future__ import annotations

from .chaos import Chaos
from .clock import Clock
from .events import EmulatorEvent, EventBus
from .limits import DEFAULT_LIMITS, LimitConfig, RouteLimit
from .models import Bot
from .server import Emulator

__all__ = [
    "Bot",
    "Chaos",
    "Clock",
    "DEFAULT_LIMITS",
    "Emulator",
    "EmulatorEvent",
    "EventBus",
    "LimitConfig",
    "RouteLimit",
]
