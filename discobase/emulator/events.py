"""The event bus on which the REST side publishes every gateway-visible change.

Layer: the emulator. Knows nothing of websockets: the gateway server subscribes and delivers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["GUILDS", "GUILD_INVITES", "GUILD_MESSAGES", "EmulatorEvent", "EventBus"]

GUILDS = 1 << 0
GUILD_INVITES = 1 << 6
GUILD_MESSAGES = 1 << 9


@dataclass(frozen=True, slots=True)
class EmulatorEvent:
    """One dispatch, as Discord would send it.

    Attributes:
        name: The dispatch name (``MESSAGE_CREATE``, ...).
        data: The exact dispatch payload.
        guild_id: The guild the event belongs to, or None.
        intent: The intent bit that gates it (0 for none).
        target_bot_id: Set when only this bot must see it (GUILD_CREATE on join, ...).
    """

    name: str
    data: Any
    guild_id: str | None
    intent: int
    target_bot_id: str | None = None


Subscriber = Callable[[EmulatorEvent], None]


class EventBus:
    """Fan events out to subscribers, synchronously and in publication order."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.published = 0

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for every event from now on; return a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: EmulatorEvent) -> None:
        """Deliver ``event`` to every subscriber."""
        self.published += 1
        for callback in list(self._subscribers):
            callback(event)
