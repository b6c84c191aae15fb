"""The gateway's payloads: what the client sends and what it reads (gateway layer: pure).

Builds IDENTIFY, RESUME and heartbeats, refuses a command Discord would close the connection
for, and reads the few fields of Discord's payloads the protocol acts on (HELLO's heartbeat
interval, READY's session). Which payload to send when is the protocol's business, not this
module's. IDENTIFY and RESUME carry the token: never log what these functions return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from discobase._json import dumps
from discobase.errors import UsageError
from discobase.gateway.config import ProtocolConfig
from discobase.gateway.enums import Opcode

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "check_command",
    "heartbeat",
    "heartbeat_interval",
    "identify",
    "ready_session",
    "resume",
]

#: Largest payload Discord accepts from a client, in bytes (bigger ones close with 4002).
MAX_PAYLOAD_BYTES = 4096


def identify(config: ProtocolConfig) -> dict[str, Any]:
    """Return the IDENTIFY payload (op 2) that starts a new session."""
    return {
        "op": int(Opcode.IDENTIFY),
        "d": {
            "token": config.token,
            "intents": int(config.intents),
            "properties": dict(config.properties),
            "compress": False,
            "large_threshold": 50,
        },
    }


def resume(token: str, session_id: str | None, seq: int | None) -> dict[str, Any]:
    """Return the RESUME payload (op 6) that picks a session up after ``seq``."""
    return {"op": int(Opcode.RESUME), "d": {"token": token, "session_id": session_id, "seq": seq}}


def heartbeat(seq: int | None) -> dict[str, Any]:
    """Return a heartbeat (op 1) carrying the last sequence number seen."""
    return {"op": int(Opcode.HEARTBEAT), "d": seq}


def check_command(payload: Mapping[str, Any]) -> None:
    """Refuse a command larger than Discord accepts.

    Raises:
        UsageError: the payload is over :data:`MAX_PAYLOAD_BYTES` as JSON.
    """
    if len(dumps(payload)) > MAX_PAYLOAD_BYTES:
        raise UsageError(f"gateway payloads are limited to {MAX_PAYLOAD_BYTES} bytes")


def heartbeat_interval(hello: Any) -> float | None:
    """Return HELLO's heartbeat interval in seconds, or ``None`` when it has none."""
    interval_ms = hello.get("heartbeat_interval") if isinstance(hello, Mapping) else None
    if isinstance(interval_ms, int | float) and interval_ms > 0:
        return float(interval_ms) / 1000.0
    return None


def ready_session(ready: Any) -> tuple[str | None, str | None] | None:
    """Return READY's ``(session_id, resume_gateway_url)``, or ``None`` when it is no object."""
    if not isinstance(ready, Mapping):
        return None
    return _str_or_none(ready.get("session_id")), _str_or_none(ready.get("resume_gateway_url"))


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
