"""Several processes of one bot writing one channel: what sharing a bucket costs.

Each "process" is its own HTTPClient (its own limiter, no shared state), all with the same
token, all creating messages in one channel of the local emulator for a fixed time. The server
counts what it refused. Prints, per run: clients x concurrent writers each, requests sent,
messages created, 429s counted by the server, writes that failed, the rate achieved as a share
of what the channel's bucket allows, and how the clients split it.

Then the global limit: 1, 2 and 3 clients each writing to 60 channels of their own, so only
Discord's 50 requests per second per bot is shared; prints global 429s and the combined rate.

Then the same through the public API: 2 and 3 ``Database`` objects (processes) on one guild,
each with 20 writers awaiting ``save()`` on one shared table, then checked for convergence.

Run: ``python bench/http_contention.py [--time-scale 0.1] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
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


@contextlib.asynccontextmanager
async def open_clients(emu: Any, token: str, count: int) -> AsyncIterator[list[HTTPClient]]:
    """Open ``count`` clients of one bot, each with its own limiter (one per "process")."""
    scale = float(emu.time_scale)
    https = [HTTPClient(token, api_url=emu.url, time_scale=scale) for _ in range(count)]
    try:
        for http in https:
            await http.open()
        yield https
    finally:
        for http in https:
            await http.close()


async def run(
    emu: Any, token: str, guild_id: str, clients: int, writers: int, seconds: float
) -> Result:
    scale = float(emu.time_scale)
    async with open_clients(emu, token, clients) as https:
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


@dataclass
class GlobalResult:
    clients: int
    created: int
    refused: int
    failed: int
    seconds: float


async def run_global(
    emu: Any, token: str, guild_id: str, clients: int, seconds: float
) -> GlobalResult:
    scale = float(emu.time_scale)
    async with open_clients(emu, token, clients) as https:
        channels = [
            [
                str((await http.create_guild_channel(guild_id, name=f"g{clients}-{i}-{n}"))["id"])
                for n in range(60)
            ]
            for i, http in enumerate(https)
        ]
        refused_before = emu.stats()["ratelimited_by_scope"]["global"]
        created = 0
        failed = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds * scale

        async def writer(http: HTTPClient, channel_id: str) -> None:
            nonlocal created, failed
            while loop.time() < deadline:
                try:
                    await http.create_message(channel_id, content="x" * 64)
                except HTTPException:
                    failed += 1
                    continue
                if loop.time() <= deadline:
                    created += 1

        tasks = [
            asyncio.ensure_future(writer(http, c))
            for http, mine in zip(https, channels, strict=True)
            for c in mine
        ]
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        refused = emu.stats()["ratelimited_by_scope"]["global"] - refused_before
        return GlobalResult(clients, created, refused, failed, seconds)


@dataclass
class DatabaseResult:
    processes: int
    saved: list[int]
    failed: int
    refused: int
    requests: int
    converged: bool


async def run_databases(emu: Any, token: str, processes: int, seconds: float) -> DatabaseResult:
    import discobase

    scale = float(emu.time_scale)
    name = f"contention {processes}"
    dbs = [discobase.Database(name, api_url=emu.url, time_scale=scale) for _ in range(processes)]
    tables = []
    for db in dbs:

        class Note(discobase.Table):
            writer: str
            n: int

        tables.append(db.table(Note))
    saved = [0] * processes
    failed = 0
    try:
        for db in dbs:
            db.login_task(token)
        for db in dbs:
            await db.wait_ready()
        stats = emu.stats()
        refused_before, requests_before = (
            stats["ratelimited_by_scope"]["user"],
            stats["requests_total"],
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds * scale

        async def writer(index: int, tag: int) -> None:
            nonlocal failed
            n = 0
            while loop.time() < deadline:
                try:
                    await tables[index](writer=f"{index}-{tag}", n=n).save()
                    saved[index] += 1
                except discobase.DiscobaseError:
                    failed += 1
                n += 1

        await asyncio.gather(*(writer(i, t) for i in range(processes) for t in range(20)))
        stats = emu.stats()
        total = sum(saved)
        converged = False
        for _ in range(200):  # up to 20 Discord seconds for the last events to arrive
            counts = [await table.count() for table in tables]
            if all(count == total for count in counts):
                converged = True
                break
            await asyncio.sleep(0.1 * scale)
        return DatabaseResult(
            processes=processes,
            saved=saved,
            failed=failed,
            refused=stats["ratelimited_by_scope"]["user"] - refused_before,
            requests=stats["requests_total"] - requests_before,
            converged=converged,
        )
    finally:
        for db in dbs:
            await db.close()


Results = tuple[list[Result], list[GlobalResult], list[DatabaseResult]]


async def bench(time_scale: float, seconds: float) -> Results:
    from discobase.emulator import Emulator

    results = []
    global_results = []
    db_results = []
    async with Emulator(time_scale=time_scale) as emu:
        bot = emu.create_bot("contention")
        guild_id = str(emu.create_guild("contention", bots=[bot]))
        for clients, writers in RUNS:
            results.append(await run(emu, bot.token, guild_id, clients, writers, seconds))
        for clients in (1, 2, 3):
            global_results.append(await run_global(emu, bot.token, guild_id, clients, seconds))
        for processes in (2, 3):
            emu.create_guild(f"contention {processes}", bots=[bot])
            db_results.append(await run_databases(emu, bot.token, processes, seconds))
    return results, global_results, db_results


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


def print_global(results: list[GlobalResult]) -> None:
    print("\nThe global limit shared: each client writes to 60 channels of its own")
    header = (
        f"{'clients':<9}{'created':>9}{'global 429':>12}{'failed':>8}{'rate/s':>8}{'of 50/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rate = r.created / r.seconds
        print(
            f"{r.clients:<9}{r.created:>9}{r.refused:>12}{r.failed:>8}{rate:>8.1f}{rate / 50:>9.0%}"
        )


def print_databases(results: list[DatabaseResult], seconds: float) -> None:
    print(f"\nDatabase objects, 20 awaited save() loops each, {seconds:g} Discord s")
    header = (
        f"{'processes':<11}{'saved':>7}{'failed':>8}{'requests':>10}{'429 srv':>9}"
        "  converged  per process"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.processes:<11}{sum(r.saved):>7}{r.failed:>8}{r.requests:>10}{r.refused:>9}"
            f"  {'yes' if r.converged else 'NO':<9}  {r.saved}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run every configuration and print the table; exit 1 if a write failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results, global_results, db_results = asyncio.run(bench(args.time_scale, args.seconds))
    print_table(results, args.time_scale, args.seconds, time.perf_counter() - started)
    print_global(global_results)
    print_databases(db_results, args.seconds)
    ok = all(r.failed == 0 for r in [*results, *global_results])
    ok = ok and all(r.failed == 0 and r.converged for r in db_results)
    print("target (no write fails, databases converge):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
