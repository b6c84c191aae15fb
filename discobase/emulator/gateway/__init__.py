"""The local Discord's gateway (websocket) server.

Placeholder interface while the real server is written; see ARCHITECTURE.md for the contract.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GatewayServer"]


class GatewayServer:
    """Serves the gateway websocket for one emulator."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator

    def add_routes(self, app: Any) -> None:
        """Register the websocket routes on the emulator's aiohttp application."""

    def stats(self) -> dict[str, Any]:
        """Counters: connections, identifies, resumes, close codes."""
        return {}

    def reset(self) -> None:
        """Forget every session and counter."""

    async def close(self) -> None:
        """Close every connection."""
