"""When an injected fault fires: the next N matching requests, or each one with a probability.

Layer: the emulator. Shared by the REST side (``Emulator.fail_next``) and the CDN
(``Emulator.fail_cdn``); knows nothing of HTTP and nothing of the client.

A fault given a ``count`` answers the next ``count`` matches and is then gone. A fault given a
``probability`` fails each match with that chance until it is cleared. Every chance is drawn
from the emulator's one seeded ``random.Random``, once per matching request and in the order
the requests arrive, so the same seed and the same requests give the same failures again.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .clock import Clock

__all__ = ["Trigger", "retry_after_header"]


@dataclass(slots=True)
class Trigger:
    """How often a fault fires.

    Attributes:
        count: Answers left (ignored when ``probability`` is set).
        probability: The chance that each match fails, or None to count down instead.
    """

    count: int = 1
    probability: float | None = None

    @classmethod
    def of(cls, count: int, probability: float | None) -> Trigger:
        """Return a validated trigger.

        Raises:
            ValueError: ``count`` is negative or ``probability`` lies outside 0..1.
        """
        if probability is not None:
            probability = float(probability)
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"probability must lie between 0 and 1, not {probability}")
        elif count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        return cls(int(count), probability)

    @property
    def armed(self) -> bool:
        """Return whether the fault may still fire."""
        return self.probability is not None or self.count > 0

    def fires(self, rng: random.Random) -> bool:
        """Decide whether this match fails; a probability draws once from ``rng``."""
        if self.probability is None:
            return self.count > 0
        return rng.random() < self.probability

    def spend(self) -> bool:
        """Use one answer; False when concurrent matches used the last ones first."""
        if self.probability is not None:
            return True
        if self.count <= 0:
            return False
        self.count -= 1
        return True

    @property
    def spent(self) -> bool:
        """Return whether a counted fault has no answers left (it can be forgotten)."""
        return self.probability is None and self.count <= 0


def retry_after_header(clock: Clock, discord_seconds: float) -> str:
    """Return a ``Retry-After`` value: whole Discord seconds (rounded up, at least 1) in real ones.

    Discord's header is whole seconds. Under a time scale it says that many Discord seconds in
    real ones, so a scaled emulator keeps Discord's ratios (a real second would be 100 Discord
    seconds at time scale 0.01). At time scale 1 it is a whole number.
    """
    real = clock.to_real(max(1, math.ceil(discord_seconds - 1e-9)))
    return str(int(real)) if float(real).is_integer() else f"{real:.6g}"
