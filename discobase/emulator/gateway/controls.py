"""Dispatch faults and guild outages as ``emu.gateway`` methods (emulator layer, gateway side).

Layer: the emulator's gateway. The public face of :mod:`.faults` (the rule book) and
:mod:`.delivery` (which applies it): :class:`.server.GatewayServer` inherits these methods,
so tests call ``emu.gateway.withhold_dispatches(...)``. Kept apart from the server so that
the server stays about sockets and sessions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .delivery import Delivery
from .faults import DispatchFault, event_names

__all__ = ["DispatchFaultControls"]


class DispatchFaultControls:
    """The dispatch-fault and guild-outage controls of the gateway server."""

    delivery: Delivery
    dispatch_delay: float

    def delay_dispatches(
        self,
        seconds: float,
        event: str | Iterable[str] | None = None,
        *,
        bot_id: str | None = None,
        guild_id: str | None = None,
        count: int | None = None,
        probability: float | None = None,
    ) -> DispatchFault | None:
        """Delay dispatches by ``seconds`` Discord seconds.

        With no selector, ``count`` or ``probability``: a slow gateway. Every payload queued
        from now on (READY and RESUME replays too) waits, in order, until this is called with
        0. With any of them: a dispatch fault, see :meth:`withhold_dispatches`; each caught
        dispatch is held on its own and numbered when it goes out, so later ones overtake it.

        Returns:
            The dispatch fault put in force, or None for the slow gateway.
        """
        if (event, bot_id, guild_id, count, probability) == (None,) * 5:
            self.dispatch_delay = max(0.0, float(seconds))
            return None
        return self._fault(
            "delay", event, bot_id, guild_id, count, probability, seconds=float(seconds)
        )

    def withhold_dispatches(
        self,
        event: str | Iterable[str] | None = None,
        *,
        bot_id: str | None = None,
        guild_id: str | None = None,
        count: int | None = None,
        probability: float | None = None,
    ) -> DispatchFault:
        """Never send the selected dispatches (reference.mdx, "Consistency": zero times).

        A withheld dispatch gets no sequence number and is not buffered, so a RESUME does not
        replay it either. The selectors and limits below are shared by every dispatch fault.

        Args:
            event: A dispatch name (``"MESSAGE_CREATE"``) or several; None for every name.
            bot_id: Only sessions of this bot.
            guild_id: Only dispatches of this guild.
            count: Catch the next ``count`` selected dispatches, then leave force.
            probability: Catch each selected dispatch with this chance (drawn from the
                emulator's seeded ``random``) until cleared. With neither ``count`` nor
                ``probability``, every selected dispatch is caught until cleared.

        Returns:
            The fault now in force (``clear_dispatch_faults()`` ends it).
        """
        return self._fault("withhold", event, bot_id, guild_id, count, probability)

    def duplicate_dispatches(
        self,
        event: str | Iterable[str] | None = None,
        *,
        bot_id: str | None = None,
        guild_id: str | None = None,
        count: int | None = None,
        probability: float | None = None,
    ) -> DispatchFault:
        """Send each selected dispatch twice, back to back, each with its own ``s``.

        Selectors as in :meth:`withhold_dispatches`.
        """
        return self._fault("duplicate", event, bot_id, guild_id, count, probability)

    def reorder_dispatches(
        self,
        window: int = 2,
        event: str | Iterable[str] | None = None,
        *,
        bot_id: str | None = None,
        guild_id: str | None = None,
        count: int | None = None,
        probability: float | None = None,
    ) -> DispatchFault:
        """Hold each selected dispatch back until 1 to ``window`` later ones went out.

        How many is drawn from the emulator's seeded ``random`` (exactly 1 when ``window``
        is 1). The held dispatch is numbered when it goes out, so ``s`` still increases; with
        too little traffic it goes out after ``config.reorder_max_hold`` Discord seconds.
        Selectors as in :meth:`withhold_dispatches`.
        """
        return self._fault(
            "reorder", event, bot_id, guild_id, count, probability, window=int(window)
        )

    def _fault(
        self,
        kind: str,
        event: str | Iterable[str] | None,
        bot_id: str | None,
        guild_id: str | None,
        count: int | None,
        probability: float | None,
        **shape: Any,
    ) -> DispatchFault:
        fault = DispatchFault(
            kind,
            event_names(event),
            None if bot_id is None else str(bot_id),
            None if guild_id is None else str(guild_id),
            None if count is None else int(count),
            None if probability is None else float(probability),
            **shape,
        )
        return self.delivery.book.add(fault)

    def dispatch_faults(self) -> list[DispatchFault]:
        """Return the dispatch faults in force, oldest (first to decide) first."""
        return self.delivery.book.faults()

    def clear_dispatch_faults(self) -> None:
        """End every dispatch fault; what reorder and delay faults hold is sent now.

        The slow gateway of ``delay_dispatches(seconds)`` is turned off too.
        """
        self.dispatch_delay = 0.0
        self.delivery.clear_faults()

    def guild_outage(self, guild_id: str, seconds: float | None = None) -> int:
        """Take a guild down, as a Discord outage does, until :meth:`guild_restore`.

        Every session of a bot in it gets GUILD_DELETE ``{id, unavailable: true}`` and then
        no dispatch of that guild; a READY while it is down lists it as unavailable and sends
        that GUILD_DELETE instead of its GUILD_CREATE.

        Args:
            guild_id: The guild.
            seconds: Come back by itself after this many Discord seconds (None: stay down).

        Returns:
            How many sessions were told.
        """
        return self.delivery.outage(str(guild_id), None if seconds is None else float(seconds))

    def guild_restore(self, guild_id: str) -> int:
        """End a guild's outage; return how many sessions got its full GUILD_CREATE."""
        return self.delivery.restore(str(guild_id))

    def unavailable_at_ready(
        self, guild_id: str, count: int = 1, seconds: float | None = None
    ) -> None:
        """Start the next ``count`` sessions of bots in a guild with it unavailable.

        Only those sessions see the outage (live sessions keep the guild): READY lists it,
        GUILD_DELETE ``{id, unavailable: true}`` comes instead of its GUILD_CREATE, and the
        full GUILD_CREATE follows after ``seconds`` Discord seconds, or at
        :meth:`guild_restore` when ``seconds`` is None.
        """
        seconds = None if seconds is None else float(seconds)
        self.delivery.outage_at_ready(str(guild_id), int(count), seconds)
