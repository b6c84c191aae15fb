"""A nemesis run's parameters, state and processes (``bench/nemesis.py``).

Holds :class:`Config` (one run's parameters and the figures derived from them: the seed's
message limits, the bound, the replay command line), :class:`Proc` (a worker process of
``bench/nemesis_worker.py`` and what the nemesis knows of it) and :class:`Run` (the state of
one run: the local Discord, the processes, the counters, the fields the other modules fill)
with the process management: start, wait for a line, SIGKILL, act later.

It must not know the fault kinds (``nemesis_faults``), the bot's entries or the damage done
to them (``nemesis_entries``, ``nemesis_damage``), the order of a run's phases
(``nemesis_drive``), or how a run is judged (``nemesis_check``): it keeps their state only.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nemesis_worker import TABLES  # noqa: E402  (the tables every process declares)


def _gap_check_interval() -> float:
    from discobase.storage.engine import GAP_CHECK_INTERVAL as interval

    return interval


def _audit_every() -> int:
    from discobase.storage.store import AUDIT_EVERY as every

    return every


WORKER = Path(__file__).with_name("nemesis_worker.py")
GUILD = "nemesis"
START_DEADLINE = 90.0  # real seconds a process may take to log in
STOP_DEADLINE = 60.0  # real seconds writers may take to finish their operation at the end
#: discobase's gap-check interval (docs/guarantees.md): the longest a live process waits
#: before it reads over REST what the gateway did not deliver. Its default, as the workers
#: leave it.
GAP_CHECK_INTERVAL = _gap_check_interval()
#: A deletion whose delete event was lost is found by the audit of every AUDIT_EVERY-th gap
#: check (docs/guarantees.md, "Damage"): a damage run waits that long, and one more gap
#: check, before the fresh load that must show the repair.
AUDIT_PERIOD = _audit_every() * GAP_CHECK_INTERVAL
#: Discord admits one IDENTIFY per bot per 5 s (max_concurrency 1): after a fault that ends
#: every session at once, the processes of one bot get new sessions one 5 s slot apart.
IDENTIFY_WINDOW = 5.0
#: The share of seeds whose processes write with small message limits (``Config.small``).
SMALL_SHARE = 0.5


@dataclass
class Config:
    """One run's parameters; times in Discord seconds unless said otherwise."""

    seed: int
    minutes: float = 1.0
    time_scale: float = 0.02
    writers: int = 3
    readers: int = 2
    clients: int = 2
    fault_gap: float = 3.0  # mean Discord seconds between two faults
    quiet: float = 10.0
    bound: float | None = None  # None: the default of `deadline`
    pace: float = 2.0  # a client waits up to this long between two operations
    grace: float = 0.5  # real seconds a killed writer's last request may still land
    keep: Path | None = None
    only: frozenset[str] | None = None  # fault kinds to draw from (None: every available)
    chaos: bool = False
    damage: bool = False  # draw deliberate damage too, and damage the tables at the end
    snapshot_every: int | None = None  # log entries per snapshot (None: see `snapshots`)
    small_messages: bool | None = None  # small message limits (None: drawn from the seed)

    @property
    def small(self) -> bool:
        """Return whether the processes write with small message limits (multi-part
        batches and snapshots, see ``nemesis_worker.SMALL_FILE``): ``small_messages``, else
        drawn from the seed, in SMALL_SHARE of the seeds."""
        if self.small_messages is not None:
            return self.small_messages
        return random.Random(f"{self.seed}/small messages").random() < SMALL_SHARE

    @property
    def snapshots(self) -> int | None:
        """Return the log entries per snapshot the workers use (``None``: discobase's 300).

        A damage run snapshots every 60 entries, so that snapshots exist to be deleted.
        """
        if self.snapshot_every is not None:
            return self.snapshot_every
        return 60 if self.damage else None

    @property
    def settle(self) -> float:
        """Return the Discord seconds after the quiet period begins before the fresh load.

        The quiet period; in a damage run, also one audit period and one gap check, for a
        member's deletion whose delete event was lost to be found and written again.
        """
        return self.quiet + (AUDIT_PERIOD + GAP_CHECK_INTERVAL if self.damage else 0.0)

    @property
    def deadline(self) -> float:
        """Return the bound in force: ``bound``, or 2 s + one gap check + the identify queue.

        The default is what a correct discobase can promise under these faults: 2 s for the
        gateway to deliver, one gap-check interval to find what it did not, and one identify
        slot per process of the bot, since a fault may end every session at once.
        """
        if self.bound is not None:
            return self.bound
        return 2.0 + GAP_CHECK_INTERVAL + IDENTIFY_WINDOW * (self.writers + self.readers)

    def replay(self) -> str:
        """Return the command line that replays this run."""
        parts = [f"python bench/nemesis.py --seed {self.seed} --minutes {self.minutes:g}"]
        defaults = Config(seed=0)
        for name in ("time_scale", "writers", "readers", "clients", "fault_gap", "quiet"):
            if getattr(self, name) != getattr(defaults, name):
                parts.append(f"--{name.replace('_', '-')} {getattr(self, name):g}")
        if self.bound is not None:
            parts.append(f"--bound {self.bound:g}")
        if self.only is not None:
            parts.append(f"--faults {','.join(sorted(self.only))}")
        if self.chaos:
            parts.append("--chaos")
        if self.damage:
            parts.append("--damage")
        if self.snapshot_every is not None:
            parts.append(f"--snapshot-every {self.snapshot_every}")
        if self.small_messages is not None:
            parts.append("--small-messages" if self.small_messages else "--no-small-messages")
        return " ".join(parts)


