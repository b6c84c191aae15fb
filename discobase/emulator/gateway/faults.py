"""Which dispatches a fault catches: the rule book of dispatch faults (emulator layer).

Layer: the emulator's gateway. Pure bookkeeping: no sockets, sessions or clocks. The
delivery side (:mod:`.delivery`) asks :meth:`FaultBook.decide` about each dispatch it is about
to number for a session, and acts on the answer.

Theory: Discord promises no delivery (reference.mdx, "Consistency"): an event may come zero
times, once or several times, and late or out of order. Each :class:`DispatchFault` is one
such misbehaviour aimed at the dispatches it selects (by event name, bot and guild), either
for the next ``count`` of them or, with ``probability``, for each one with that chance until
it is cleared. Chance comes only from the emulator's seeded ``random.Random``, and is drawn
only for a dispatch a probabilistic fault selects, so a run with the same seed and the same
traffic makes the same decisions. The first fault (in the order they were added) that fires
decides; a fault whose draw says no leaves the dispatch to the next one.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "DispatchFault", "FaultBook", "Held"]

# The kinds and the counter each one increments in ``stats()["faults"]``.
KINDS = {
    "withhold": "withheld",
    "duplicate": "duplicated",
    "reorder": "reordered",
    "delay": "delayed",
}


@dataclass
class DispatchFault:
    """One misbehaviour and the dispatches it applies to.

    Attributes:
        kind: ``"withhold"``, ``"duplicate"``, ``"reorder"`` or ``"delay"``.
        events: Dispatch names it selects (``None``: every name).
        bot_id: Only sessions of this bot (``None``: every bot).
        guild_id: Only dispatches of this guild (``None``: any, guildless ones included).
        count: How many more dispatches it catches (``None``: no limit).
        probability: Chance that a selected dispatch is caught (``None``: always).
        window: For ``reorder``: a caught dispatch goes out after at most this many later ones.
        seconds: For ``delay``: Discord seconds a caught dispatch is held.
    """

    kind: str
    events: frozenset[str] | None = None
    bot_id: str | None = None
    guild_id: str | None = None
    count: int | None = None
    probability: float | None = None
    window: int = 1
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if self.seconds < 0:
            raise ValueError("seconds must not be negative")

    def selects(self, name: str, bot_id: str, guild_id: str | None) -> bool:
        """Return whether the dispatch ``name`` of ``guild_id`` for ``bot_id`` is selected."""
        return (
            (self.events is None or name in self.events)
            and (self.bot_id is None or self.bot_id == bot_id)
            and (self.guild_id is None or self.guild_id == guild_id)
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the fault as JSON-ready values (for the admin API)."""
        out = dict(vars(self))
        out["events"] = None if self.events is None else sorted(self.events)
        return out


def event_names(event: str | Iterable[str] | None) -> frozenset[str] | None:
    """Normalise an ``event`` selector: one name, several, or ``None`` for all."""
    if event is None:
        return None
    if isinstance(event, str):
        return frozenset({event})
    names = frozenset(str(name) for name in event)
    if not names:
        raise ValueError("event must name at least one dispatch")
    return names


@dataclass(eq=False)
class Held:
    """A dispatch a reorder fault holds back in its session until ``remaining`` others pass."""

    name: str
    data: Any
    guild_id: str | None
    remaining: int


class FaultBook:
    """The dispatch faults in force, in the order they were added.

    Args:
        rng: The emulator's seeded random source; the only chance faults draw from.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._faults: list[DispatchFault] = []

    def __len__(self) -> int:
        return len(self._faults)

    def add(self, fault: DispatchFault) -> DispatchFault:
        """Put ``fault`` in force after those already there; return it."""
        self._faults.append(fault)
        return fault

    def remove(self, fault: DispatchFault) -> None:
        """Take one fault out of force, if it still is (by identity: equal faults may differ)."""
        self._faults[:] = [kept for kept in self._faults if kept is not fault]

    def clear(self) -> None:
        """Take every fault out of force."""
        self._faults.clear()

    def faults(self) -> list[DispatchFault]:
        """Return the faults in force, oldest first."""
        return list(self._faults)

    def decide(self, name: str, bot_id: str, guild_id: str | None) -> DispatchFault | None:
        """Return the fault that catches this dispatch, or ``None`` to deliver it as is.

        A caught dispatch uses up one of its fault's ``count``; a spent fault leaves the book.
        """
        for fault in self._faults:
            if not fault.selects(name, bot_id, guild_id):
                continue
            if fault.probability is not None and self._rng.random() >= fault.probability:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
            return fault
        return None

    def reorder_distance(self, fault: DispatchFault) -> int:
        """Return how many later dispatches a dispatch caught by ``fault`` waits behind."""
        return fault.window if fault.window == 1 else self._rng.randint(1, fault.window)
