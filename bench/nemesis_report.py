"""What one nemesis run did and what the checker said, as the lines ``bench/nemesis.py`` prints.

Holds :class:`RunResult`: the run's figures (faults injected, operations, invariants,
multi-part entries and table races, damage done and judged, convergence) and their lines, one
fact a line, with the replay command line of a failed run.

It must not know the local Discord, the processes or the faults: only the figures handed to
it, the checker's verdict among them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemesis_run import Config


@dataclass
class RunResult:
    """What one run did and what the checker said."""

    config: Config
    verdict: Any
    injected: Counter[str]
    unavailable: list[str]
    broken: dict[str, str]
    restarts: int
    killed_mid_op: int
    server: dict[str, Any]
    wall: float
    loaded: int
    workdir: Path
    doubled_in_readers: list[str] = field(default_factory=list)
    damaged: Counter[str] = field(default_factory=Counter)
    deadline: float = 0.0  # the bound in force (Discord s): the config's, and the racers'
    figures: list[str] = field(default_factory=list)  # multi-part entries, table races

    @property
    def ok(self) -> bool:
        return bool(self.verdict.ok)

    def damage_lines(self) -> list[str]:
        """Return the deliberate damage's figures (a run with ``--damage``), else nothing."""
        if not self.config.damage:
            return []
        did = ", ".join(f"{k} {n}" for k, n in sorted(self.damaged.items())) or "nothing"
        figures = self.verdict.damage
        order = (
            "entries deleted",
            "entries deleted offline",
            "intact",
            "repaired",
            "lost, reported",
            "untraceable",
            "untraceable, not the newest",
            "entries not decoded",
            "opened with the catalog renamed",
        )
        fates = ", ".join(f"{k} {figures[k]}" for k in order)
        return [f"  damage done: {did}", f"  damage judged: {fates}"]

    def lines(self) -> list[str]:
        """Return the run's figures, one fact a line."""
        c, v = self.config, self.verdict
        faults = ", ".join(f"{k} {n}" for k, n in sorted(self.injected.items())) or "none"
        ops = v.operations
        outcomes = ", ".join(f"{k} {ops[k]}" for k in ("ok", "fail", "info"))
        kinds = ", ".join(f"{k} {ops[k]}" for k in ("save", "update", "delete", "save_many"))
        counts = ", ".join(f"{k} {n}" for k, n in v.counts.items())
        times = [t for t in v.convergence.values() if t is not None]
        worst = max(times, default=math.nan)
        out = [
            f"seed {c.seed}: {c.minutes:g} Discord min at time scale {c.time_scale:g}, "
            f"{c.writers} writers x {c.clients} clients, {c.readers} readers, "
            f"{self.wall:.1f} s wall",
            f"  faults injected: {sum(self.injected.values())} ({faults}); "
            f"writer restarts {self.restarts}, writers killed with an operation in flight "
            f"{self.killed_mid_op}",
            f"  unavailable fault kinds: {', '.join(self.unavailable) or 'none'}",
        ]
        if self.broken:
            out.append(f"  fault kinds that failed to inject: {self.broken}")
        gw = self.server.get("gateway", {})
        statuses = self.server.get("responses_by_status", {})
        errors = sorted((int(k), n) for k, n in statuses.items() if int(k) >= 400)
        out.append(
            f"  server: gateway identifies {gw.get('identifies', '?')}, resumes "
            f"{gw.get('resumes', '?')}; REST errors answered "
            f"{', '.join(f'{k} x{n}' for k, n in errors) or 'none'}"
        )
        out += [
            f"  operations: {sum(ops[k] for k in ('ok', 'fail', 'info'))} ({outcomes}; "
            f"{kinds}); keys {v.keys}, fresh load {self.loaded} records",
            f"  invariants: {counts}",
            *self.figures,
            *self.damage_lines(),
            f"  convergence: {worst / c.time_scale if times else math.nan:.2f} Discord s "
            f"({worst:.3f} s wall) after the quiet period began; bound {c.settle:g} s "
            f"{'quiet + audit' if c.damage else 'quiet'} + {self.deadline:g} s; "
            f"{len(times)} of {len(v.convergence)} processes measured",
            f"  result: {'PASS' if self.ok else 'FAIL'}",
        ]
        for name, examples in v.examples.items():
            for example in examples:
                out.append(f"    {name}: {example}")
        if not self.ok:
            out.append(f"  replay: {c.replay()}  (histories in {self.workdir})")
        return out
