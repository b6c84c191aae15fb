"""The fault kinds of a nemesis run, their injection, and the schedule drawn from the seed.

Holds :class:`Kind` and the table of kinds (:data:`KINDS`: what each needs of the local
Discord, and how it is injected, its parameters drawn from the random source the schedule
gives it), :func:`available` (the kinds this emulator offers, and the names of the others),
:func:`schedule` (the run's faults, drawn from its seed before the run starts: the order of
the draws is the replay of a seed, keep it) and :func:`faults_off` (every fault disarmed for
the quiet period). The deliberate damage kinds are ``nemesis_damage``'s; ``table_race``
deletes a raced table's catalog entry through it.

It must not know the order of a run's phases (``nemesis_drive``), how the bot's entries are
decoded or damaged (``nemesis_entries``, ``nemesis_damage``: it calls them), or how a run is
judged (``nemesis_check``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nemesis_damage import (
    DAMAGE_KINDS,
    delete_catalog_entry,
    delete_entries_bulk,
    delete_entry,
    rename_catalog,
    rename_to_discobase,
)
from nemesis_entries import note_race_tables
from nemesis_run import START_DEADLINE, Config, Proc, Run


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
        note_race_tables(run)
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


#: The share of a --damage run's faults that are deliberate damage.
DAMAGE_SHARE = 0.25


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


async def faults_off(run: Run) -> None:
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
