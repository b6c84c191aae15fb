"""A million records: open time, find, memory, event-loop stalls, import time (issue 14).

Every figure comes from a fresh client process, with the local Discord in a process of its
own (``python -m discobase emulator``-like, started by this script), so that neither one's
work is charged to the other, as when a bot talks to Discord. Each row is measured ``--runs``
times (3 by default) and printed as min / median / max against the issue's target.

- open: a fresh ``Database`` opening a table of N small records (5 fields, one indexed), from
  the start of ``db.conn()`` until it returns; the longest event-loop stall meanwhile (a task
  that wakes every 5 ms measures how late it is); the median of 1,000 ``find(name=...)`` of
  distinct values; the process's resident memory, above a process that opened an empty
  table, per record; and its peak resident memory (``VmHWM``).
- ``save_many`` of 100,000 records and a burst of 10,000 ``save()`` (the records made
  before): the longest stall, each into a new table of a fresh process (with ``--warm``,
  after one small write of the same kind: a model's first write builds its serialiser).
- open time per record from 10,000 to N records, above the open of an empty table (flat
  means opening scales linearly).
- import: a program that imports discobase and defines one table, against one that imports
  aiohttp, pydantic, orjson and yarl and defines the same pydantic model (fresh
  interpreters, interleaved; one ratio per pair).
- sustained message creates into 20 channels for 60 Discord seconds, as a share of what
  Discord allows (one per second per channel, 5 per 5 s), and the 429s the local Discord
  counted; on a local Discord of its own at ``--rate-time-scale`` (0.1: at 0.01 a client
  would have to make 2,000 requests a real second, which measures the machine).

Run: ``python bench/scale_bench.py [--records 100000 1000000] [--runs 3]``. Writing the
tables takes a while (a million records: about a minute); they are made once per run of the
script and opened ``--runs`` times. ``--client-root DIR`` runs the client processes on the
discobase found in ``DIR`` (another checkout: figures before and after a change). Given more
than once (``--client-root /tmp/before --client-root .``), every measure is taken of each
checkout in turn, run after run, so that load on the shared machine hits them alike, and their
rows are printed side by side, each named by its checkout's folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GUILD = "scale"
CREATE_ROUTE = "POST /channels/{channel_id}/messages"

# The local Discord, in its own process: prints its address and the bot's token, then serves
# until its standard input closes.
EMULATOR = """
import asyncio, json, sys
sys.path.insert(0, {root!r})
from discobase.emulator import Emulator

