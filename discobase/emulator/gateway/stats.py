"""Counters of the local gateway (emulator layer, gateway side).

Layer: the emulator's gateway. Plain counting; ``Emulator.stats()`` shows them under
``"gateway"`` and the admin API serves them as JSON.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GatewayCounters"]


def _by_url() -> dict[str, int]:
    return {"base": 0, "resume": 0}


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
    drops: int = 0
    close_codes: Counter[int] = field(default_factory=Counter)
    client_close_codes: Counter[int] = field(default_factory=Counter)

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
