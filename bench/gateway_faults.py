"""A gateway fault storm while two databases write one table: what it costs, what survives.

Against the local Discord (time-scaled): two ``Database`` objects of one bot (two processes,
as far as Discord can tell: each has its own HTTP client, rate limiter and gateway session)
save records into the same table while the emulator injects ``--faults`` gateway faults, one
after the other, each on both connections: every kind once, then kinds drawn at random
(``--seed``). Everything is counted by the server: identifies,
resumes, refused resumes, closes, 429s. The expected identifies and resumes follow from the
faults (a new session only where Discord ended one). After each fault the bench waits until
both sessions are back and each database sees a record the other wrote since (the recovery
time); after the last one, until both hold every record written.

Each writer awaits every save and then waits ``--pace`` bucket windows (the channel allows 5
creates per 5 s window). Two processes of one bot share that bucket without seeing each
other's requests, so with ``--pace 0`` the server answers 429s whatever the faults (and a
save may fail after several in a row: it is counted, and the bench goes on);
the default pace keeps the two under the limit together, so a 429 would come from the faults.
The emulator shares the bench's event loop, so its heartbeat watchdog is given 5 intervals
instead of 2: a loaded machine must not make it close connections the storm did not break.

Run: ``python bench/gateway_faults.py [--faults 100] [--time-scale 0.02] [--pace 2] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import discobase  # noqa: E402

GUILD = "gateway faults"
DEADLINE = 120.0  # real seconds any one wait may take before the bench gives up


WATCHED: list[Any] = []  # the emulator, for a diagnosis when a wait gives up


async def eventually(check: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(DEADLINE):
            while not check():
                await asyncio.sleep(0.005)
    except TimeoutError:
        lines = [f"gave up after {DEADLINE:g} s waiting for {what}"]
        for emu in WATCHED:
            gw = emu.gateway.stats()
            lines.append(f"gateway counters: { {k: gw[k] for k in sorted(gw)} }")
            for r in emu.gateway.history()[-6:]:
                lines.append(
                    f"  connection {r.url} started={r.started} open={r.open} "
                    f"server_close={r.server_close_code} client_close={r.client_close_code} "
                    f"dropped={r.dropped} ops={r.ops[:10]}"
                )
        raise SystemExit("\n".join(lines)) from None


def entry_table(db: discobase.Database) -> Any:
    class Entry(discobase.Table):
        writer: str
        n: int

    return db.table(Entry)


def keys(model: Any) -> list[tuple[str, int]]:
    return sorted((e.writer, e.n) for e in model.find())


@dataclass
class Writer:
    """One database saving records one at a time; a save that fails is counted, not retried."""

    name: str
    model: Any
    pace: float
    saved: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    @property
    def written(self) -> int:
        return len(self.saved)

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            try:
                await self.model(writer=self.name, n=n).save()
            except discobase.DiscobaseError as exc:  # e.g. RateLimited: never stored
                self.errors.append(exc)
            else:
                self.saved.append(n)
            n += 1
            await asyncio.sleep(self.pace)

    def expected(self) -> list[tuple[str, int]]:
        return [(self.name, n) for n in self.saved]


@dataclass(frozen=True)
class Fault:
    """A fault, how to inject it, and what it costs each connection it hits."""

    name: str
    inject: Callable[[], Awaitable[Any]]
    resumes: int = 0
    identifies: int = 0
    resume_failures: int = 0
    heartbeats: int = 0


def faults(emu: Any, bot_id: str) -> list[Fault]:
    gw = emu.gateway

    def close(code: int | None) -> Callable[[], Awaitable[Any]]:
        return lambda: gw.drop(bot_id, close_code=code)

    async def zombie() -> int:
        hit = len(gw.connections(bot_id))
        gw.stop_acks(bot_id)  # the connections open now; new ones are answered again
        return hit

    async def refused_resume_url() -> int:
        gw.refuse_connects(2, url="resume")  # the client must fall back to the base URL
        return int(await gw.send_reconnect(bot_id))

    async def reconnect_before_hello() -> int:
        gw.reconnect_before_hello(2)  # op 7 before HELLO on the next two connections
        return int(await gw.drop(bot_id))

    async def slow_replay() -> int:
        gw.delay_dispatches(5.0)  # every dispatch (the replay too) held 5 Discord seconds
        try:
            return int(await gw.send_reconnect(bot_id))
        finally:
            asyncio.get_running_loop().call_later(10.0 * emu.time_scale, gw.delay_dispatches, 0)

    return [
        Fault("op 7 reconnect", lambda: gw.send_reconnect(bot_id), resumes=1),
        Fault("op 7, resume URL refused", refused_resume_url, resumes=1),
        Fault("op 7, replay delayed 5 s", slow_replay, resumes=1),
        Fault("drop, no close frame", close(None), resumes=1),
        Fault("drop, op 7 before HELLO", reconnect_before_hello, resumes=1),
        Fault("zombie (no ACKs)", zombie, resumes=1),
        Fault("op 9 resumable", lambda: gw.send_invalid_session(True, bot_id), resumes=1),
        Fault("op 9 not resumable", lambda: gw.send_invalid_session(False, bot_id), identifies=1),
        Fault("op 1 heartbeat request", lambda: gw.request_heartbeat(bot_id), heartbeats=1),
        *(Fault(f"close {c}", close(c), resumes=1) for c in (4000, 4001, 4002, 4003, 4005)),
        Fault("close 4007", close(4007), identifies=1),
        Fault("close 4009", close(4009), identifies=1),
        Fault("close 1000", close(1000), identifies=1, resume_failures=1),
        Fault("close 1001", close(1001), identifies=1, resume_failures=1),
    ]


COUNTED = ("identifies", "resumes", "resume_failures", "heartbeats")


def counts(emu: Any) -> dict[str, int]:
    gw = emu.gateway.stats()
    return {key: int(gw[key]) for key in COUNTED}


def open_sessions(emu: Any, bot_id: str) -> int:
    records = [r for r in emu.gateway.history(bot_id) if r.open]
    return len(records) if all(r.started for r in records) else -1


async def both_live(emu: Any, bot_id: str, a: Writer, b: Writer) -> None:
    await eventually(lambda: open_sessions(emu, bot_id) == 2, "two sessions on the gateway")
    marks = (a.written + 1, b.written + 1)
    await eventually(
        lambda: a.model.count(writer=b.name) > marks[1] and b.model.count(writer=a.name) > marks[0],
        "each database to see the other's new records",
    )


@dataclass
class Result:
    scale: float
    pace: float
    wall: float = 0.0
    injected: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)
    expected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    counted: dict[str, int] = field(default_factory=dict)
    recoveries: list[float] = field(default_factory=list)
    converge_after_last: float = 0.0
    gateway: dict[str, Any] = field(default_factory=dict)
    rest: dict[str, Any] = field(default_factory=dict)
    written: tuple[int, int] = (0, 0)
    held: tuple[int, int] = (0, 0)
    entries: int = 0
    errors: list[BaseException] = field(default_factory=list)


async def storm(count: int, scale: float, pace_windows: float, seed: int) -> Result:
    from discobase.emulator import Emulator

    rng = random.Random(seed)
    result = Result(scale=scale, pace=pace_windows)
    started = time.perf_counter()
    async with Emulator(time_scale=scale) as emu:
        # The emulator shares the bench's event loop: a loaded machine must not make it close
        # connections for "missed" heartbeats, reconnects the storm did not inject.
        emu.gateway.config.heartbeat_timeout_factor = 5.0
        emu.gateway.config.requested_heartbeat_timeout_factor = 5.0
        WATCHED.append(emu)
        bot = emu.create_bot("bench")
        emu.create_guild(GUILD, bots=[bot])
        dbs = [discobase.Database(GUILD, api_url=emu.url, time_scale=scale) for _ in range(2)]
        models = [entry_table(db) for db in dbs]
        for db in dbs:  # one after the other: the first creates the table
            db.login_task(bot.token)
            await db.wait_ready()
        pace = pace_windows * 5.0 * scale
        a, b = Writer("a", models[0], pace), Writer("b", models[1], pace)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in (a, b)]
        kinds = faults(emu, bot.id)
        try:
            await both_live(emu, bot.id, a, b)
            initial = counts(emu)
            for i in range(count):
                fault = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)
                before = counts(emu)
                t0 = time.perf_counter()
                hit = int(await fault.inject())
                want = {
                    "identifies": fault.identifies * hit,
                    "resumes": fault.resumes * hit,
                    "resume_failures": fault.resume_failures * hit,
                    "heartbeats": fault.heartbeats * hit,
                }
                for key, n in want.items():
                    result.expected[key] += n
                result.injected[fault.name] += 1
                result.hits[fault.name] += hit
                await eventually(
                    lambda b4=before, w=want: all(  # type: ignore[misc]
                        counts(emu)[k] >= b4[k] + n for k, n in w.items()
                    ),
                    f"recovery from {fault.name}",
                )
                await both_live(emu, bot.id, a, b)
                result.recoveries.append(time.perf_counter() - t0)
            last = time.perf_counter()
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        result.errors = a.errors + b.errors
        everything = sorted(a.expected() + b.expected())
        await eventually(
            lambda: keys(a.model) == everything and keys(b.model) == everything, "convergence"
        )
        result.converge_after_last = time.perf_counter() - last
        ended = counts(emu)
        # Heartbeats run on their own too: only the requested ones have an expected count.
        result.counted = {k: ended[k] - initial[k] for k in COUNTED}
        result.written = (a.written, b.written)
        result.held = (len(keys(a.model)), len(keys(b.model)))
        channel = next(c for c in emu.state.channels.values() if c.name == "entry")
        result.entries = sum(
            1 for m in channel.message_ids if '"t":"log"' in emu.state.messages[m].content
        )
        result.gateway = emu.gateway.stats()
        result.rest = emu.stats()
        for db in dbs:
            await db.close()
    result.wall = time.perf_counter() - started
    return result


def print_table(r: Result) -> None:
    n = sum(r.injected.values())
    print(
        f"gateway_faults: {n} faults, 2 databases of one bot, time_scale {r.scale:g}, "
        f"pace {r.pace:g} windows, {r.wall:.1f} s"
    )
    width = max(len(name) for name in r.injected) + 2
    header = f"{'fault':<{width}}{'injected':>9}{'sockets hit':>13}"
    print(header)
    print("-" * len(header))
    for name, times in r.injected.items():
        print(f"{name:<{width}}{times:>9}{r.hits[name]:>13}")
    gw, rest = r.gateway, r.rest
    statuses = rest["responses_by_status"]
    total = sum(r.written)

    def row(name: str, expected: object, counted: object) -> tuple[str, str, str, bool | None]:
        ok = None if expected is None else str(expected) == str(counted)
        return name, "-" if expected is None else str(expected), str(counted), ok

    rows = [
        row("identifies (sessions started)", r.expected["identifies"], r.counted["identifies"]),
        row("resumes", r.expected["resumes"], r.counted["resumes"]),
        row(
            "resumes refused (session ended)",
            r.expected["resume_failures"],
            r.counted["resume_failures"],
        ),
        row("identifies refused (2 processes at once)", None, gw["identify_rate_limited"]),
        row("closes 4008 (send limit)", 0, gw["close_codes"].get(4008, 0)),
        row("missed heartbeats", 0, gw["missed_heartbeats"]),
        row("429s (REST, server-counted)", 0 if r.pace else None, statuses.get(429, 0)),
        row("REST requests", None, rest["requests_total"]),
        row("gateway connections", None, gw["connections"]),
        row("saves that failed", 0, len(r.errors)),
        row("records written a / b", None, f"{r.written[0]} / {r.written[1]}"),
        row("records held a / b", f"{total} / {total}", f"{r.held[0]} / {r.held[1]}"),
        row("log entries in the channel (one per record)", total, r.entries),
    ]
    print()
    name_w = max(len(row[0]) for row in rows)
    print(f"{'server counters':<{name_w}}  {'expected':>9}  {'counted':>11}  ok")
    for name, want, got, ok in rows:
        mark = "-" if ok is None else ("yes" if ok else "NO")
        print(f"{name:<{name_w}}  {want:>9}  {got:>11}  {mark}")
    med, worst = statistics.median(r.recoveries), max(r.recoveries)
    print()
    print(f"recovery after a fault (median / max): {med:.2f} s / {worst:.2f} s")
    print(f"converged after the last fault:        {r.converge_after_last:.2f} s")
    if r.errors:
        kinds = Counter(f"{type(e).__name__}: {e}" for e in r.errors)
        print(f"saves that failed: {len(r.errors)}")
        for text, times in kinds.items():
            print(f"  {times} x {text}")


def main(argv: list[str] | None = None) -> int:
    """Run the storm, print the table; exit 1 if a counted figure misses its expectation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--pace", type=float, default=2.0, help="bucket windows between saves")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = asyncio.run(storm(args.faults, args.time_scale, args.pace, args.seed))
    print_table(result)
    gw = result.gateway
    ok = (
        not result.errors
        and result.counted["identifies"] == result.expected["identifies"]
        and result.counted["resumes"] == result.expected["resumes"]
        and result.counted["resume_failures"] == result.expected["resume_failures"]
        and gw["close_codes"].get(4008, 0) == 0
        and result.held[0] == result.held[1] == sum(result.written) == result.entries
        and (args.pace == 0 or result.rest["responses_by_status"].get(429, 0) == 0)
    )
    print("targets (counts as expected, 0 4008, converged, 0 429s when paced):", end=" ")
    print("met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
