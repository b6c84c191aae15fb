"""The local Discord: REST v10 (and v9), CDN, gateway and an admin API, with Discord's limits.

Layer: the emulator. It is an independent implementation of Discord's side and imports
nothing from the client (``discobase.http``, ``discobase.gateway``, ``discobase.storage``;
only the shared JSON leaf ``discobase._json``), so the client and the server cannot share one
misunderstanding. ``import discobase`` never imports this package.

``Emulator`` is the server and its Python API (``create_bot``, ``create_guild``,
``fail_next``, ``set_chaos``, ``stats``, ``reset``, ...); ``Chaos`` holds chaos mode's rates;
``DEFAULT_LIMITS``, ``LimitConfig`` and ``RouteLimit`` are the rate-limit table and its
overrides; ``Bot`` is what ``create_bot`` returns; ``Clock``, ``EventBus`` and
``EmulatorEvent`` are ``emu.clock``, ``emu.events`` and what the bus carries. See
``docs/emulator.md`` and ``docs/emulator-gateway.md``.
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
