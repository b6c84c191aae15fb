"""Several processes of one bot writing one channel: what sharing a bucket costs.

Each "process" is its own HTTPClient (its own limiter, no shared state), all with the same
token, all creating messages in one channel of the local emulator for a fixed time. The server
counts what it refused. Prints, per run: clients x concurrent writers each, requests sent,
messages created, 429s counted by the server, writes that failed, the rate achieved as a share
of what the channel's bucket allows, and how the clients split it.

Run: ``python bench/http_contention.py [--time-scale 0.1] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from discobase.http import HTTPClient, routes
from discobase.http.errors import HTTPException

RUNS = ((1, 8), (2, 1), (2, 8), (3, 2), (4, 4))


@dataclass
class Result:
    clients: int
    writers: int
    sent: int
    created: int
    refused: int
    failed: int
    per_client: list[int]
    seconds: float
    allowed: float  # creates per Discord second the bucket allows, as the client learned it


async def run(
    emu: Any, token: str, guild_id: str, clients: int, writers: int, seconds: float
) -> Result:
    scale = float(emu.time_scale)
    https = [HTTPClient(token, api_url=emu.url, time_scale=scale) for _ in range(clients)]
    for http in https:
        await http.open()
    try:
        channel = await https[0].create_guild_channel(guild_id, name=f"shared-{clients}-{writers}")
        channel_id = str(channel["id"])
        sent_before = [http.stats.requests_sent for http in https]
        refused_before = emu.stats()["ratelimited_by_scope"]["user"]
        created = [0] * clients
        failed = [0] * clients
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds * scale

        async def writer(index: int) -> None:
            while loop.time() < deadline:
                try:
                    await https[index].create_message(channel_id, content="x" * 64)
                except HTTPException:
                    failed[index] += 1
                    continue
                if loop.time() <= deadline:
                    created[index] += 1

        tasks = [asyncio.ensure_future(writer(i)) for i in range(clients) for _ in range(writers)]
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        view = https[0].ratelimiter.view(routes.CREATE_MESSAGE.compile(channel_id=channel_id))
        return Result(
            clients=clients,
            writers=writers,
            sent=sum(h.stats.requests_sent - b for h, b in zip(https, sent_before, strict=True)),
            created=sum(created),
            refused=emu.stats()["ratelimited_by_scope"]["user"] - refused_before,
            failed=sum(failed),
            per_client=created,
            seconds=seconds,
            allowed=view.limit / (view.window / scale) if view.window else 0.0,
        )
    finally:
        for http in https:
            await http.close()


async def bench(time_scale: float, seconds: float) -> list[Result]:
    from discobase.emulator import Emulator

    results = []
    async with Emulator(time_scale=time_scale) as emu:
        bot = emu.create_bot("contention")
        guild_id = str(emu.create_guild("contention", bots=[bot]))
        for clients, writers in RUNS:
            results.append(await run(emu, bot.token, guild_id, clients, writers, seconds))
    return results


def print_table(results: list[Result], time_scale: float, seconds: float, wall: float) -> None:
    print(
        f"http_contention: {seconds:g} Discord s per run, time_scale {time_scale:g}, {wall:.1f} s"
    )
    header = (
        f"{'clients x writers':<19}{'sent':>6}{'created':>9}{'429 srv':>9}{'failed':>8}"
        f"{'rate/s':>8}{'allowed':>9}  per client"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rate = r.created / r.seconds
        share = f"{rate / r.allowed:.0%}" if r.allowed else "?"
        print(
            f"{f'{r.clients} x {r.writers}':<19}{r.sent:>6}{r.created:>9}{r.refused:>9}"
            f"{r.failed:>8}{rate:>8.2f}{share:>9}  {r.per_client}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run every configuration and print the table; exit 1 if a write failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = asyncio.run(bench(args.time_scale, args.seconds))
    print_table(results, args.time_scale, args.seconds, time.perf_counter() - started)
    ok = all(r.failed == 0 for r in results)
    print("target (no write fails):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
