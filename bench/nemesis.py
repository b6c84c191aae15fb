"""A randomized fault checker: writers, live readers and a nemesis against the local Discord.

In the spirit of Jepsen and FoundationDB's simulation testing (see the checker design note):
one local Discord, seeded from ``--seed`` and time-scaled, runs in this process; several
**writer processes** (``bench/nemesis_worker.py writer``, each with its own ``Database`` and
``--clients`` client loops) save, update, delete and ``save_many`` records of two tables, one
where each client owns its keys and one where every client updates and deletes every key;
several **live reader processes** sample what they hold. A **nemesis** schedule, drawn from
the seed before the run starts, injects faults from the table of fault kinds (:data:`KINDS`):
SIGKILL a writer mid-operation and start a new one, pause a reader, 5xx before and after the
write, 429s, gateway drops, op 7 and op 9, zombie connections, refused connects, slow,
withheld, doubled and reordered dispatches, guild outages, and whatever else the emulator
offers. A kind whose method the emulator lacks is listed as unavailable, never silently left
out.

Then the faults stop and the writers finish their operation (the **quiet period** starts),
a **fresh process** loads every table, and every live process reports what it holds.
``bench/nemesis_check.py`` judges the histories: no acknowledged write lost, nothing doubled
or partial, no failed write visible, no reader going back, everyone converged within
``--bound`` Discord seconds of the quiet period. The output is counts; the exit code is 0
iff every invariant held in every run.

Everything random comes from the seed (processes get seeds derived from it), so ``--seed N``
replays the same schedule of faults; process timing, and so which operation a fault hits,
varies as the machine allows.

Run: ``python bench/nemesis.py --seed 1 --minutes 2``; ``--runs 20`` (seeds from ``--seed``
on) or ``--seeds 1..20`` for many; ``--keep DIR`` keeps the histories (``--help`` for more).

The modules, next to this one (bench/ is not a package: they import each other by name):
``nemesis_run`` (a run's parameters, state and processes), ``nemesis_faults`` (the fault
kinds, their injection, the schedule), ``nemesis_entries`` (the bot's entries in the local
Discord, decoded), ``nemesis_damage`` (deliberate damage), ``nemesis_drive`` (one run, phase
by phase), ``nemesis_report`` (its printed lines), ``nemesis_check`` (the checker, pure) and
``nemesis_worker`` (a writer, reader or loader process). This one holds the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    # Loaded by path (the tests): its modules must be importable as when run as a script.
    sys.path.insert(0, str(BENCH))

from nemesis_damage import DAMAGE_KINDS  # noqa: E402
from nemesis_drive import run_once  # noqa: E402
from nemesis_faults import KINDS, Kind, available, schedule  # noqa: E402
from nemesis_report import RunResult  # noqa: E402
from nemesis_run import SMALL_SHARE, Config, Run  # noqa: E402

__all__ = [
    "DAMAGE_KINDS",
    "KINDS",
    "Config",
    "Kind",
    "Run",
    "RunResult",
    "available",
    "main",
    "run_once",
    "schedule",
    "seeds_of",
]


def seeds_of(args: argparse.Namespace) -> list[int]:
    if args.seeds:
        first, _, last = args.seeds.partition("..")
        return list(range(int(first), int(last or first) + 1))
    return list(range(args.seed, args.seed + args.runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (default 1)")
    parser.add_argument("--seeds", help="a range of seeds, A..B (inclusive)")
    parser.add_argument("--runs", type=int, default=1, help="runs, seeds from --seed on")
    parser.add_argument("--minutes", type=float, default=1.0, help="Discord minutes of faults")
    parser.add_argument("--time-scale", type=float, default=0.02, help="real s per Discord s")
    parser.add_argument("--writers", type=int, default=3, help="writer processes")
    parser.add_argument("--readers", type=int, default=2, help="live reader processes")
    parser.add_argument("--clients", type=int, default=2, help="client loops per writer")
    parser.add_argument("--fault-gap", type=float, default=3.0, help="mean Discord s per fault")
    parser.add_argument("--quiet", type=float, default=10.0, help="Discord s of quiet at the end")
    parser.add_argument(
        "--bound",
        type=float,
        help="Discord s after the quiet period within which every live process must match "
        "the fresh load (default: 2 s + one gap-check interval + 5 s per process, the "
        "identify queue of one bot)",
    )
    parser.add_argument("--faults", help="comma-separated fault kinds to draw from")
    parser.add_argument("--chaos", action="store_true", help="Emulator(chaos=True) if offered")
    parser.add_argument(
        "--damage",
        action="store_true",
        help="also draw deliberate damage (a member deletes the bot's entries, renames "
        "channels) and delete entries after the processes stopped (invariant 5)",
    )
    parser.add_argument(
        "--snapshot-every",
        type=int,
        help="log entries per snapshot in the workers (default discobase's, 60 with --damage)",
    )
    parser.add_argument(
        "--small-messages",
        action=argparse.BooleanOptionalAction,
        help="small message size limits, so that large save_many batches and snapshots are "
        "written in several parts (default: drawn from the seed, "
        f"{SMALL_SHARE * 100:.0f}%% of seeds)",
    )
    parser.add_argument("--keep", type=Path, help="keep every run's histories under this dir")
    parser.add_argument("--list-faults", action="store_true", help="list fault kinds and exit")
    args = parser.parse_args(argv)
    if args.list_faults:
        for kind in KINDS:
            print(f"{kind.name:32} needs {', '.join(kind.needs) or '-'}")
        return 0
    failed: list[int] = []
    seeds = seeds_of(args)
    for seed in seeds:
        config = Config(
            seed=seed,
            minutes=args.minutes,
            time_scale=args.time_scale,
            writers=args.writers,
            readers=args.readers,
            clients=args.clients,
            fault_gap=args.fault_gap,
            quiet=args.quiet,
            bound=args.bound,
            keep=args.keep,
            only=frozenset(args.faults.split(",")) if args.faults else None,
            chaos=args.chaos,
            damage=args.damage or bool(args.faults and DAMAGE_KINDS & set(args.faults.split(","))),
            snapshot_every=args.snapshot_every,
            small_messages=args.small_messages,
        )
        result = asyncio.run(run_once(config))
        print("\n".join(result.lines()), flush=True)
        if not result.ok:
            failed.append(seed)
    print(
        f"schedules run: {len(seeds)}; failed: {len(failed)}"
        + (f" (seeds {', '.join(map(str, failed))})" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
