"""What the database costs: requests per write, open time, query speed, memory, import time.

Against the local Discord (time-scaled), prints one table of figures and the targets of
issue 6. Requests and 429s are counted by the emulator, not by the client.

- 10,000 concurrent ``save()`` of ~100-byte records: requests and 429s.
- ``save_many`` of 100,000 such records: requests.
- The event loop's longest stall during those 10,000 saves (the records are made before), that
  ``save_many`` and the open below (a database must not starve its gateway heartbeat).
- Opening the 100,000-record table from a second ``Database``: seconds until ready.
- ``find`` by an indexed field among 100,000 records (median), and an unindexed scan (the
  first two, the second of which builds the field's column, and the median of the next 15).
- Resident memory of a fresh process holding those 100,000 records.
- ``import discobase`` against ``import aiohttp, pydantic, orjson, yarl`` (medians of fresh
  processes, interleaved, after one warm-up each), and ``import discobase`` plus the first use
  of ``Table`` (which loads pydantic's model machinery) for comparison.

Run: ``python bench/storage_bench.py [--time-scale 0.01] [--records 100000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import discobase  # noqa: E402

GUILD = "bench"
HAVE_PROC = Path("/proc/self/status").exists()


@dataclass
class Row:
    name: str
    value: str
    target: str
    ok: bool | None


def make_user(db: discobase.Database, name: str = "User") -> Any:
    """Define a bench table on ``db``: ~100-byte records, one indexed field."""
    fields = {"name": Annotated[str, discobase.Index()], "email": str, "bio": str, "age": int}
    model = type(name, (discobase.Table,), {"__annotations__": fields, "__module__": __name__})
    return db.table(model)


def record(user: Any, i: int) -> Any:
    return user(
        name=f"user-{i:06d}",
        email=f"user{i}@example.com",
        bio=f"record number {i} of the storage bench, about a hundred bytes",
        age=i % 90,
    )


def requests_and_429s(emu: Any) -> tuple[int, int]:
    """Return the message creates so far (what writes cost) and the 429s.

    Reads are left out: each open table also reads its newest entries every gap-check
    interval, which at a compressed time scale lands several times inside one measurement
    but is not caused by the writes measured.
    """
    stats = emu.stats()
    statuses = stats.get("responses_by_status", {})
    creates = stats.get("requests_by_route", {}).get("POST /channels/{channel_id}/messages", 0)
    return int(creates), int(statuses.get(429, statuses.get("429", 0)))


class StallMonitor:
    """Note the event loop's longest stall: a task wakes every 5 ms and measures how late.

    The emulator runs in the same loop, so its work (taking a 100,000-record upload, serving
    a snapshot) counts too.
    """

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

    async def __aenter__(self) -> StallMonitor:
        # What exists now (above all the in-process emulator's stored messages, which a
        # client process would not hold) is put out of the collector's reach while measuring:
        # a full collection walking it would be charged to the call measured.
        gc.collect()
        gc.freeze()
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await asyncio.sleep(self.TICK * 2)  # a stall at the very end is seen too
        self._task.cancel()
        gc.unfreeze()


def stall_row(what: str, monitor: StallMonitor, target_ms: float | None = 100) -> Row:
    ms = monitor.longest * 1e3
    if target_ms is None:
        return Row(f"{what}: longest event-loop stall", f"{ms:.0f} ms", "-", None)
    target = f"<= {target_ms:g} ms"
    return Row(f"{what}: longest event-loop stall", f"{ms:.0f} ms", target, ms <= target_ms)


async def build_records(user: Any, start: int, count: int) -> list[Any]:
    """Make records, letting the loop run now and then: the bench's own work is not measured."""
    made = []
    for i in range(start, start + count):
        made.append(record(user, i))
        if i % 1000 == 0:
            await asyncio.sleep(0)
    return made


