"""The verdict of a nemesis check: the invariants' counts, a few examples of each violation,
and the figures that are not violations.

Holds :data:`INVARIANTS` (the counters that must all be zero for a run to pass) and
:class:`Verdict`, which every part of the checker flags violations into and
``nemesis_report`` prints.

It must not know how a violation is found (``nemesis_check_invariants``,
``nemesis_check_damage``, ``nemesis_check``), the operations, or how a verdict is printed: it
holds counts and lines only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

#: The counters that must all be zero for a run to pass.
INVARIANTS = (
    "lost",
    "phantom",
    "failed_visible",
    "doubled",
    "partial",
    "reverted",
    "divergent",
    "late",
    "damage_unreported",
    "damage_inconsistent",
)


@dataclass
class Verdict:
    """The counts of a run's check, and a few examples of each violation.

    Attributes:
        counts: one entry per name of :data:`INVARIANTS` (0 when it holds).
        operations: operations by outcome (``ok``, ``fail``, ``info``) and by ``f``.
        examples: up to ``EXAMPLES`` readable lines per violated invariant.
        convergence: per live process that reported, the time (in the clock of the history)
            from ``quiet_at`` until its state last changed before matching the fresh load;
            ``None`` for a process without samples.
        keys: how many keys the run wrote.
        damage: figures of the deliberate damage (not violations): deleted entries whose
            records stayed intact, were written again by a live process, were lost and
            reported, or were lost without a trace as documented (``untraceable``).
    """

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INVARIANTS, 0))
    damage: Counter[str] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    convergence: dict[str, float | None] = field(default_factory=dict)
    keys: int = 0

    EXAMPLES = 5

    @property
    def ok(self) -> bool:
        """Return whether every invariant holds."""
        return not any(self.counts.values())

    def flag(self, invariant: str, example: str) -> None:
        """Count one violation of ``invariant``, keeping the first examples."""
        self.counts[invariant] += 1
        if len(self.examples[invariant]) < self.EXAMPLES:
            self.examples[invariant].append(example)
