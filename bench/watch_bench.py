"""Change feeds: how long after a write's acknowledgement another process's watcher has it.

Two ``Database`` objects (two processes' worth of state, tables and gateway sessions) share
the local Discord, which runs in a process of its own. The writer saves one record at a
time; the reader iterates ``Item.watch()``. For each write the figure is the time from the
writer's ``save()`` returning (Discord acknowledged it) to the reader's watcher yielding the
change, in Discord seconds (real seconds divided by the time scale); negative when the
gateway event reached the reader before the acknowledgement reached the writer.

Rows:

- live: a healthy connection (the change comes with the gateway event);
- gap check: every MESSAGE_CREATE withheld (the change comes with the reader's next gap
  check, every ``--gap-check-interval`` Discord seconds);
- own write: how many of the writer's own changes its watcher held when ``save()`` returned.

Run: ``python bench/watch_bench.py [--writes 50] [--time-scale 0.1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import discobase  # noqa: E402

GUILD = "watch bench"

# The local Discord in its own process: prints its address and the bot's token, serves until
# its standard input closes; "withhold" on stdin withholds every MESSAGE_CREATE from then on.
EMULATOR = """
import asyncio, json, sys
sys.path.insert(0, {root!r})
from discobase.emulator import Emulator

async def main():
    async with Emulator(time_scale={scale}) as emu:
        bot = emu.create_bot("bench")
        emu.create_guild({guild!r}, bots=[bot])
        print(json.dumps({{"url": emu.url, "token": bot.token}}), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            if line.strip() == "withhold":
                emu.gateway.withhold_dispatches("MESSAGE_CREATE")
            elif line.strip() == "clear":
                emu.gateway.clear_dispatch_faults()
            print("ok", flush=True)

asyncio.run(main())
"""


def make_db(url: str, scale: float, interval: float) -> tuple[discobase.Database, Any]:
    db = discobase.Database(GUILD, api_url=url, time_scale=scale, gap_check_interval=interval)

    class Item(discobase.Table):
        n: int

    return db, db.table(Item)


async def measure(writer: Any, watched: Any, writes: int, scale: float, pace: float) -> list[float]:
    """Write ``writes`` records; return each one's delay to ``watched``, in Discord seconds."""
    delays: list[float] = []
    for n in range(writes):
        record = writer(n=n)
        saved = await record.save()
        acked = time.perf_counter()
        while True:
            change = await anext(watched)
            if change.id == saved.id:
                break
        delays.append((time.perf_counter() - acked) / scale)
        await asyncio.sleep(pace * scale)  # stay inside the channel's rate limit
    return delays


def row(name: str, delays: list[float]) -> str:
    ordered = sorted(delays)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"{name:<12} {len(delays):>6} {ordered[0]:>8.3f} {statistics.median(ordered):>8.3f} "
        f"{p95:>8.3f} {ordered[-1]:>8.3f}"
    )


async def main(args: argparse.Namespace, url: str, token: str, control: Any) -> None:
    scale = args.time_scale
    reader_db, reader = make_db(url, scale, args.gap_check_interval)
    writer_db, writer = make_db(url, scale, args.gap_check_interval)
    async with reader_db.conn(token), writer_db.conn(token):
        theirs, mine = reader.watch(), writer.watch()
        live = await measure(writer, theirs, args.writes, scale, args.pace)
        own = mine.pending  # the writer's own changes: held when each save() returned
        mine.close()
        control("withhold")
        gap = await measure(writer, theirs, args.gap_writes, scale, args.pace)
        control("clear")
    print(
        f"time scale {scale} (1 Discord second = {scale * 1000:g} ms), "
        f"gap_check_interval {args.gap_check_interval:g} Discord s\n"
    )
    print("Discord seconds from save() returning to the watcher yielding the change")
    print(f"{'path':<12} {'writes':>6} {'min':>8} {'median':>8} {'p95':>8} {'max':>8}")
    print(row("live", live))
    print(row("gap check", gap))
    print(f"own write    {own:>6} of {args.writes} held when save() returned")
    within = sum(1 for d in live if d <= 1.0)
    print(f"\nlive changes within 1 Discord second: {within} of {len(live)}")


def run(args: argparse.Namespace) -> None:
    code = EMULATOR.format(root=str(ROOT), scale=args.time_scale, guild=GUILD)
    emu = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert emu.stdout is not None and emu.stdin is not None
    stdin, stdout = emu.stdin, emu.stdout

    def control(command: str) -> None:
        stdin.write(command + "\n")
        stdin.flush()
        stdout.readline()

    try:
        info = json.loads(stdout.readline())
        asyncio.run(main(args, info["url"], info["token"], control))
    finally:
        stdin.close()
        emu.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--gap-writes", type=int, default=5)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--gap-check-interval", type=float, default=15.0)
    parser.add_argument(
        "--pace", type=float, default=1.0, help="Discord seconds between writes (rate limit)"
    )
    run(parser.parse_args())
