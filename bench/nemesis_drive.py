"""One nemesis run, phase by phase: from the local Discord's start to the checker's verdict.

Holds :func:`run_once`: start the local Discord and the processes, inject the schedule's
faults at their times (restarting a writer that ended itself), stop the faults and the
writers (the quiet period), load every table in a fresh process, collect every live
process's report, damage the tables while no process runs (``--damage``) and load them
again, then hand the histories to ``nemesis_check`` and return a ``RunResult``. Every
process started is gone on return.

It must not know how a fault is injected (``nemesis_faults``), how an entry is decoded or
damaged (``nemesis_entries``, ``nemesis_damage``), how an invariant is judged
(``nemesis_check``) or how the result is printed (``nemesis_report``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import nemesis_check as check_mod
from nemesis_damage import DAMAGE_KINDS, damage_offline
from nemesis_entries import (
    discover,
    dump_channels,
    multi_part_figures,
    note_race_tables,
    resolve_parts,
)
from nemesis_faults import KINDS, available, faults_off, schedule
from nemesis_report import RunResult
from nemesis_run import (
    AUDIT_PERIOD,
    GAP_CHECK_INTERVAL,
    GUILD,
    IDENTIFY_WINDOW,
    START_DEADLINE,
    STOP_DEADLINE,
    Config,
    Run,
)


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
    discover(run)
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
    await faults_off(run)
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
    note_race_tables(run)
    resolve_parts(run)
    figures = multi_part_figures(run)
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
    dump_channels(run)

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


async def _restart_ended(run: Run) -> None:
    for slot, proc in list(run.writers.items()):
        if proc.ended is None and proc.process.returncode is not None:
            proc.ended = time.monotonic()
            run.restarts += 1
            await run.start_writer(slot)
