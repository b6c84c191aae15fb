"""Session starts: Discord's daily budget of IDENTIFYs and the spacing between two.

Gateway layer, pure: the caller passes the time. ``GET /gateway/bot`` reports the budget
(``session_start_limit``); an identify below ``identify_floor`` is refused here rather than
spent, so a reconnect loop cannot use up the day and leave the bot unable to start.
"""

from __future__ import annotations

from discobase.gateway.config import ProtocolConfig
from discobase.gateway.errors import IdentifyBudgetExhausted

__all__ = ["IdentifyBudget"]

#: Discord's budget window, in Discord seconds.
DAY = 86400.0


class IdentifyBudget:
    """What is left of the daily budget, and when the next IDENTIFY may go out.

    Args:
        config: the protocol's constants (``session_start_limit``, ``identify_floor``,
            ``identify_spacing``, ``latency_margin``, ``time_scale``).
    """

    def __init__(self, config: ProtocolConfig) -> None:
        self.config = config
        self.remaining: int | None = None  # None: unknown, never refused
        self.resets_at: float | None = None
        self.last_identify_at: float | None = None

    def start(self, now: float) -> None:
        """Read the budget ``GET /gateway/bot`` reported, if any."""
        limit = self.config.session_start_limit
        if limit is not None and "remaining" in limit:
            self.remaining = int(limit["remaining"])
            reset_after = float(limit.get("reset_after", 0)) / 1000.0
            self.resets_at = now + reset_after

    def refusal(self, now: float) -> IdentifyBudgetExhausted | None:
        """Return the error to raise instead of identifying now, or ``None`` to go ahead."""
        if self.remaining is None or self.resets_at is None:
            return None
        limit = self.config.session_start_limit or {}
        if now >= self.resets_at and "total" in limit:
            # Discord refilled the budget; assume the same daily window again.
            self.remaining = int(limit["total"])
            self.resets_at = now + DAY * self.config.time_scale
        if self.remaining <= self.config.identify_floor:
            reset_in = max(0.0, self.resets_at - now)
            return IdentifyBudgetExhausted(self.remaining, self.config.identify_floor, reset_in)
        return None

    def spend(self, now: float) -> None:
        """Record an IDENTIFY sent at ``now``."""
        self.last_identify_at = now
        if self.remaining is not None:
            self.remaining -= 1

    def allowed_at(self) -> float:
        """Return the earliest time the next IDENTIFY may go out (Discord spaces them)."""
        if self.last_identify_at is None:
            return float("-inf")
        spacing = self.config.identify_spacing * self.config.time_scale + self.config.latency_margin
        return self.last_identify_at + spacing