async def main():
    async with Emulator(time_scale={scale!r}) as emu:
        bot = emu.create_bot("scale")
        emu.create_guild({guild!r}, bots=[bot])
        print(json.dumps({{"url": emu.url, "token": bot.token}}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


# ---------------------------------------------------------------------------- the client side


def model(discobase: Any, db: Any, name: str) -> Any:
    """Define the bench's table on ``db``: five small fields, ``name`` indexed."""
    from typing import Annotated

    fields = {
        "name": Annotated[str, discobase.Index()],
        "email": str,
        "city": str,
        "age": int,
        "active": bool,
    }
    cls = type(name, (discobase.Table,), {"__annotations__": fields, "__module__": __name__})
    return db.table(cls)


def make(table: Any, i: int) -> Any:
    # The email is as random as real ones are: a million such records compress to about
    # 26 MB, more than one message holds (24 MiB), so their snapshot takes two.
    token = hashlib.blake2b(i.to_bytes(8, "little"), digest_size=10).hexdigest()
    return table(
        name=f"user-{i:07d}",
        email=f"{token}@example.com",
        city=("Paris", "Lima", "Oslo", "Kyiv", "Lagos")[i % 5],
        age=i % 90,
        active=i % 3 == 0,
    )


class Stalls:
    """The event loop's longest stall: a task wakes every 5 ms and measures how late."""

    TICK = 0.005

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.TICK)
            now = loop.time()
            self.longest = max(self.longest, now - last - self.TICK)
            last = now

    async def __aenter__(self) -> Stalls:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await asyncio.sleep(self.TICK * 2)  # a stall at the very end is seen too
        self._task.cancel()


def memory() -> tuple[int, int]:
    """Return this process's resident and peak resident memory, in bytes (0 without /proc)."""
    rss = peak = 0
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, peak


async def worker(role: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement in this (fresh) process and return its figures."""
    import discobase

    token = os.environ["SCALE_TOKEN"]
    db = discobase.Database(GUILD, api_url=args.url, time_scale=args.time_scale)
    table = model(discobase, db, args.table)
    out: dict[str, Any] = {}
    if role == "fill":
        # Written as save_many of 100,000 at most; then a snapshot is taken, a little after
        # the last write, so that an open reads the snapshot and a short tail, as it would
        # after a while of use.
        async with db.conn(token):
            step = 100_000
            for start in range(table.count(), args.count, step):
                batch = [make(table, i) for i in range(start, min(args.count, start + step))]
                await table.save_many(batch)
                del batch
            store = db._engine.tables[args.table.lower()]  # noqa: SLF001 - bench only
            while store._snapshot_task is not None:  # noqa: SLF001
                await asyncio.sleep(0.05)
            await asyncio.sleep(40 * args.time_scale)  # a gap check moves the read position
            store._tail_messages = 10**9  # noqa: SLF001 - force a snapshot now
            store._maybe_snapshot()  # noqa: SLF001
            while store._snapshot_task is not None:  # noqa: SLF001
                await asyncio.sleep(0.05)
            out["count"] = table.count()
            out["snapshots"] = store.snapshots_written
    elif role == "open":
        # What a process does once, whatever it opens, is done first when --warm is given:
        # the modules a login imports (aiohttp with its TLS certificates, the HTTP and
        # gateway clients, the storage engine) and the model's validator and schema. Without
        # it they land in the stall measured (about 60 ms; see the report of --warm 0).
        import aiohttp  # noqa: F401

        if args.warm:
            import importlib

            for name in ("discobase.http.client", "discobase.gateway.client"):
                with contextlib.suppress(ImportError):
                    importlib.import_module(name)
            with contextlib.suppress(ImportError):
                importlib.import_module("discobase.storage.engine")
            table.model_json_schema()
            table.model_validate(make(table, 0).model_dump())
        started = time.perf_counter()
        async with Stalls() as stalls:
            async with db.conn(token):
                opened = time.perf_counter() - started
                stall = stalls.longest
                out["open_s"] = opened
                out["count"] = table.count()
                await asyncio.sleep(0)
                rss, peak = memory()
                count = table.count()
                names = [f"user-{i:07d}" for i in range(0, count, max(1, count // 1000))]
                for name in names[:100]:
                    table.find(name=name)
                samples = []
                for name in names:
                    t0 = time.perf_counter()
                    found = table.find(name=name)
                    samples.append(time.perf_counter() - t0)
                    assert len(found) == 1
                out["find_us"] = statistics.median(samples) * 1e6 if samples else 0.0
                out["rss"] = rss
                out["peak"] = peak
                out["stall_ms"] = stall * 1e3
    elif role == "save_many":
        async with db.conn(token):
            if args.warm:  # the model's first write builds its serialiser: once a process
                await table.save_many([make(table, 10**9 + i) for i in range(100)])
            batch = [make(table, i) for i in range(args.count)]
            async with Stalls() as stalls:
                await table.save_many(batch)
            out["stall_ms"] = stalls.longest * 1e3
    elif role == "burst":
        async with db.conn(token):
            if args.warm:
                await make(table, 10**9).save()
            made = [make(table, i) for i in range(args.count)]
            async with Stalls() as stalls:
                await asyncio.gather(*(one.save() for one in made))
            out["stall_ms"] = stalls.longest * 1e3
    elif role == "rate":
        out.update(await sustained_rate(token, args))
    else:
        raise SystemExit(f"unknown role {role}")
    return out


async def sustained_rate(token: str, args: argparse.Namespace) -> dict[str, Any]:
    """Create messages into 20 channels for ``args.seconds`` Discord seconds, flat out."""
    from discobase.http import HTTPClient

    scale = args.time_scale
    async with HTTPClient(token, api_url=args.url, time_scale=scale) as http:
        guilds = await http.fetch_my_guilds()
        guild = next(g["id"] for g in guilds if g["name"] == GUILD)
        channels = [
            (await http.create_guild_channel(guild, name=f"rate-{i}"))["id"] for i in range(20)
        ]
        before = admin_stats(args.url)
        start = time.perf_counter()
        stop = start + args.seconds * scale
        done: list[int] = []

        async def pump(channel: str) -> None:
            count = 0
            while time.perf_counter() < stop:
                await http.create_message(channel, content="x")
                if time.perf_counter() < stop:
                    count += 1  # a create that waited past the end is not this window's
            done.append(count)

        await asyncio.gather(*(pump(c) for c in channels))
        after = admin_stats(args.url)
    created = sum(done)
    # Discord allows 5 creates per 5 s per channel (and 50 requests per second in all): from
    # a channel's first create, args.seconds / 5 windows of 5 each.
    allowed = min(20 * 1.0, 50.0) * args.seconds
    return {"share": created / allowed, "r429": count_429(after) - count_429(before)}


def admin_stats(url: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/_emulator/stats", headers={"Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    return stats


def creates(stats: dict[str, Any]) -> int:
    return int(stats.get("requests_by_route", {}).get(CREATE_ROUTE, 0))


def count_429(stats: dict[str, Any]) -> int:
    statuses = stats.get("responses_by_status", {})
    return int(statuses.get("429", statuses.get(429, 0)))


# ---------------------------------------------------------------------------- the orchestrator


@dataclass
class Row:
    name: str
    unit: str
    target: float | None
    samples: list[float] = field(default_factory=list)
    #: Lower is better (False: higher is better).
    lower: bool = True

    def cells(self) -> tuple[str, str, str, str, str]:
        if not self.samples:
            return "-", "-", "-", self._target(), "n/a"
        low, mid, high = min(self.samples), statistics.median(self.samples), max(self.samples)
        ok = "-" if self.target is None else ("yes" if self._ok(mid) else "NO")
        return self._fmt(low), self._fmt(mid), self._fmt(high), self._target(), ok

    def _ok(self, value: float) -> bool:
        assert self.target is not None
        return value <= self.target if self.lower else value >= self.target

    def _fmt(self, value: float) -> str:
        if self.unit == "x":
            return f"{value:.2f}x"
        if self.unit == "share":
            return f"{value:.3f}"
        if self.unit in ("us", "ms"):
            return f"{value:.1f} {self.unit}"
        if self.unit == "s":
            return f"{value:.2f} s"
        if self.unit == "MB":
            return f"{value:.0f} MB"
        if self.unit == "B":
            return f"{value:.0f} B"
        if self.unit == "us/rec":
            return f"{value:.2f} us"
        return f"{value:g}"

    def _target(self) -> str:
        if self.target is None:
            return "-"
        sign = "<=" if self.lower else ">="
        return f"{sign} {self._fmt(self.target)}"


def run_worker(role: str, env: dict[str, str], **options: Any) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", role]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"worker {role} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def import_seconds(code: str, env: dict[str, str] | None = None, cwd: str | Path = ROOT) -> float:
    timed = f"import time; t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", timed],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,  # `python -c` puts it first on sys.path: the client measured is the one there
        env=env,
    )
    return float(out.stdout)


OURS = """
import discobase
class User(discobase.Table):
    name: str
    email: str
    age: int
"""
DEPS = """
import aiohttp, pydantic, orjson, yarl
class User(pydantic.BaseModel):
    name: str
    email: str
    age: int
"""


def import_ratios(runs: int, env: dict[str, str], cwd: str | Path = ROOT) -> list[float]:
    # Bytecode caches are written first, for both sides, as an installer compiles a package:
    # with PYTHONDONTWRITEBYTECODE set, discobase would be compiled from source at every run
    # while the dependencies' caches (written by pip) are read.
    compiling = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    import_seconds(OURS, compiling, cwd), import_seconds(DEPS, compiling, cwd)
    ratios = []
    for _ in range(runs):  # interleaved, so load on the machine hits both sides alike
        ours, deps = import_seconds(OURS, env, cwd), import_seconds(DEPS, env, cwd)
        ratios.append(ours / deps)
    return ratios


def print_rows(rows: list[Row]) -> None:
    header = ("measure", "min", "median", "max", "target", "ok")
    table = [header, *[(r.name, *r.cells()) for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )


class Clients:
    """The checkouts the client processes run on (``--client-root``), each with its rows.

    With several, every measure is taken of each in turn, run after run, so that load on the
    machine hits them alike, and their rows are printed side by side.
    """

    def __init__(self, roots: list[str] | None) -> None:
        self.roots: list[str | None] = list(roots) if roots else [None]

    def label(self, root: str | None) -> str:
        if len(self.roots) == 1:
            return ""
        return f" [{Path(root).name if root else 'here'}]"

    def env(self, root: str | None, base: dict[str, str]) -> dict[str, str]:
        if root is None:
            return dict(base)
        return {**base, "PYTHONPATH": os.pathsep.join([root, base.get("PYTHONPATH", "")])}

    def rows(self, name: str, unit: str, target: float | None, *, lower: bool = True) -> list[Row]:
        """Return one row of a measure per client, in the order of ``roots``."""
        return [Row(name + self.label(root), unit, target, lower=lower) for root in self.roots]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--rate-time-scale", type=float, default=0.1)
    parser.add_argument(
        "--client-root",
        action="append",
        default=None,
        help="run the clients on the discobase in this checkout; give it more than once to "
        "measure several side by side (the first one writes the tables)",
    )
    parser.add_argument(
        "--warm",
        type=int,
        default=1,
        help="1: a process's one-time imports and model building precede an open's measure",
    )
    parser.add_argument("--growth", type=int, nargs="*", default=[10_000])
    parser.add_argument(
        "--only", nargs="*", default=None, help="rows: import open write rate growth"
    )
    # Worker options.
    parser.add_argument("--worker", default=None)
    parser.add_argument("--url", default="")
    parser.add_argument("--table", default="Scale")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(args.worker, args))))
        return
    only = set(args.only or ["import", "open", "write", "rate", "growth"])
    clients = Clients(args.client_root)
    roots = clients.roots
    rows: list[Row] = []
    if "import" in only:
        ratio = clients.rows(
            "import discobase + one Table / aiohttp+pydantic+orjson+yarl + model", "x", 0.45
        )
        for row, root in zip(ratio, roots, strict=True):
            env = clients.env(root, dict(os.environ))
            row.samples = import_ratios(max(args.runs, 9), env, root or ROOT)
        rows += ratio
    emulator, hello = start_emulator(args.time_scale)
    try:
        base_env = {**os.environ, "SCALE_TOKEN": hello["token"]}
        envs = [clients.env(root, base_env) for root in roots]
        common = {"url": hello["url"], "time_scale": args.time_scale, "warm": args.warm}
        if "open" in only or "growth" in only:
            empty = clients.rows("(baseline) resident memory, empty table", "MB", None)
            empty_open = clients.rows("(baseline) open an empty table", "s", None)
            run_worker("fill", envs[0], table="Empty", count=0, **common)
            for _ in range(args.runs):
                for at, env in enumerate(envs):
                    got = run_worker("open", env, table="Empty", **common)
                    empty[at].samples.append(got["rss"] / 2**20)
                    empty_open[at].samples.append(got["open_s"])
            bases = [statistics.median(row.samples) * 2**20 for row in empty]
            base_opens = [statistics.median(row.samples) for row in empty_open]
            rows += [*empty, *empty_open]
            sizes = sorted(set(args.records) | (set(args.growth) if "growth" in only else set()))
            per_record: dict[int, list[Row]] = {}
            for count in sizes:
                name = f"Scale{count}"
                filled = run_worker("fill", envs[0], table=name, count=count, **common)
                print(f"filled {name}: {filled}", file=sys.stderr)
                targets = {
                    100_000: {"open": 0.25},
                    1_000_000: {"open": 3.0},
                }.get(count, {})
                opened = clients.rows(
                    f"open a table of {count:,} records", "s", targets.get("open")
                )
                per = clients.rows(f"open time per record above empty, {count:,}", "us/rec", None)
                find = clients.rows(
                    f"find(indexed) median, among {count:,}",
                    "us",
                    5.0 if count >= 1_000_000 else None,
                )
                held = clients.rows(
                    f"memory per record held, {count:,} records",
                    "B",
                    350 if count == 100_000 else None,
                )
                peak = clients.rows(
                    f"peak memory opening {count:,}", "MB", 500 if count == 1_000_000 else None
                )
                stall = clients.rows(
                    f"longest stall opening {count:,}", "ms", 50 if count == 1_000_000 else None
                )
                for _ in range(args.runs):
                    for at, env in enumerate(envs):
                        got = run_worker("open", env, table=name, **common)
                        assert got["count"] == count, got
                        opened[at].samples.append(got["open_s"])
                        per[at].samples.append((got["open_s"] - base_opens[at]) / count * 1e6)
                        find[at].samples.append(got["find_us"])
                        held[at].samples.append((got["rss"] - bases[at]) / count)
                        peak[at].samples.append(got["peak"] / 2**20)
                        stall[at].samples.append(got["stall_ms"])
                per_record[count] = per
                if count in args.records:
                    rows += [*opened, *find, *held, *peak, *stall]
            if "growth" in only:
                rows += [row for c in sizes for row in per_record[c]]
        if "write" in only:
            many = clients.rows("longest stall, save_many of 100,000", "ms", 50)
            burst = clients.rows("longest stall, a burst of 10,000 save()", "ms", 100)
            for run in range(args.runs):
                for at, env in enumerate(envs):
                    table = f"Many{run}x{at}"
                    got = run_worker("save_many", env, table=table, count=100_000, **common)
                    many[at].samples.append(got["stall_ms"])
                    table = f"Burst{run}x{at}"
                    got = run_worker("burst", env, table=table, count=10_000, **common)
                    burst[at].samples.append(got["stall_ms"])
            rows += [*many, *burst]
    finally:
        stop_emulator(emulator)
    if "rate" in only:
        emulator, hello = start_emulator(args.rate_time_scale)
        try:
            base_env = {**os.environ, "SCALE_TOKEN": hello["token"]}
            envs = [clients.env(root, base_env) for root in roots]
            common = {"url": hello["url"], "time_scale": args.rate_time_scale}
            share = clients.rows(
                "sustained creates into 20 channels, share of allowed", "share", 0.99, lower=False
            )
            r429 = clients.rows("sustained creates into 20 channels, 429s", "", 0)
            for _ in range(args.runs):
                for at, env in enumerate(envs):
                    got = run_worker("rate", env, seconds=60, **common)
                    share[at].samples.append(got["share"])
                    r429[at].samples.append(got["r429"])
            rows += [*share, *r429]
        finally:
            stop_emulator(emulator)
    print_rows(rows)


def start_emulator(scale: float) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a local Discord in a process of its own; return it and its address and token."""
    emulator = subprocess.Popen(
        [sys.executable, "-c", EMULATOR.format(root=str(ROOT), scale=scale, guild=GUILD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert emulator.stdout is not None
    hello: dict[str, Any] = json.loads(emulator.stdout.readline())
    return emulator, hello


def stop_emulator(emulator: subprocess.Popen[str]) -> None:
    if emulator.stdin is not None:
        emulator.stdin.close()
    emulator.wait(timeout=60)


if __name__ == "__main__":
    main()
