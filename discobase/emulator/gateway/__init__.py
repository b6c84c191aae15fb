"""The local Discord's gateway (websocket) server.

Layer: the emulator. Imports nothing from the client (``discobase.http``,
``discobase.gateway``, ``discobase.storage``). ``Emulator`` builds one ``GatewayServer``
(reachable as ``emu.gateway``), calls ``add_routes(app)`` and ``admin.add_admin_routes(app,
gateway)`` before serving, shows ``stats()`` under ``"gateway"``, and calls ``reset()`` and
``await close()``. See
``docs/emulator-gateway.md`` for the behaviour and the fault-injection API.
"""

from __future__ import annotations

from .codes import CloseCode, Opcode
from .config import GatewayConfig
from .faults import DispatchFault
from .server import GatewayServer
from .stats import ConnectionRecord

__all__ = [
    "CloseCode",
    "ConnectionRecord",
    "DispatchFault",
    "GatewayConfig",
    "GatewayServer",
    "Opcode",
]
