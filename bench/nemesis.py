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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import inspect
import json
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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


def _load_checker() -> ModuleType:
    # bench/ is not a package; load the pure checker next to this file by path.
    spec = importlib.util.spec_from_file_location(
        "nemesis_check", WORKER.with_name("nemesis_check.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("nemesis_check", module)
    spec.loader.exec_module(module)
    return module


check_mod = _load_checker()


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
    tables: tuple[str, ...] = ("owned", "shared")  # the tables it declares

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
        # to decode what the batch held once its parts are known (see _resolve_parts).
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
        return ("owned", "shared", *self.races)

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


# -- the fault kinds -----------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of fault: what it needs of the emulator, and how to inject it.

    ``needs`` are attribute paths from the emulator (``"gateway.withhold_dispatches"``); when
    one is missing the kind is unavailable and reported so. ``inject`` draws its parameters
    from the random source it is given, which the schedule derived from the seed.
    """

    name: str
    needs: tuple[str, ...]
    inject: Callable[[Run, random.Random], Awaitable[None]]


def _resolve(obj: Any, path: str) -> Any:
    """Return the attribute at ``path``; ``"fail_next(probability)"`` also needs that parameter."""
    path, _, param = path.partition("(")
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    if param and param.rstrip(")") not in inspect.signature(obj).parameters:
        return None
    return obj


MESSAGES = r"/channels/\d+/messages"


async def kill_writer(run: Run, rng: random.Random) -> None:
    slot = rng.randrange(run.config.writers)
    proc = run.writers[slot]
    if proc.alive:
        await run.kill(proc)
    run.restarts += 1
    await run.start_writer(slot)


#: Table races per run at most: each leaves two processes running to the end.
MAX_RACES = 2
#: The share of races in which one racer is SIGKILLed after a delay (real seconds, drawn
#: from RACE_KILL_AFTER): while it starts, opens the catalog or creates the table, or after.
RACE_KILL_SHARE = 0.4
RACE_KILL_AFTER = (1.8, 3.2)
#: Real seconds after their start at which both racers open the database: past a busy
#: machine's start-up of the process.
RACE_START = 2.0
#: The share of races in which the first channel create is answered 429, retry after
#: RACE_HOLD Discord seconds: longer than what staggers the two racers' opens (the identify
#: slot, 5 s; a busy machine's start-up), so that the other reads the catalog first.
#: Without it both rarely make a channel (the first is done before the second reads).
RACE_HOLD_SHARE = 0.75
RACE_HOLD = (30.0, 55.0)  # under the client's max_wait, 60 s
CHANNELS = r"/guilds/\d+/channels"
#: The share of races (with --damage) after which a member deletes the table's catalog
#: entry, a while after the racers open (Discord seconds, drawn from RACE_DELETE_AFTER).
RACE_DELETE_SHARE = 0.5
RACE_DELETE_AFTER = (2.0, 40.0)


async def table_race(run: Run, rng: random.Random) -> None:
    """Start two writer processes at once that declare a table nobody created yet: both
    read the catalog, may both make a channel and record it, and must settle on one. Each
    does a few operations on it and stays to the end, a live process of that table."""
    if len(run.races) >= MAX_RACES:
        run.race_kills["races not started (MAX_RACES reached)"] += 1
        return
    if time.monotonic() + RACE_START + 1.0 > run.faults_end:
        # The quiet period would clear the held create before the racers open.
        run.race_kills["races not started (too close to the quiet period)"] += 1
        return
    k = len(run.races)
    table = f"race{k}"
    run.races.append(table)
    c = run.config

    start_at = time.time() + RACE_START
    if rng.random() < RACE_HOLD_SHARE:
        hold = rng.uniform(*RACE_HOLD)
        run.emu.fail_next("POST", CHANNELS, 429, 1, retry_after=hold)
        run.race_kills["races with the first channel create held"] += 1

    async def racer(j: int) -> Proc:
        name = f"x{k}{'ab'[j]}"
        proc = await run.spawn(
            "writer", name,
            "--seed", run.seed_of(name),
            "--slot", str(100 + 2 * k + j),
            "--clients", "1",
            "--max-ops", str(rng.randint(3, 12)),
            "--pace", str(c.pace),
            "--op-timeout", str(max(30.0, 600.0 * c.time_scale)),
            "--tables", table,
            "--start-at", repr(start_at),
        )  # fmt: skip
        proc.tables = (table,)
        run.racers[name] = proc
        run.note("start", process=name, race=table)
        return proc

    procs = await asyncio.gather(racer(0), racer(1))
    kill = rng.random() < RACE_KILL_SHARE
    victim, after = rng.choice(procs), rng.uniform(*RACE_KILL_AFTER)
    delete = c.damage and rng.random() < RACE_DELETE_SHARE
    delete_after, delete_rng = rng.uniform(*RACE_DELETE_AFTER), random.Random(rng.randrange(2**32))
    channels = run.race_channels.setdefault(table, set())

    async def watch() -> None:
        # The channels made for the table (a lower bound: one made and deleted between two
        # looks is missed), to tell a race that happened from one that did not.
        state, guild = run.emu.state, run.emu.state.guilds[run.guild_id]
        until = time.monotonic() + START_DEADLINE
        while time.monotonic() < until:
            channels.update(
                c for c in guild.channel_ids if getattr(state.channels.get(c), "name", "") == table
            )
            await asyncio.sleep(0.01)

    async def kill_one() -> None:
        await asyncio.sleep(after)
        if victim.alive:
            ready = any(line.get("type") == "ready" for line in victim.lines())
            run.race_kills["racers killed " + ("after" if ready else "before") + " ready"] += 1
            await run.kill(victim)

    def delete_entry_of_table() -> None:
        _race_tables(run)
        if not delete_catalog_entry(run, delete_rng, {table}):
            run.race_kills["catalog entry deletions after a race that found none"] += 1

    # The watch outlives the faults (the quiet period cancels the timers); the kill does not.
    run.watchers.add(asyncio.create_task(watch()))
    if kill:
        task = asyncio.create_task(kill_one())
        run.timers.add(task)
        task.add_done_callback(run.timers.discard)
    if delete:
        # After the racers open (RACE_START real seconds), not after they start.
        run.later(RACE_START / run.scale + delete_after, delete_entry_of_table)


async def pause_reader(run: Run, rng: random.Random) -> None:
    proc = run.readers[rng.randrange(len(run.readers))]
    seconds = rng.uniform(5.0, 120.0)
    if proc.paused or not proc.alive:
        return
    proc.paused = True
    proc.process.send_signal(signal.SIGSTOP)
    run.note("pause", process=proc.name, seconds=seconds)

    def resume() -> None:
        if proc.paused:
            proc.paused = False
            with contextlib.suppress(ProcessLookupError):
                proc.process.send_signal(signal.SIGCONT)

    run.later(seconds, resume)


def rest_fault(method: str, statuses: tuple[int, ...], after: bool | None) -> Callable[..., Any]:
    async def inject(run: Run, rng: random.Random) -> None:
        after_write = rng.random() < 0.5 if after is None else after
        run.emu.fail_next(
            method, MESSAGES, rng.choice(statuses), rng.randint(1, 4), after_write=after_write
        )

    return inject


async def rest_refused(run: Run, rng: random.Random) -> None:
    # A 403 before the write (permission taken away for a moment). Alone it stores nothing;
    # after a 5xx that came after the write, it refuses a retry of a stored write.
    run.emu.fail_next("POST", MESSAGES, 403, rng.randint(1, 2))


async def rest_429(run: Run, rng: random.Random) -> None:
    scope = rng.choice(("user", "global", "shared"))
    run.emu.fail_next(
        "POST", MESSAGES, 429, rng.randint(1, 3), scope=scope, retry_after=rng.uniform(0.5, 5)
    )


async def gateway_drop(run: Run, rng: random.Random) -> None:
    await run.emu.gateway.drop(run.bot.id, close_code=rng.choice((None, 1000, 1001, 4000, 4009)))


async def gateway_reconnect(run: Run, rng: random.Random) -> None:
    await run.emu.gateway.send_reconnect(run.bot.id)


async def gateway_invalid_session(run: Run, rng: random.Random) -> None:
    await run.emu.gateway.send_invalid_session(rng.random() < 0.5, run.bot.id)


async def gateway_zombie(run: Run, rng: random.Random) -> None:
    run.emu.gateway.stop_acks(run.bot.id)
    run.later(rng.uniform(30.0, 120.0), run.emu.gateway.resume_acks)


async def gateway_refuse(run: Run, rng: random.Random) -> None:
    run.emu.gateway.refuse_connects(rng.randint(1, 3))
    await run.emu.gateway.drop(run.bot.id)


async def gateway_slow(run: Run, rng: random.Random) -> None:
    gw = run.emu.gateway
    gw.delay_dispatches(rng.uniform(1.0, 10.0))
    run.later(rng.uniform(5.0, 30.0), lambda: gw.delay_dispatches(0))


def dispatch_fault(method: str) -> Callable[..., Any]:
    async def inject(run: Run, rng: random.Random) -> None:
        gw = run.emu.gateway
        event = rng.choice((None, "MESSAGE_CREATE", ("MESSAGE_UPDATE", "MESSAGE_DELETE")))
        # A count always, so that the fault leaves force by itself (the emulator clears
        # dispatch faults only all at once); with a probability, spread over more traffic.
        how: dict[str, Any] = {"bot_id": run.bot.id, "count": rng.randint(1, 6)}
        if rng.random() < 0.5:
            how["probability"] = rng.uniform(0.05, 0.5)
        if method == "delay_dispatches":
            gw.delay_dispatches(rng.uniform(1.0, 20.0), event, **how)
        elif method == "reorder_dispatches":
            gw.reorder_dispatches(rng.randint(1, 4), event, **how)
        else:
            getattr(gw, method)(event, **how)

    return inject


async def guild_outage(run: Run, rng: random.Random) -> None:
    run.emu.gateway.guild_outage(run.guild_id, rng.uniform(5.0, 60.0))


async def unavailable_at_ready(run: Run, rng: random.Random) -> None:
    run.emu.gateway.unavailable_at_ready(run.guild_id, rng.randint(1, 3), rng.uniform(5.0, 30.0))
    await run.emu.gateway.drop(run.bot.id, close_code=4000)


async def rest_random_5xx(run: Run, rng: random.Random) -> None:
    emu = run.emu
    method = rng.choice(("POST", "*"))
    emu.fail_next(
        method,
        MESSAGES,
        rng.choice((500, 502, 503)),
        after_write=rng.random() < 0.5,
        probability=rng.uniform(0.05, 0.3),
    )
    run.later(rng.uniform(5.0, 30.0), emu.clear_faults)


async def rest_write_limit(run: Run, rng: random.Random) -> None:
    # Discord's undocumented channel write limit: a 429 with code 20028.
    run.emu.fail_next("POST", MESSAGES, 429, rng.randint(1, 3), code=20028, retry_after=2.0)


CDN_FAILURES = ("server_error", "rate_limited", "redirect", "slow", "truncated", "expired")


async def cdn_failure(run: Run, rng: random.Random) -> None:
    run.emu.fail_cdn(rng.choice(CDN_FAILURES), count=rng.randint(1, 4))


async def slow_link(run: Run, rng: random.Random) -> None:
    bandwidth = rng.choice((None, 20_000.0, 200_000.0))
    run.emu.set_link(bandwidth, rng.uniform(0.05, 2.0))
    run.later(rng.uniform(5.0, 30.0), run.emu.set_link)


# -- deliberate damage (--damage) ----------------------------------------------------------
#
# What a member of the server can do to the bot's channels (docs/guarantees.md, "Damage"):
# delete the bot's messages, one or several at once (MESSAGE_DELETE_BULK), and rename
# channels. The nemesis does it through the local Discord's state, as a member's client
# would through REST: the message or channel changes and the gateway tells every session.
# Each deleted log entry is recorded with the writes it held (decoded from its content), for
# the checker's invariant 5 (``nemesis_check.Deleted``).

CATALOG = "discobase"  # discobase's catalog channel name (discobase.storage.catalog)
RECENT = 30  # log entries are deleted among each table's newest this many


def _body(message: Any, bot_id: str) -> dict[str, Any] | None:
    """Return a discobase message's decoded content, or ``None`` for any other message."""
    if str(message.author_id) != str(bot_id) or not message.content.startswith('{"discobase"'):
        return None
    with contextlib.suppress(ValueError):
        body = json.loads(message.content)
        return body if isinstance(body, dict) else None
    return None


def _entries(run: Run, channel_id: str, kind: str = "log") -> list[tuple[Any, dict[str, Any]]]:
    """Return the bot's messages of ``kind`` in a channel, oldest first, with their content."""
    state = run.emu.state
    channel = state.channels.get(channel_id)
    if channel is None:
        return []
    out = []
    for message_id in channel.message_ids:
        message = state.messages.get(message_id)
        body = None if message is None else _body(message, run.bot.id)
        if body is not None and body.get("t") == kind:
            out.append((message, body))
    return out


def _files_of(run: Run, message: Any) -> list[bytes] | None:
    """Return a message's attachments' bytes in filename order (``None``: one is gone)."""
    blobs = run.emu.state.blobs
    files = sorted(message.attachments, key=lambda a: a.filename)
    if any(a.id not in blobs for a in files):
        return None
    return [blobs[a.id] for a in files]


def _note_batches(run: Run, channel_id: str) -> None:
    """Remember the files of every part of a multi-part entry now in the channel: a part
    deleted later is decoded from them (the local Discord forgets a deleted one's files)."""
    for message, body in _entries(run, channel_id):
        batch = body.get("batch")
        if batch is None:
            continue
        files = run.batch_files.setdefault(str(batch), {})
        part = int(body.get("part", 0))
        if part not in files:
            got = _files_of(run, message)
            if got is not None:
                files[part] = got


def _writes_of(
    run: Run, table: str, body: dict[str, Any], message: Any = None
) -> list[tuple[str, int | None]] | None:
    """Return a log entry's writes as ``[("table/key", value or None)]``.

    Inline operations, or those of its attachments (a repair entry's); for a part of a
    multi-part entry, those of the whole batch, decoded from every part's files seen
    (``_note_batches``): ``None`` while a part was never seen. A delete names only a record
    id: its key comes from the entries seen before.
    """
    ops = body.get("ops")
    if not isinstance(ops, list):
        from discobase.storage import codec

        batch = body.get("batch")
        if batch is not None:
            seen = run.batch_files.get(str(batch), {})
            parts = int(body.get("parts", 1))
            if any(part not in seen for part in range(parts)):
                return None
            data = b"".join(piece for part in range(parts) for piece in seen[part])
        elif message is None or not message.attachments:
            return None
        else:
            files = _files_of(run, message)
            if files is None:
                return None
            data = b"".join(files)
        try:
            ops = codec.decode_stream(data)
        except Exception:  # noqa: BLE001 (unreadable: not decoded)
            return None
    writes: list[tuple[str, int | None]] = []
    for op in ops:
        if op[0] == "p":
            key = f"{table}/{op[2]['key']}"
            run.id_keys[str(op[1])] = key
            writes.append((key, int(op[2]["value"])))
        elif str(op[1]) in run.id_keys:
            writes.append((run.id_keys[str(op[1])], None))
    return writes


def _learn_ids(run: Run) -> None:
    """Map record ids to keys from every entry now in the tables' channels."""
    for table, channel_id in run.tables.items():
        _note_batches(run, channel_id)
        for message, body in _entries(run, channel_id):
            _writes_of(run, table, body, message)


def _resolve_parts(run: Run) -> None:
    """Decode the deleted parts whose batch was not yet whole when they were deleted (its
    writer was still posting it): its later parts are in the channel now."""
    for channel_id in run.tables.values():
        _note_batches(run, channel_id)
    for record, table, body in run.unresolved:
        writes = _writes_of(run, table, body)
        if writes is not None:
            record.writes, record.inline = writes, True
    run.unresolved = [(r, t, b) for r, t, b in run.unresolved if not r.inline]


def _names_of(body: dict[str, Any]) -> set[str]:
    """Return the entries an entry names: its ``prev``, and a last part's ``prior``."""
    prior = body.get("prior")
    return {str(body.get("prev", "")), *(map(str, prior) if isinstance(prior, list) else ())}


def _delete_log_entries(run: Run, table: str, messages: list[Any], *, offline: bool) -> None:
    """Delete log entries of ``table`` (one: MESSAGE_DELETE; several: MESSAGE_DELETE_BULK)."""
    state = run.emu.state
    channel_id = run.tables[table]
    _learn_ids(run)
    entries = _entries(run, channel_id)
    newest = entries[-1][0].id if entries else None
    gone = {m.id for m in messages}
    records = []
    for message in messages:
        body = _body(message, run.bot.id) or {}
        writes = _writes_of(run, table, body, message)
        # Which entries left in the log name this one: as their writer's newest (``prev``),
        # or as an earlier part of their batch (a last part's ``prior``).
        named_by = [
            str(m.id) for m, b in entries if m.id not in gone and str(message.id) in _names_of(b)
        ]
        batch = body.get("batch")
        record = check_mod.Deleted(
            message=str(message.id),
            table=table,
            channel=channel_id,
            t=0.0,
            writes=writes or [],
            inline=writes is not None,
            offline=offline,
            named=bool(named_by),
            newest=message.id == newest,
            batch=None if batch is None else str(batch),
        )
        records.append(record)
        if writes is None and batch is not None:
            run.unresolved.append((record, table, body))
    if len(messages) == 1:
        state.delete_message(messages[0])
    else:
        state.bulk_delete(state.channels[channel_id], [m.id for m in messages])
    now = time.monotonic()
    for record in records:
        record.t = now
        run.deleted.append(record)
        run.damaged["log entries deleted" + (" offline" if offline else "")] += 1
        if record.batch is not None:
            run.damaged[
                "parts of multi-part entries deleted" + (" offline" if offline else "")
            ] += 1
        run.note(
            "damage",
            did="delete log entry",
            table=table,
            channel=channel_id,
            message=record.message,
            writes=record.writes,
            offline=offline,
            named=record.named,
            newest=record.newest,
            bulk=len(messages) > 1,
        )


def _race_tables(run: Run) -> None:
    """Add each raced table to ``run.tables`` once the catalog names its channel: the
    earliest of its entries whose channel still exists (the race's winner)."""
    state = run.emu.state
    for name in run.races:
        if name in run.tables:
            continue
        for _, body in _entries(run, run.catalog_id, "table"):
            channel = str(body.get("channel", ""))
            if str(body.get("name", "")).lower() == name and channel in state.channels:
                run.tables[name] = channel
                break


def delete_catalog_entry(
    run: Run, rng: random.Random, names: Collection[str], *, offline: bool = False
) -> bool:
    """Delete one catalog entry of a table in ``names``; return whether there was one.

    A live process that holds the table must write it again; with none running, the next
    process to open the table must find its channel by its entries, records and all.
    """
    entries = [(m, b) for m, b in _entries(run, run.catalog_id, "table") if b.get("name") in names]
    if not entries:
        return False
    message, body = rng.choice(entries)
    run.emu.state.delete_message(message)
    raced = " (a raced table)" if body.get("name") in run.races else ""
    run.damaged["catalog table entries deleted" + raced + (" offline" if offline else "")] += 1
    run.note("damage", did="delete catalog entry", table=body.get("name"),
             channel=run.catalog_id, message=str(message.id), offline=offline)  # fmt: skip
    return True


async def delete_entry(run: Run, rng: random.Random) -> None:
    state = run.emu.state
    _race_tables(run)
    roll = rng.random()
    # The catalog's entry of a table: a live process must write it again.
    if roll < 0.15 and delete_catalog_entry(run, rng, set(run.tables)):
        return
    table = rng.choice(sorted(run.tables))
    if roll < 0.3:
        snaps = _entries(run, run.tables[table], "snap")
        if snaps:
            message, body = rng.choice(snaps)
            state.delete_message(message)
            run.damaged["snapshots deleted"] += 1
            if int(body.get("parts", 1)) > 1:
                run.damaged["parts of multi-part snapshots deleted"] += 1
            run.note("damage", did="delete snapshot", table=table,
                     channel=run.tables[table], message=str(message.id))  # fmt: skip
            return
    entries = _entries(run, run.tables[table])[-RECENT:]
    if entries:
        _delete_log_entries(run, table, [rng.choice(entries)[0]], offline=False)


async def delete_entries_bulk(run: Run, rng: random.Random) -> None:
    _race_tables(run)
    table = rng.choice(sorted(run.tables))
    entries = _entries(run, run.tables[table])[-RECENT:]
    if len(entries) >= 2:
        chosen = rng.sample(entries, rng.randint(2, min(4, len(entries))))
        _delete_log_entries(run, table, sorted((m for m, _ in chosen), key=lambda m: m.id),
                            offline=False)  # fmt: skip


async def rename_catalog(run: Run, rng: random.Random) -> None:
    # Away from its name, or back to it: a process that opens meanwhile must find it by its
    # entries and report it.
    state = run.emu.state
    channel = state.channels[run.catalog_id]
    name = f"renamed-{rng.randrange(10**4)}" if channel.name == CATALOG else CATALOG
    state.update_channel(channel, {"name": name})
    run.renames.append((time.monotonic(), name))
    run.damaged["catalog renamed" if name != CATALOG else "catalog renamed back"] += 1
    run.note("damage", did="rename catalog", channel=run.catalog_id, name=name)


async def rename_to_discobase(run: Run, rng: random.Random) -> None:
    # Another channel (a table's, or #general) takes the catalog's name: it must be passed
    # over, since it holds no catalog entries.
    state = run.emu.state
    guild = state.guilds[run.guild_id]
    others = [
        state.channels[c]
        for c in guild.channel_ids
        if c != run.catalog_id and state.channels[c].type == 0 and state.channels[c].name != CATALOG
    ]
    if others:
        channel = rng.choice(others)
        state.update_channel(channel, {"name": CATALOG})
        run.damaged["other channel renamed to discobase"] += 1
        run.note("damage", did="rename to discobase", channel=channel.id)


async def damage_offline(run: Run, rng: random.Random) -> None:
    """Delete log entries while no process runs: one of each table, sometimes a newest one.

    The next process to open the table must report each by id, except one that no later
    entry names (the newest, for one): that leaves no trace (docs/guarantees.md, Limits).
    """
    _race_tables(run)
    for table in sorted(run.tables):
        entries = _entries(run, run.tables[table])
        older = entries[-RECENT:-1]
        if older:
            _delete_log_entries(run, table, [rng.choice(older)[0]], offline=True)
    if rng.random() < 0.5:
        table = rng.choice(sorted(run.tables))
        entries = _entries(run, run.tables[table])
        if entries:
            _delete_log_entries(run, table, [entries[-1][0]], offline=True)
    # The newest entry deleted last may have been the one that named an older deleted one:
    # each offline deletion is judged against the log the second fresh process reads.
    for table, channel_id in run.tables.items():
        prevs = {m for _, body in _entries(run, channel_id) for m in _names_of(body)}
        for record in run.deleted:
            if record.offline and record.table == table:
                record.named = record.message in prevs
    # A table's catalog entry, in half the runs (a raced table's when there is one): the
    # second fresh process must find the table's channel by its entries.
    if rng.random() < 0.5:
        raced = [t for t in run.races if t in run.tables]
        delete_catalog_entry(run, rng, raced or set(run.tables), offline=True)


#: The share of a --damage run's faults that are deliberate damage.
DAMAGE_SHARE = 0.25
#: The deliberate-damage kinds, drawn only with ``--damage`` (or named in ``--faults``).
DAMAGE_KINDS = frozenset({"delete_entry", "delete_entries_bulk", "rename_catalog",
                          "rename_to_discobase"})  # fmt: skip


KINDS: tuple[Kind, ...] = (
    Kind("kill_writer", (), kill_writer),
    Kind("pause_reader", (), pause_reader),
    Kind("table_race", ("fail_next(retry_after)",), table_race),
    Kind("http_5xx_before_write", ("fail_next",), rest_fault("POST", (500, 502, 503), False)),
    Kind("http_5xx_after_write", ("fail_next",), rest_fault("POST", (500, 502, 503, 504), True)),
    Kind("http_5xx_any_message_route", ("fail_next",), rest_fault("*", (500, 503), None)),
    Kind("http_429", ("fail_next",), rest_429),
    Kind("http_403_refused", ("fail_next",), rest_refused),
    Kind(
        "http_5xx_at_random",
        ("fail_next(probability)", "clear_faults"),
        rest_random_5xx,
    ),
    Kind("http_429_write_limit", ("fail_next(code)",), rest_write_limit),
    Kind("gateway_drop", ("gateway.drop",), gateway_drop),
    Kind("gateway_op7_reconnect", ("gateway.send_reconnect",), gateway_reconnect),
    Kind("gateway_op9_invalid_session", ("gateway.send_invalid_session",), gateway_invalid_session),
    Kind("gateway_zombie", ("gateway.stop_acks", "gateway.resume_acks"), gateway_zombie),
    Kind("gateway_refuse_connects", ("gateway.refuse_connects",), gateway_refuse),
    Kind("gateway_slow", ("gateway.delay_dispatches",), gateway_slow),
    Kind(
        "dispatch_withhold",
        ("gateway.withhold_dispatches", "gateway.clear_dispatch_faults"),
        dispatch_fault("withhold_dispatches"),
    ),
    Kind(
        "dispatch_duplicate",
        ("gateway.duplicate_dispatches", "gateway.clear_dispatch_faults"),
        dispatch_fault("duplicate_dispatches"),
    ),
    Kind(
        "dispatch_reorder",
        ("gateway.reorder_dispatches", "gateway.clear_dispatch_faults"),
        dispatch_fault("reorder_dispatches"),
    ),
    Kind(
        "dispatch_delay",
        ("gateway.delay_dispatches", "gateway.clear_dispatch_faults"),
        dispatch_fault("delay_dispatches"),
    ),
    Kind("guild_outage", ("gateway.guild_outage",), guild_outage),
    Kind("guild_unavailable_at_ready", ("gateway.unavailable_at_ready",), unavailable_at_ready),
    Kind("cdn_failure", ("fail_cdn", "clear_cdn_faults"), cdn_failure),
    Kind("slow_link", ("set_link",), slow_link),
    Kind("delete_entry", ("state.delete_message",), delete_entry),
    Kind("delete_entries_bulk", ("state.bulk_delete",), delete_entries_bulk),
    Kind("rename_catalog", ("state.update_channel",), rename_catalog),
    Kind("rename_to_discobase", ("state.update_channel",), rename_to_discobase),
)


def available(emu: Any) -> tuple[list[Kind], list[str]]:
    """Split :data:`KINDS` into those the emulator supports and the names of the others."""
    ok = [k for k in KINDS if all(_resolve(emu, need) is not None for need in k.needs)]
    return ok, [k.name for k in KINDS if k not in ok]


def schedule(config: Config, kinds: list[Kind]) -> list[tuple[float, Kind, int]]:
    """Draw the run's faults from its seed: ``[(Discord s from the start, kind, seed)]``."""
    rng = random.Random(f"{config.seed}/schedule")
    out: list[tuple[float, Kind, int]] = []
    at = 0.0
    end = config.minutes * 60.0
    harm = [k for k in kinds if k.name in DAMAGE_KINDS]
    faults = [k for k in kinds if k.name not in DAMAGE_KINDS]
    while kinds:
        at += rng.expovariate(1.0 / config.fault_gap)
        if at >= end:
            break
        if harm and faults:
            # With --damage, one fault in DAMAGE_SHARE is deliberate damage.
            pool = harm if rng.random() < DAMAGE_SHARE else faults
        else:
            pool = kinds
        out.append((at, rng.choice(pool), rng.randrange(2**32)))
    return out


# -- one run -------------------------------------------------------------------------------


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


async def run_once(config: Config) -> RunResult:
    """Run one seeded schedule and check it; every process started is gone on return."""
    from discobase.emulator import Emulator

    started = time.perf_counter()
    workdir = Path(config.keep) if config.keep else Path(tempfile.mkdtemp(prefix="nemesis-"))
    workdir = workdir / f"seed-{config.seed}" if config.keep else workdir
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    options: dict[str, Any] = {"time_scale": config.time_scale, "seed": config.seed}
    if config.chaos and "chaos" in inspect.signature(Emulator).parameters:
        options["chaos"] = True
    async with Emulator(**options) as emu:
        # The emulator shares this event loop: a busy moment here must not close connections
        # for "missed" heartbeats the nemesis did not inject.
        emu.gateway.config.heartbeat_timeout_factor = 5.0
        emu.gateway.config.requested_heartbeat_timeout_factor = 5.0
        bot = emu.create_bot("nemesis")
        guild_id = emu.create_guild(GUILD, bots=[bot])
        run = Run(config, emu, bot, guild_id, workdir)
        try:
            result = await _drive(run)
        finally:
            await _clean_up(run)
    result.wall = time.perf_counter() - started
    if result.ok and not config.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


async def _clean_up(run: Run) -> None:
    for task in [*run.timers, *run.watchers]:
        task.cancel()
    for proc in run.procs:
        if proc.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.process.send_signal(signal.SIGCONT)
                proc.process.send_signal(signal.SIGKILL)
    for proc in run.procs:
        await proc.process.wait()


async def _create_tables(run: Run) -> None:
    """Create both tables once, so that no two processes create one channel each."""
    proc = await run.spawn("load", "setup")
    await run.wait_for_line(proc, "load", START_DEADLINE)
    await proc.process.wait()


async def _drive(run: Run) -> RunResult:
    config = run.config
    emu = run.emu
    kinds, unavailable = available(emu)
    if config.only is not None:
        unknown = config.only - {k.name for k in KINDS}
        if unknown:
            raise SystemExit(f"unknown fault kinds: {sorted(unknown)}")
        kinds = [k for k in kinds if k.name in config.only]
    if not config.damage:
        kinds = [k for k in kinds if k.name not in DAMAGE_KINDS]
    plan = schedule(config, kinds)
    await _create_tables(run)
    _discover(run)
    for j in range(config.readers):
        run.readers.append(await run.spawn("reader", f"r{j}"))
    for slot in range(config.writers):
        await run.start_writer(slot)
    for proc in list(run.procs):
        if proc.mode != "load":
            await run.wait_for_line(proc, "ready", START_DEADLINE)

    # The nemesis: the faults at their times; a writer that ended itself is restarted.
    t0 = time.monotonic()
    end = t0 + config.minutes * 60.0 * run.scale
    run.faults_end = end
    for at, kind, seed in [*plan, (config.minutes * 60.0, None, 0)]:
        while time.monotonic() < t0 + at * run.scale:
            await _restart_ended(run)
            await asyncio.sleep(min(0.05, max(0.0, t0 + at * run.scale - time.monotonic())))
        if kind is None:
            break
        try:
            await kind.inject(run, random.Random(seed))
        except Exception as exc:  # noqa: BLE001 (an emulator API that changed shape)
            run.broken[kind.name] = f"{type(exc).__name__}: {exc}"
        else:
            run.injected[kind.name] += 1
            run.note("fault", kind=kind.name, at=at, seed=seed)
    del end

    # The quiet period: faults off, readers resumed, writers stopped after their operation.
    await _faults_off(run)
    writers = [p for p in (*run.writers.values(), *run.racers.values()) if p.alive]
    for proc in writers:
        # A writer still logging in has no SIGUSR2 handler yet: the signal would kill it.
        with contextlib.suppress(TimeoutError, RuntimeError):
            await run.wait_for_line(proc, "ready", START_DEADLINE)
    writers = [p for p in writers if p.alive]
    for proc in writers:
        proc.process.send_signal(signal.SIGUSR2)
    for proc in writers:
        try:
            await run.wait_for_line(proc, "stopped", STOP_DEADLINE)
        except (TimeoutError, RuntimeError):
            await run.kill(proc)
    for proc in run.procs:
        if proc.mode == "writer" and proc.ended is None and proc.process.returncode is not None:
            proc.ended = time.monotonic()
    quiet_at = time.monotonic()
    run.note("quiet")
    await asyncio.sleep(config.settle * run.scale)
    tables = ("--tables", ",".join(run.all_tables))
    loader = await run.spawn("load", "fresh", *tables)
    load = await run.wait_for_line(loader, "load", START_DEADLINE)
    await loader.process.wait()
    _race_tables(run)
    _resolve_parts(run)
    figures = _multi_part_figures(run)
    # The racers still running are live processes of the bot too: one identify slot each.
    racers = sum(1 for p in run.racers.values() if p.alive)
    deadline = config.deadline + IDENTIFY_WINDOW * racers
    due = quiet_at + (config.settle + deadline) * run.scale
    await asyncio.sleep(max(0.0, due - time.monotonic()))
    live = [p for p in run.procs if p.alive and p.mode in ("reader", "writer")]
    for proc in live:
        proc.process.send_signal(signal.SIGUSR1)
    reports: dict[str, dict[str, int]] = {}
    damage_lines: dict[str, list[str]] = {"fresh": list(load.get("damage", []))}
    for proc in live:
        try:
            report = await run.wait_for_line(proc, "report", STOP_DEADLINE)
        except (TimeoutError, RuntimeError) as exc:
            reports[proc.name] = {"<no report>": -1}
            run.broken[f"report of {proc.name}"] = str(exc)
        else:
            reports[proc.name] = report["state"]
            damage_lines[proc.name] = list(report.get("damage", []))
    for proc in live:
        proc.process.send_signal(signal.SIGTERM)
    for proc in live:
        try:
            async with asyncio.timeout(10.0):
                await proc.process.wait()
        except TimeoutError:
            await run.kill(proc)
    after: dict[str, Any] | None = None
    if config.damage:
        # Damage while no process runs: the next process to open the table must name it.
        run.note("offline damage")
        await damage_offline(run, random.Random(run.seed_of("offline damage")))
        loader2 = await run.spawn("load", "fresh2", *tables)
        after = await run.wait_for_line(loader2, "load", START_DEADLINE)
        await loader2.process.wait()
        damage_lines["fresh2"] = list(after.get("damage", []))
    _dump_channels(run)

    # The check.
    history: list[dict[str, Any]] = []
    observations: dict[str, list[Any]] = {}
    doubled: list[str] = []
    for proc in run.procs:
        lines = proc.lines()
        if proc.mode == "writer":
            history += lines
        if proc.mode == "reader":
            observations[proc.name] = [
                check_mod.Observation(line["t"], line["changes"])
                for line in lines
                if line["type"] == "sample"
            ]
        doubled += [f"{proc.name} held {x['key']} twice" for x in lines if x["type"] == "double"]
    ends = {p.name: p.ended for p in run.procs if p.ended is not None}
    ops = check_mod.build_ops(history, ends, config.grace)
    damage = None
    if config.damage:
        opened: dict[str, tuple[float, float]] = {}
        for proc in run.procs:
            times = {
                x["type"]: x["t"] for x in proc.lines() if x["type"] in ("start", "ready", "load")
            }
            if "start" in times and ("ready" in times or "load" in times):
                opened[proc.name] = (times["start"], times.get("ready", times.get("load", 0.0)))
        damage = check_mod.Damage(
            deleted=run.deleted,
            lines=damage_lines,
            after=None if after is None else after["records"],
            catalog=run.catalog_id,
            renames=run.renames,
            opened=opened,
            killed={
                p.name: p.ended for p in run.procs if p.name in run.killed and p.ended is not None
            },
            repair_window=(AUDIT_PERIOD + GAP_CHECK_INTERVAL) * run.scale,
        )
    verdict = check_mod.check(
        ops,
        load["records"],
        observations,
        reports,
        quiet_at=quiet_at,
        bound=(config.settle + deadline) * run.scale,
        damage=damage,
        scope={p.name: p.tables for p in live},
    )
    for line in doubled:
        verdict.flag("doubled", line)
    return RunResult(
        config=config,
        verdict=verdict,
        injected=run.injected,
        unavailable=unavailable,
        broken=run.broken,
        restarts=run.restarts,
        server=emu.stats(),
        killed_mid_op=len(
            {op.process for op in ops.values() if op.complete is None and op.process in run.killed}
        ),
        wall=0.0,
        loaded=len(load["records"]),
        workdir=run.workdir,
        doubled_in_readers=doubled,
        damaged=run.damaged,
        deadline=deadline,
        figures=figures,
    )


def _dump_channels(run: Run) -> None:
    """Write every entry left in the tables' channels (headers, no operations) to
    ``channels.jsonl``, to see what a failed run left behind."""
    with (run.workdir / "channels.jsonl").open("w") as f:
        for table, channel_id in [("catalog", run.catalog_id), *run.tables.items()]:
            for kind in ("log", "snap", "table", "loss"):
                for message, body in _entries(run, channel_id, kind):
                    head = {k: v for k, v in body.items() if k != "ops"}
                    ops = body.get("ops")
                    f.write(json.dumps({"table": table, "id": str(message.id), **head,
                                        "inline": len(ops) if isinstance(ops, list) else None})
                            + "\n")  # fmt: skip


def _multi_part_figures(run: Run) -> list[str]:
    """Return what the run wrote in several parts and what its table races did."""
    out = []
    batches: dict[str, set[str]] = {"log": set(), "snap": set()}
    parts: Counter[str] = Counter()
    for channel_id in run.tables.values():
        for kind in batches:
            for _, body in _entries(run, channel_id, kind):
                if int(body.get("parts", 1)) > 1:
                    batches[kind].add(str(body.get("batch", body.get("prior", ""))))
                    parts[kind] += 1
    out.append(
        f"  multi-part ({'small' if run.config.small else 'default'} message limits): "
        f"log batches {len(batches['log'])} ({parts['log']} parts), snapshots "
        f"{len(batches['snap'])} ({parts['snap']} parts) in the channels at the end"
    )
    if run.races or run.race_kills:
        raced = sum(1 for t in run.races if len(run.race_channels.get(t, ())) > 1)
        kills = ", ".join(f"{k} {n}" for k, n in sorted(run.race_kills.items())) or "none"
        out.append(
            f"  table races: {len(run.races)} ({', '.join(run.races)}); with two channels "
            f"made (seen) {raced}; {kills}"
        )
    return out


def _discover(run: Run) -> None:
    """Find the catalog channel and each table's channel (from the catalog's table entries)."""
    state = run.emu.state
    guild = state.guilds[run.guild_id]
    for channel_id in guild.channel_ids:
        if state.channels[channel_id].name == CATALOG:
            run.catalog_id = channel_id
    for _, body in _entries(run, run.catalog_id, "table"):
        name = str(body.get("name", "")).lower()
        if name in ("owned", "shared") and name not in run.tables:
            run.tables[name] = str(body["channel"])


async def _restart_ended(run: Run) -> None:
    for slot, proc in list(run.writers.items()):
        if proc.ended is None and proc.process.returncode is not None:
            proc.ended = time.monotonic()
            run.restarts += 1
            await run.start_writer(slot)


async def _faults_off(run: Run) -> None:
    emu, gw = run.emu, run.emu.gateway
    for task in list(run.timers):
        task.cancel()
    for proc in run.readers:
        if proc.paused:
            proc.paused = False
            with contextlib.suppress(ProcessLookupError):
                proc.process.send_signal(signal.SIGCONT)
    # Faults still armed would hit the quiet period. Without clear_faults(), the emulator's
    # only public way to disarm fail_next() was reset(), which ends the gateway sessions too.
    if hasattr(emu, "clear_faults"):
        emu.clear_faults()
    elif isinstance(getattr(emu.rest, "faults", None), list):
        emu.rest.faults.clear()
    if hasattr(emu, "clear_cdn_faults"):
        emu.clear_cdn_faults()
    if hasattr(emu, "set_link"):
        emu.set_link()
    gw.resume_acks()
    gw.delay_dispatches(0)
    if hasattr(gw, "clear_dispatch_faults"):
        gw.clear_dispatch_faults()
    if hasattr(gw, "guild_restore"):
        gw.guild_restore(run.guild_id)


# -- the command line ----------------------------------------------------------------------


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
