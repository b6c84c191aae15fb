"""When an injected fault fires: the next N matching requests, or each one with a probability.

Layer: the emulator. Shared by the REST side (``Emulator.fail_next``) and the CDN
(``Emulator.fail_cdn``); knows nothing of HTTP and nothing of the client.

A fault given only a ``count`` answers the next ``count`` matches and is then gone (with neither
``count`` nor ``probability``, the next one). A fault given only a ``probability`` fails each
match with that chance until it is cleared. Given both, it fails each match with that chance
until ``count`` have failed, then it is gone: the meaning the gateway's dispatch faults give
the pair too. Every chance is drawn from the emulator's one seeded ``random.Random``, once per
matching request while the fault is armed and in the order the requests arrive, so the same
seed and the same requests give the same failures again.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .clock import Clock

__all__ = ["Trigger", "rest_fault_kind", "retry_after_header"]


@dataclass(slots=True)
class Trigger:
    """How often a fault fires.

    Attributes:
        count: Answers left, or None for no limit (only with a ``probability``).
        probability: The chance that each match fails, or None to fail every match.
    """

    count: int | None = 1
    probability: float | None = None

    @classmethod
    def of(cls, count: int | None, probability: float | None) -> Trigger:
        """Return a validated trigger.

        ``count`` None means 1 without a probability (the next match) and no limit with one.

        Raises:
            ValueError: ``count`` is negative or ``probability`` lies outside 0..1.
        """
        if probability is not None:
            probability = float(probability)
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"probability must lie between 0 and 1, not {probability}")
        if count is None:
            return cls(None if probability is not None else 1, probability)
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        return cls(int(count), probability)

    @property
    def armed(self) -> bool:
        """Return whether the fault may still fire."""
        return self.count is None or self.count > 0

    def fires(self, rng: random.Random) -> bool:
        """Decide whether this match fails; a probability draws once from ``rng``."""
        if not self.armed:
            return False
        return self.probability is None or rng.random() < self.probability

    def spend(self) -> bool:
        """Use one answer; False when concurrent matches used the last ones first."""
        if self.count is None:
            return True
        if self.count <= 0:
            return False
        self.count -= 1
        return True

    @property
    def spent(self) -> bool:
        """Return whether a counted fault has no answers left (it can be forgotten)."""
        return self.count is not None and self.count <= 0


def rest_fault_kind(status: int, after_write: bool) -> str:
    """Return the kind an injected REST answer is counted under in ``stats()``.

    ``server_error`` (5xx), ``rate_limited`` (429) or ``client_error`` (any other 4xx), with
    ``_after_write`` when the request was performed before the error was answered.
    """
    if status >= 500:
        kind = "server_error"
    elif status == 429:
        kind = "rate_limited"
    else:
        kind = "client_error"
    return kind + ("_after_write" if after_write else "")


def retry_after_header(clock: Clock, discord_seconds: float) -> str:
    """Return a ``Retry-After`` value: whole Discord seconds (rounded up, at least 1) in real ones.

    Discord's header is whole seconds. Under a time scale it says that many Discord seconds in
    real ones, so a scaled emulator keeps Discord's ratios (a real second would be 100 Discord
    seconds at time scale 0.01). At time scale 1 it is a whole number.
    """
    real = clock.to_real(max(1, math.ceil(discord_seconds - 1e-9)))
    return str(int(real)) if float(real).is_integer() else f"{real:.6g}"
