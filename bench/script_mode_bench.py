"""Back-to-back runs of a small script, with a gateway session and without (``live=False``).

Each run is a fresh Python process that connects, saves one record, counts the table and
exits, as a cron job or a command-line app does. The local Discord runs in real time
(``--time-scale 1``) in a process of its own, so its identify limit (one session start per 5
seconds per bot, 1,000 a day) applies as on Discord. Printed: each run's wall time, and the
session starts (IDENTIFYs) the runs spent.

Run: ``python bench/script_mode_bench.py [--runs 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUILD = "script bench"

EMULATOR = """
import asyncio, json, sys
sys.path.insert(0, {root!r})
from discobase.emulator import Emulator

async def main():
    async with Emulator(time_scale={scale}) as emu:
        bot = emu.create_bot("bench")
        emu.create_guild({guild!r}, bots=[bot])
        print(json.dumps({{"url": emu.url, "token": bot.token}}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

SCRIPT = """
import asyncio, os, sys
sys.path.insert(0, {root!r})
import discobase

db = discobase.Database({guild!r}, live={live})


@db.table
class Note(discobase.Table):
    text: str


async def main():
    async with db.conn(os.environ["DISCOBASE_TOKEN"]):
        await Note(text="from a script").save()
        print(Note.count())

asyncio.run(main())
"""


def identifies(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_emulator/stats") as answer:
        return int(json.load(answer)["gateway"]["identifies"])


def runs(url: str, env: dict[str, str], live: bool, count: int) -> tuple[list[float], int]:
    code = SCRIPT.format(root=str(ROOT), guild=GUILD, live=live)
    before = identifies(url)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times, identifies(url) - before


def main(args: argparse.Namespace) -> None:
    code = EMULATOR.format(root=str(ROOT), scale=args.time_scale, guild=GUILD)
    emu = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert emu.stdout is not None and emu.stdin is not None
    try:
        info = json.loads(emu.stdout.readline())
        env = {
            **os.environ,
            "DISCOBASE_API_URL": info["url"],
            "DISCOBASE_TOKEN": info["token"],
            "DISCOBASE_TIME_SCALE": str(args.time_scale),
        }
        print(f"{args.runs} back-to-back runs each, time scale {args.time_scale}\n")
        print(f"{'mode':<16} {'identifies':>10}  seconds per run")
        for live in (True, False):
            times, spent = runs(info["url"], env, live, args.runs)
            mode = "live=True" if live else "live=False"
            each = ", ".join(f"{t:.2f}" for t in times)
            print(f"{mode:<16} {spent:>10}  {each}  (median {statistics.median(times):.2f})")
    finally:
        emu.stdin.close()
        emu.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--time-scale", type=float, default=1.0)
    main(parser.parse_args())