def median_seconds(call: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def bench_writes(emu: Any, token: str, scale: float, count: int, rows: list[Row]) -> None:
    db = discobase.Database(GUILD, api_url=emu.url, time_scale=scale)
    user = make_user(db)
    burst = make_user(db, "Burst")  # its own table, so that User holds exactly `count`
    async with db.conn(token):
        emu.reset()
        before, before_429 = requests_and_429s(emu)
        made = await build_records(burst, 0, 10_000)
        async with StallMonitor() as stalls:
            await asyncio.gather(*(one.save() for one in made))
        del made
        after, after_429 = requests_and_429s(emu)
        n, r429 = after - before, after_429 - before_429
        rows.append(Row("10,000 concurrent save(): requests", str(n), "<= 800", n <= 800))
        rows.append(Row("10,000 concurrent save(): 429s", str(r429), "0", r429 == 0))
        rows.append(stall_row("10,000 concurrent save()", stalls, None))

        # The same number of saves from 100 writers that each await every save: the
        # writer packs whatever is pending whenever the channel's bucket has room.
        emu.reset()

        async def writer(w: int) -> None:
            for j in range(100):
                await record(burst, 20_000 + w * 100 + j).save()

        await asyncio.gather(*(writer(w) for w in range(100)))
        n, r429 = requests_and_429s(emu)
        rows.append(Row("100 writers x 100 awaited save(): requests", str(n), "-", None))
        rows.append(Row("100 writers x 100 awaited save(): 429s", str(r429), "0", r429 == 0))

        emu.reset()
        before, before_429 = requests_and_429s(emu)
        made = await build_records(user, 10_000, count)
        async with StallMonitor() as stalls:
            await user.save_many(made)
        after, after_429 = requests_and_429s(emu)
        n = after - before
        rows.append(Row(f"save_many({count:,}): requests", str(n), "<= 20", n <= 20))
        rows.append(stall_row(f"save_many({count:,})", stalls))


async def bench_open_and_queries(
    emu: Any, token: str, scale: float, count: int, rows: list[Row]
) -> None:
    db = discobase.Database(GUILD, api_url=emu.url, time_scale=scale)
    user = make_user(db)
    start = time.perf_counter()
    stalls = StallMonitor()
    await stalls.__aenter__()
    async with db.conn(token):
        opened = time.perf_counter() - start
        await stalls.__aexit__()
        total = user.count()
        rows.append(
            Row(f"open a {total:,}-record table", f"{opened:.2f} s", "<= 2 s", opened <= 2.0)
        )
        rows.append(stall_row(f"open a {total:,}-record table", stalls))
        names = [f"user-{i:06d}" for i in range(10_000, 10_000 + count, max(1, count // 1000))]
        it = iter(names * 2)
        indexed = median_seconds(lambda: user.find(name=next(it)), len(names))
        rows.append(
            Row(
                "find(indexed field) median",
                f"{indexed * 1e6:.1f} us",
                "<= 20 us",
                indexed <= 20e-6,
            )
        )
        # The first scan of a field reads every record, the second builds the field's column
        # as well, the later ones scan the column.
        first = median_seconds(lambda: user.find(email="nobody@example.com"), 1)
        second = median_seconds(lambda: user.find(email="nobody@example.com"), 1)
        rows.append(
            Row(
                "find(unindexed field) first, second scan",
                f"{first * 1e3:.1f}, {second * 1e3:.1f} ms",
                "-",
                None,
            )
        )
        scan = median_seconds(lambda: user.find(email="nobody@example.com"), 15)
        rows.append(
            Row("find(unindexed field) scan", f"{scan * 1e3:.1f} ms", "<= 50 ms", scan <= 0.05)
        )


HOLDER = """
import asyncio, os, sys
sys.path.insert(0, {root!r})
import discobase
from bench.storage_bench import make_user

async def main():
    db = discobase.Database({guild!r}, api_url={url!r}, time_scale={scale!r})
    user = make_user(db)
    async with db.conn(os.environ["BENCH_TOKEN"]):
        count = user.count()
        rss = 0
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        print(count, rss)

asyncio.run(main())
"""


async def bench_memory(emu: Any, token: str, scale: float, rows: list[Row]) -> None:
    if not HAVE_PROC:
        rows.append(Row("resident memory, 100,000 records", "n/a (no /proc)", "<= 150 MB", None))
        return
    code = HOLDER.format(root=str(ROOT), guild=GUILD, url=emu.url, scale=scale)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "BENCH_TOKEN": token},
    )
    out, _ = await proc.communicate()
    count, rss = (int(x) for x in out.split())
    mb = rss / 2**20
    rows.append(Row(f"resident memory, {count:,} records", f"{mb:.0f} MB", "<= 150 MB", mb <= 150))


def import_seconds(statement: str) -> float:
    """Time ``statement`` in a fresh interpreter, from after startup to after the statement."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(out.stdout)


def bench_import(rows: list[Row], repeat: int = 15) -> None:
    statements = {
        "ours": "import discobase",
        "deps": "import aiohttp, pydantic, orjson, yarl",
        # What a program that defines a table pays: Table loads pydantic's model machinery.
        "table": "import discobase; discobase.Table",
    }
    for statement in statements.values():
        import_seconds(statement)  # a first run writes any stale bytecode caches
    samples: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(repeat):  # interleaved, so load on the machine hits every side alike
        for name, statement in statements.items():
            samples[name].append(import_seconds(statement))
    a, b, c = (statistics.median(samples[name]) for name in statements)
    rows.append(
        Row(
            "import discobase / import deps",
            f"{a * 1e3:.0f} / {b * 1e3:.0f} ms = {a / b:.0%}",
            "<= 60%",
            a / b <= 0.6,
        )
    )
    rows.append(
        Row(
            "import discobase + first use of Table / deps",
            f"{c * 1e3:.0f} / {b * 1e3:.0f} ms = {c / b:.0%}",
            "-",
            None,
        )
    )


def print_table(rows: list[Row]) -> None:
    width = max(len(r.name) for r in rows)
    vwidth = max(len(r.value) for r in rows)
    print(f"{'storage':<{width}}  {'measured':>{vwidth}}  {'target':<10}  ok")
    for r in rows:
        ok = "-" if r.ok is None else ("yes" if r.ok else "NO")
        print(f"{r.name:<{width}}  {r.value:>{vwidth}}  {r.target:<10}  {ok}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    from discobase.emulator import Emulator

    rows: list[Row] = []
    bench_import(rows)
    async with Emulator(time_scale=args.time_scale) as emu:
        bot = emu.create_bot("bench")
        emu.create_guild(GUILD, bots=[bot])
        await bench_writes(emu, bot.token, args.time_scale, args.records, rows)
        await bench_open_and_queries(emu, bot.token, args.time_scale, args.records, rows)
        await bench_memory(emu, bot.token, args.time_scale, rows)
    print_table(rows)


if __name__ == "__main__":
    asyncio.run(main())
