"""How close the REST client gets to Discord's limits without a single 429.

Against the local emulator (time-scaled), sustained message creates for 60 Discord seconds
into one channel, then into 20 channels; prints requests sent, the 429s the server counted,
and the achieved rate as a fraction of what the buckets and the global limit allow.

Run: ``python bench/http_ceiling.py [--time-scale 0.1] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from discobase.http import HTTPClient, routes

DISCORD_GLOBAL_LIMIT = 50.0  # per second; the client keeps itself under 47


@dataclass
class Result:
    name: str
    channels: int
    sent: int
    created: int
    server_429: int
    client_429: int
    achieved: float  # creates per Discord second
    allowed: float  # per Discord second


def count_429(stats: dict[Any, Any]) -> int:
    """Find the emulator's count of 429 responses in its stats (``{429: n}`` or ``*_429``)."""
    total = 0
    for key, value in stats.items():
        name = str(key)
        if isinstance(value, dict):
            if name != "gateway":
                total += count_429(value)
        elif isinstance(value, int) and ("429" in name or "rate_limited" in name.lower()):
            total += value
    return total


async def run(emu: Any, token: str, guild_id: str, channels: int, seconds: float) -> Result:
    scale = emu_time_scale(emu)
    async with HTTPClient(token, api_url=emu.url, time_scale=scale) as http:
        ids = [
            (await http.create_guild_channel(guild_id, name=f"bench-{channels}-{n}"))["id"]
            for n in range(channels)
        ]
        before_429 = count_429(emu.stats())
        before_sent = http.stats.requests_sent
        created = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + seconds * scale

        async def writer(channel_id: str) -> None:
            nonlocal created
            while True:
                await http.create_message(channel_id, content="x" * 64)
                if loop.time() <= deadline:
                    created += 1

        # More writers than a window allows keep every bucket's queue full; at the deadline
        # they are cancelled, and only creates answered by then count.
        tasks = [asyncio.ensure_future(writer(c)) for c in ids for _ in range(8)]
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = seconds
        allowed = 0.0
        for channel_id in ids:
            view = http.ratelimiter.view(routes.CREATE_MESSAGE.compile(channel_id=channel_id))
            if view.known and view.window > 0:
                allowed += view.limit / (view.window / scale)
        allowed = min(allowed, DISCORD_GLOBAL_LIMIT)
        return Result(
            name=f"{channels} channel{'s' if channels > 1 else ''}",
            channels=channels,
            sent=http.stats.requests_sent - before_sent,
            created=created,
            server_429=count_429(emu.stats()) - before_429,
            client_429=http.stats.ratelimited,
            achieved=created / elapsed,
            allowed=allowed,
        )


def emu_time_scale(emu: Any) -> float:
    return float(getattr(emu, "time_scale", ARGS.time_scale))


async def bench(time_scale: float, seconds: float) -> list[Result]:
    from discobase.emulator import Emulator

    results = []
    async with Emulator(time_scale=time_scale) as emu:
        bot = emu.create_bot("bench")
        guild_id = emu.create_guild("bench", bots=[bot])
        for channels in (1, 20):
            results.append(await run(emu, bot.token, guild_id, channels, seconds))
    return results


def print_table(results: list[Result], time_scale: float, seconds: float, wall: float) -> None:
    print(f"http_ceiling: {seconds:g} Discord s per run, time_scale {time_scale:g}, {wall:.1f} s")
    header = (
        f"{'run':<12}{'sent':>7}{'created':>9}{'429 srv':>9}{'429 cli':>9}"
        f"{'rate/s':>9}{'allowed/s':>11}{'fraction':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        fraction = r.achieved / r.allowed if r.allowed else 0.0
        print(
            f"{r.name:<12}{r.sent:>7}{r.created:>9}{r.server_429:>9}{r.client_429:>9}"
            f"{r.achieved:>9.2f}{r.allowed:>11.2f}{fraction:>9.1%}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run both runs and print the table; exit 1 if a target (0 429s, >=95%) was missed."""
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=60.0)
    ARGS = parser.parse_args(argv)
    started = time.perf_counter()
    results = asyncio.run(bench(ARGS.time_scale, ARGS.seconds))
    print_table(results, ARGS.time_scale, ARGS.seconds, time.perf_counter() - started)
    ok = all(
        r.server_429 == 0 and r.client_429 == 0 and r.allowed and r.achieved / r.allowed >= 0.95
        for r in results
    )
    print("targets (0 429s, >= 95% of allowed):", "met" if ok else "MISSED")
    return 0 if ok else 1


ARGS = argparse.Namespace(time_scale=0.1, seconds=60.0)

if __name__ == "__main__":
    sys.exit(main())
