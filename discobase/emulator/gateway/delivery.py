"""Numbering dispatches for a session, through dispatch faults and guild outages (emulator).

Layer: the emulator's gateway. Sits between the server's fan-out and a session's sequence
numbers: every dispatch after READY passes :meth:`Delivery.deliver`, which may withhold,
duplicate, hold back (reorder) or delay it, or drop it because its guild is down for that
session. It reaches sessions, connections and the state only through the server.

Theory: a dispatch gets its ``s`` when it is numbered, and it is numbered only when it is
really put on the session's outgoing queue. A withheld dispatch is therefore never numbered,
never buffered and so never replayed by a RESUME (as on Discord, where it was never in the
session). A duplicate is numbered twice, a held-back or delayed one when it is let go, so the
numbers a client sees always increase in the order frames arrive, whatever the faults do.

Guild outages follow gateway-events.mdx ("Guild Create", "Guild Delete"): a guild down at
READY is still listed in READY as unavailable, and the session gets GUILD_DELETE
``{id, unavailable: true}`` instead of its GUILD_CREATE; a guild going down during a session
sends that GUILD_DELETE; coming back sends the full GUILD_CREATE. While a guild is down for a
session, the session gets no other dispatch of that guild: they are dropped, not queued (the
GUILD_CREATE on return carries the guild's state, and Discord does not replay an outage).
Only the bot's own join and removal pass, so that the session's view stays true.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .config import GatewayConfig
from .connection import GatewayConnection
from .faults import KINDS, FaultBook, Held
from .session import Session, SessionRegistry
from .stats import GatewayCounters

__all__ = ["Delivery", "DeliveryServer"]


class DeliveryServer(Protocol):
    """What delivery asks of the gateway server (``server.GatewayServer``).

    A protocol so that this module need not import the server, which imports it.
    """

    config: GatewayConfig
    counters: GatewayCounters
    sessions: SessionRegistry

    @property
    def scale(self) -> float: ...

    def attached(self, session: Session) -> GatewayConnection | None: ...

    def in_guild(self, session: Session, guild_id: str) -> bool: ...

    def guild_payload(self, session: Session, guild_id: str) -> dict[str, Any]: ...


@dataclass
class _ReadyOutage:
    """A guild the next ``left`` sessions start without, back after ``seconds`` (or never)."""

    guild_id: str
    left: int
    seconds: float | None


class Delivery:
    """Deliver dispatches to sessions, with the dispatch faults and guild outages in force.

    Args:
        server: The gateway server (sessions, connections, counters, scale, state).
        book: The dispatch faults in force.
    """

    def __init__(self, server: DeliveryServer, book: FaultBook) -> None:
        self._server = server
        self.book = book
        self.down: dict[str, asyncio.TimerHandle | None] = {}
        self._at_ready: list[_ReadyOutage] = []
        self._delayed: list[tuple[Session, Held]] = []
        self._fault_timers: set[asyncio.TimerHandle] = set()
        self._outage_timers: set[asyncio.TimerHandle] = set()

    # -- dispatches ----------------------------------------------------------------------

    def deliver(
        self, session: Session, name: str, data: Any, guild_id: str | None, *, faults: bool = True
    ) -> None:
        """Number ``name`` for ``session`` unless an outage or a fault says otherwise."""
        counts = self._server.counters.faults
        if guild_id is not None and guild_id in session.unavailable:
            counts["suppressed"] += 1
            return
        fault = self.book.decide(name, session.bot_id, guild_id) if faults else None
        if fault is None:
            self.emit(session, name, data)
            return
        counts[KINDS[fault.kind]] += 1
        if fault.kind == "duplicate":
            self.emit(session, name, data)
            self.emit(session, name, data)
        elif fault.kind == "reorder":
            held = Held(name, data, guild_id, self.book.reorder_distance(fault))
            session.held.append(held)
            # Bounded in time too: with no later traffic, a held dispatch must still arrive.
            max_hold = self._server.config.reorder_max_hold
            self._after(self._fault_timers, max_hold, self._let_go, session, held)
        elif fault.kind == "delay":
            delayed = Held(name, data, guild_id, 0)
            self._delayed.append((session, delayed))
            self._after(self._fault_timers, fault.seconds, self._end_delay, session, delayed)
        # "withhold": nothing is numbered, buffered or sent.

    def emit(self, session: Session, name: str, data: Any) -> None:
        """Number one dispatch, queue it, then let go of what it was the last one held for."""
        due: list[tuple[str, Any]] = [(name, data)]
        while due:
            payload = session.next_payload(*due.pop(0))
            conn = self._server.attached(session)
            if conn is not None:
                conn.enqueue(payload)
            for held in list(session.held):
                held.remaining -= 1
                if held.remaining <= 0:
                    session.held.remove(held)
                    if self._still_wanted(session, held):
                        due.append((held.name, held.data))

    def _still_wanted(self, session: Session, held: Held) -> bool:
        if held.guild_id is not None and held.guild_id in session.unavailable:
            self._server.counters.faults["suppressed"] += 1
            return False
        return True

    def _let_go(self, session: Session, held: Held) -> None:
        if held in session.held:
            session.held.remove(held)
            if session in self._server.sessions and self._still_wanted(session, held):
                self.emit(session, held.name, held.data)

    def _end_delay(self, session: Session, held: Held) -> None:
        if (session, held) in self._delayed:
            self._delayed.remove((session, held))
            if session in self._server.sessions and self._still_wanted(session, held):
                self.emit(session, held.name, held.data)

    def clear_faults(self) -> None:
        """Take every dispatch fault out of force and send what they hold back now."""
        self.book.clear()
        for handle in self._fault_timers:
            handle.cancel()
        self._fault_timers.clear()
        delayed, self._delayed = self._delayed, []
        for session in self._server.sessions:
            while session.held:
                self._let_go(session, session.held[0])
        for session, held in delayed:
            if session in self._server.sessions and self._still_wanted(session, held):
                self.emit(session, held.name, held.data)

    # -- guild outages -------------------------------------------------------------------

    def outage(self, guild_id: str, seconds: float | None) -> int:
        """Take ``guild_id`` down for every session (and READY) until restored; return how many
        sessions were told."""
        previous = self.down.pop(guild_id, None)
        if previous is not None:
            previous.cancel()
        timer = None
        if seconds is not None:
            timer = self._after(self._outage_timers, seconds, self.restore, guild_id)
        self.down[guild_id] = timer
        self._server.counters.faults["guild_outages"] += 1
        told = 0
        for session in self._server.sessions:
            if guild_id not in session.unavailable and self._server.in_guild(session, guild_id):
                self._go_down(session, guild_id)
                told += 1
        return told

    def outage_at_ready(self, guild_id: str, count: int, seconds: float | None) -> None:
        """Start the next ``count`` sessions of bots in ``guild_id`` with it unavailable."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self._at_ready.append(_ReadyOutage(guild_id, count, seconds))

    def starts_down(self, session: Session, guild_id: str) -> bool:
        """At READY: send GUILD_DELETE instead of GUILD_CREATE if ``guild_id`` is down."""
        if guild_id not in self.down:
            entry = next((e for e in self._at_ready if e.guild_id == guild_id), None)
            if entry is None:
                return False
            entry.left -= 1
            if entry.left == 0:
                self._at_ready.remove(entry)
            self._server.counters.faults["guild_outages"] += 1
            if entry.seconds is not None:
                self._after(self._outage_timers, entry.seconds, self._come_back, session, guild_id)
        self._go_down(session, guild_id)
        return True

    def restore(self, guild_id: str) -> int:
        """End every outage of ``guild_id``; return how many sessions got its GUILD_CREATE."""
        timer = self.down.pop(guild_id, None)
        if timer is not None:
            timer.cancel()
        self._at_ready = [e for e in self._at_ready if e.guild_id != guild_id]
        return sum(self._come_back(session, guild_id) for session in self._server.sessions)

    def joined(self, session: Session, guild_id: str, data: Any) -> Any:
        """Return the GUILD_CREATE a bot joining ``guild_id`` gets (unavailable while down)."""
        if guild_id in self.down:
            session.unavailable.add(guild_id)
            return {"id": guild_id, "unavailable": True}
        session.unavailable.discard(guild_id)
        return data

    def _go_down(self, session: Session, guild_id: str) -> None:
        session.unavailable.add(guild_id)
        self.emit(session, "GUILD_DELETE", {"id": guild_id, "unavailable": True})

    def _come_back(self, session: Session, guild_id: str) -> bool:
        if guild_id not in session.unavailable or session not in self._server.sessions:
            return False
        session.unavailable.discard(guild_id)
        if not self._server.in_guild(session, guild_id):
            return False  # removed while down: nothing comes back
        self._server.counters.faults["guild_restores"] += 1
        self.emit(session, "GUILD_CREATE", self._server.guild_payload(session, guild_id))
        return True

    # -- housekeeping ----------------------------------------------------------------------

    def reset(self) -> None:
        """Clear dispatch faults (sending what they hold) and end every outage."""
        self.clear_faults()
        for guild_id in {*self.down, *(g for s in self._server.sessions for g in s.unavailable)}:
            self.restore(guild_id)
        for handle in self._outage_timers:
            handle.cancel()
        self._outage_timers.clear()

    def close(self) -> None:
        """Cancel every timer (the emulator is stopping)."""
        for handle in (*self._fault_timers, *self._outage_timers, *self.down.values()):
            if handle is not None:
                handle.cancel()

    def _after(
        self,
        timers: set[asyncio.TimerHandle],
        seconds: float,
        callback: Callable[..., Any],
        *args: Any,
    ) -> asyncio.TimerHandle:
        def fire() -> None:
            timers.discard(handle)
            callback(*args)

        handle = asyncio.get_running_loop().call_later(seconds * self._server.scale, fire)
        timers.add(handle)
        return handle
