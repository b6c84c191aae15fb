"""discobase's gateway client (gateway layer: below storage, beside the HTTP client).

``GatewayClient`` keeps one gateway session alive: it resumes where Discord allows, identifies
afresh where it must, never retries a fatal close, and tells its listeners when events may
have been missed. ``protocol`` is its sans-IO core. Importing this package does not import
aiohttp (the websocket loop is loaded when ``run()`` starts) nor ``discobase.http``.
"""

from __future__ import annotations

from discobase.gateway import errors
from discobase.gateway.cache import GatewayCache, GuildState
from discobase.gateway.client import GatewayClient, GatewayStats, Listener
from discobase.gateway.enums import CloseCode, Intents, Opcode
from discobase.gateway.errors import (
    GatewayClientClosed,
    GatewayClosed,
    GatewayError,
    HandshakeTimeout,
    IdentifyBudgetExhausted,
)
from discobase.gateway.events import DispatchEvent, GatewayEvent, SessionEvent
from discobase.gateway.protocol import GatewayProtocol, ProtocolConfig

__all__ = [
    "CloseCode",
    "DispatchEvent",
    "GatewayCache",
    "GatewayClient",
    "GatewayClientClosed",
    "GatewayClosed",
    "GatewayError",
    "GatewayEvent",
    "GatewayProtocol",
    "GatewayStats",
    "GuildState",
    "HandshakeTimeout",
    "IdentifyBudgetExhausted",
    "Intents",
    "Listener",
    "Opcode",
    "ProtocolConfig",
    "SessionEvent",
    "errors",
]