@dataclass
class Proc:
    """A worker process and what the nemesis knows of it."""

    name: str
    mode: str
    log: Path
    process: asyncio.subprocess.Process
    slot: int = 0
    ended: float | None = None  # monotonic time it was seen dead
    paused: bool = False
    tables: tuple[str, ...] = TABLES  # the tables it declares

    @property
    def alive(self) -> bool:
        return self.ended is None and self.process.returncode is None

    def lines(self) -> list[dict[str, Any]]:
        return read_lines(self.log)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Return a JSON-lines file's records; a torn last line (SIGKILL) is skipped."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    with path.open() as f:
        for line in f:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


class Run:
    """The state of one run: the emulator, the processes, the counters."""

    def __init__(self, config: Config, emu: Any, bot: Any, guild_id: str, workdir: Path) -> None:
        self.config = config
        self.emu = emu
        self.bot = bot
        self.guild_id = guild_id
        self.workdir = workdir
        self.procs: list[Proc] = []
        self.writers: dict[int, Proc] = {}
        self.readers: list[Proc] = []
        self.incarnations: Counter[int] = Counter()
        self.injected: Counter[str] = Counter()
        self.broken: dict[str, str] = {}
        self.restarts = 0
        self.killed: set[str] = set()
        self.timers: set[asyncio.Task[Any]] = set()
        # Deliberate damage: what was deleted and renamed, for the checker.
        self.catalog_id = ""
        self.tables: dict[str, str] = {}  # table name -> channel id
        self.id_keys: dict[str, str] = {}  # record id -> "table/key", from the entries seen
        self.deleted: list[Any] = []  # nemesis_check.Deleted
        self.damaged: Counter[str] = Counter()  # what the damage kinds did, by what
        self.renames: list[tuple[float, str]] = []  # (monotonic t, catalog channel's new name)
        # Deleted parts of multi-part entries: every part's files seen, by batch id and part,
        # to decode what the batch held once its parts are known (nemesis_entries.resolve_parts).
        self.batch_files: dict[str, dict[int, list[bytes]]] = {}
        self.unresolved: list[tuple[Any, str, dict[str, Any]]] = []  # (Deleted, table, body)
        # Table races (table_race): each race's table, the racers, the channels made for it.
        self.races: list[str] = []
        self.racers: dict[str, Proc] = {}
        self.race_channels: dict[str, set[str]] = {}
        self.race_kills: Counter[str] = Counter()
        self.watchers: set[asyncio.Task[Any]] = set()
        self.faults_end = math.inf  # monotonic time the quiet period begins

    @property
    def scale(self) -> float:
        return self.config.time_scale

    def seed_of(self, what: str) -> str:
        return f"{self.config.seed}/{what}"

    @property
    def all_tables(self) -> tuple[str, ...]:
        """Return every table of the run: the two of every process, and the raced ones."""
        return (*TABLES, *self.races)

    async def spawn(self, mode: str, name: str, *extra: str) -> Proc:
        """Start a worker process (``die_with_parent`` ends it with this one)."""
        log = self.workdir / f"{name}.jsonl"
        err = (self.workdir / f"{name}.stderr").open("ab")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "DISCOBASE_API_URL": self.emu.url,
            "DISCOBASE_TIME_SCALE": str(self.scale),
            "DISCOBASE_TOKEN": self.bot.token,
        }
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                mode,
                "--name",
                name,
                "--log",
                str(log),
                "--guild",
                GUILD,
                "--parent",
                str(os.getpid()),
                *(
                    ("--snapshot-every", str(self.config.snapshots))
                    if self.config.snapshots
                    else ()
                ),
                *(("--small-messages",) if self.config.small else ()),
                *extra,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=env,
            )
        finally:
            err.close()
        proc = Proc(name, mode, log, process)
        self.procs.append(proc)
        return proc

    def note(self, what: str, **fields: Any) -> None:
        """Log what the nemesis did to ``nemesis.jsonl``, in the clock of the histories."""
        with (self.workdir / "nemesis.jsonl").open("a") as f:
            f.write(json.dumps({"type": what, "t": time.monotonic(), **fields}) + "\n")

    async def start_writer(self, slot: int) -> Proc:
        inc = self.incarnations[slot]
        self.incarnations[slot] += 1
        name = f"w{slot}.{inc}"
        c = self.config
        proc = await self.spawn(
            "writer", name,
            "--seed", self.seed_of(name),
            "--slot", str(slot),
            "--incarnation", str(inc),
            "--clients", str(c.clients),
            "--pace", str(c.pace),
            "--op-timeout", str(max(30.0, 600.0 * c.time_scale)),
        )  # fmt: skip
        proc.slot = slot
        self.writers[slot] = proc
        self.note("start", process=name)
        return proc

    async def wait_for_line(self, proc: Proc, kind: str, deadline: float) -> dict[str, Any]:
        """Wait until ``proc`` logged a line of ``kind``; raise if it died or took too long."""
        async with asyncio.timeout(deadline):
            while True:
                for line in proc.lines():
                    if line.get("type") == kind:
                        return line
                if proc.process.returncode is not None:
                    raise RuntimeError(
                        f"{proc.name} exited ({proc.process.returncode}) before '{kind}'; "
                        f"see {self.workdir / (proc.name + '.stderr')}"
                    )
                await asyncio.sleep(0.05)

    async def kill(self, proc: Proc) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.process.send_signal(signal.SIGKILL)
        await proc.process.wait()
        if proc.ended is None:
            proc.ended = time.monotonic()
        self.killed.add(proc.name)
        self.note("killed", process=proc.name)

    def later(self, discord_seconds: float, action: Callable[[], Any]) -> None:
        async def run() -> None:
            await asyncio.sleep(discord_seconds * self.scale)
            result = action()
            if inspect.isawaitable(result):
                await result

        task = asyncio.create_task(run())
        self.timers.add(task)
        task.add_done_callback(self.timers.discard)
