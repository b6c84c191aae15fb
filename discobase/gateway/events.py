"""What the gateway client hands to its listeners (gateway layer: plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DispatchEvent", "GatewayEvent", "SessionEvent"]


@dataclass(frozen=True, slots=True)
class DispatchEvent:
    """One dispatch (op 0) from Discord, e.g. ``MESSAGE_CREATE``.

    Attributes:
        name: the dispatch name (``t``).
        data: the dispatch payload (``d``), as decoded JSON.
    """

    name: str
    data: Any


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A connection reached READY or RESUMED.

    Attributes:
        resumed: ``True`` when the old session resumed and Discord replayed what was missed;
            ``False`` for a new session (also the first one): events may have been missed and
            the storage layer should catch up over REST.
    """

    resumed: bool


GatewayEvent = DispatchEvent | SessionEvent
