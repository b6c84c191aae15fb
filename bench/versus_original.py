"""The same workload with the original discobase (1.0.0, from PyPI) and with this one.

Both run against one local Discord, one after the other, each with its own bot and guild; the
emulator counts every request and every 429 (the figures are the server's, not the clients').
The original is installed into its own virtual environment under a cache directory (its
package is also called ``discobase``) and runs in a subprocess with that interpreter; this
repository's library runs in a subprocess with the current one. The workload is one source
text for both: connect and create a two-field table, save N records one by one, find by a
field, find everything, update and delete some records, close.

Discord no longer lets bots create guilds (``POST /guilds`` was removed on 2025-07-28), and the
original creates its guild when it finds none, so the guild is seeded for both, with the bot
invited as ADMINISTRATOR (what the original had as the guild's owner). The original's login
also creates an invite and syncs its slash commands after it reports ready; its "connect" row
waits until the server has seen the sync, so those requests are not billed to the saves.

Run: ``python bench/versus_original.py [--records N] [--changes K] [--time-scale X]``.
If the original cannot be installed (offline, no pip), it prints why and exits 0 (skipped).
The worker mode (``--worker``) is what the two subprocesses run; it imports only the standard
library at the top, so the original's interpreter can run this file too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ORIGINAL = "discobase==1.0.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "discobase-bench"
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 30 * 60
SYNC_ROUTE = "PUT /applications/{application_id}/commands"
MARK = "PHASES "
HERE = Path(__file__).resolve()


# -- the worker: runs inside either library's interpreter ---------------------------------------


def _stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_emulator/stats", timeout=30) as reply:
        data: dict[str, Any] = json.load(reply)
        return data


def _counts(url: str) -> tuple[int, int]:
    stats = _stats(url)
    return int(stats["requests_total"]), int(stats["responses_by_status"].get("429", 0))


def _point_discord_py_at(url: str) -> None:
    """Send discord.py's REST and gateway traffic to the local Discord (public attributes)."""
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = url + "/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        "ws" + url[len("http") :] + "/gateway"
    )


async def _wait_for_route(url: str, route: str, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if _stats(url)["requests_by_route"].get(route):
            return
        await asyncio.sleep(0.05)


async def _workload(args: argparse.Namespace) -> list[dict[str, Any]]:
    import discobase

    original = args.worker == "original"
    if original:
        _point_discord_py_at(args.url)
        db = discobase.Database(args.database)
    else:
        db = discobase.Database(args.database, api_url=args.url, time_scale=args.time_scale)

    @db.table
    class User(discobase.Table):  # type: ignore[misc]
        name: str
        password: str

    n, k = args.records, args.changes

    async def saves() -> bool:
        for i in range(n):
            await User(name=f"user{i}", password=f"secret{i}").save()
        return True

    async def finds() -> bool:
        found = [await User.find(name=f"user{i}") for i in range(k)]
        return all(len(f) == 1 and f[0].password == f"secret{i}" for i, f in enumerate(found))

    async def find_all(expected: int) -> bool:
        return len(await User.find()) == expected

    async def updates() -> bool:
        for i in range(k):
            user = await User.find_unique(name=f"user{i}")
            user.password = f"changed{i}"
            await user.update()
        return (await User.find_unique(name="user0")).password == "changed0"

    async def deletes() -> bool:
        for i in range(k):
            user = await User.find_unique(name=f"user{i}")
            await user.delete()
        return not await User.find(name="user0")

    steps = [
        (f"save x{n} (one by one)", saves),
        (f"find by name x{k}", finds),
        ("find all", lambda: find_all(n)),
        (f"find_unique + update x{k}", updates),
        (f"find_unique + delete x{k}", deletes),
        ("find all again", lambda: find_all(n - k)),
    ]
    phases: list[dict[str, Any]] = []
    mark = (time.perf_counter(), *_counts(args.url))

    def done(name: str, outcome: str) -> None:
        nonlocal mark
        now = (time.perf_counter(), *_counts(args.url))
        phases.append(
            {
                "name": name,
                "seconds": now[0] - mark[0],
                "requests": now[1] - mark[1],
                "429s": now[2] - mark[2],
                "outcome": outcome,
            }
        )
        mark = (time.perf_counter(), *_counts(args.url))

    async with db.conn(args.token):
        if original:
            await _wait_for_route(args.url, SYNC_ROUTE, timeout=60)
        done("connect, create the table", "ok")
        for name, step in steps:
            # A step that raises is reported and the next still runs: the figures of a
            # library that fails part of the workload are shown, not hidden.
            try:
                outcome = "ok" if await step() else "wrong result"
            except Exception as exc:  # noqa: BLE001 - reported in the table
                outcome = f"{type(exc).__name__}: {exc}"[:120]
            done(name, outcome)
    done("close", "ok")
    return phases


def worker(args: argparse.Namespace) -> int:
    """Run the workload and print its phases as one JSON line."""
    phases = asyncio.run(_workload(args))
    print(MARK + json.dumps(phases), flush=True)
    return 0


# -- the orchestrator: this repository's interpreter --------------------------------------------


def original_python(cache: Path) -> tuple[Path | None, str]:
    """Return the original's interpreter (installing it if needed) or None and the reason."""
    venv = cache / "original-1.0.0"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import discobase.database, discord, yarl"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, f"reused {venv}"
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", ORIGINAL],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{' '.join(step[:3])}: {exc}"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"{' '.join(step[:4])} failed: " + " / ".join(tail)
    if subprocess.run(probe, capture_output=True).returncode != 0:
        return None, f"{ORIGINAL} installed but does not import"
    return python, f"installed {ORIGINAL} into {venv}"


async def run_worker(
    python: Path, library: str, emu: Any, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Seed a bot and a guild, run one library's workload; return its phases and the stats."""
    from discobase.emulator.permissions import ADMINISTRATOR

    emu.reset()
    bot = emu.create_bot(f"versus-{library}")
    database = f"versus {library}"
    emu.create_guild(database, bots=[bot], permissions=ADMINISTRATOR)
    command = [
        str(python), str(HERE), "--worker", library, "--url", emu.url,
        "--token", bot.token, "--database", database, "--records", str(args.records),
        "--changes", str(args.changes), "--time-scale", str(args.time_scale),
    ]  # fmt: skip
    # Run from a neutral directory: the original must not import this repository's package.
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=str(args.cache),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])}
        if library == "ours"
        else {k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    lines = [line for line in out.decode().splitlines() if line.startswith(MARK)]
    if process.returncode != 0 or not lines:
        tail = "\n".join(err.decode(errors="replace").strip().splitlines()[-15:])
        raise RuntimeError(f"the {library} workload failed ({process.returncode}):\n{tail}")
    return json.loads(lines[-1][len(MARK) :]), emu.stats()


def table(results: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]) -> str:
    """Format the two runs side by side."""
    names = list(results)
    rows = [r["name"] for r in results[names[0]][0]]
    head = f"{'operation':<28}" + "".join(
        f" | {name + ' req':>13} {'429':>5} {'s':>7}" for name in names
    )
    lines = [head, "-" * len(head)]
    problems: list[str] = []
    for i, row in enumerate(rows):
        line = f"{row:<28}"
        for name in names:
            phase = results[name][0][i]
            flag = "" if phase["outcome"] == "ok" else " *"
            line += f" | {phase['requests']:>13} {phase['429s']:>5} {phase['seconds']:>7.2f}{flag}"
            if flag:
                problems.append(f"{name}, {row}: {phase['outcome']}")
        lines.append(line)
    lines.append("-" * len(head))
    total = f"{'total (server counters)':<28}"
    for name in names:
        phases, stats = results[name]
        total += (
            f" | {stats['requests_total']:>13} {stats['responses_by_status'].get(429, 0):>5}"
            f" {sum(p['seconds'] for p in phases):>7.2f}"
        )
    lines.append(total)
    lines.extend(f"* {problem}" for problem in problems)
    return "\n".join(lines)


async def compare(python: Path, args: argparse.Namespace) -> bool:
    """Run both workloads on one local Discord and print the table; False if one failed."""
    from discobase.emulator import Emulator

    results: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
    async with Emulator(time_scale=args.time_scale) as emu:
        for library, interpreter in (("original", python), ("ours", Path(sys.executable))):
            try:
                results[library] = await run_worker(interpreter, library, emu, args)
            except (RuntimeError, TimeoutError) as exc:
                print(f"{library}: {exc or 'timed out'}\n")
    if not results:
        return False
    print(table(results))
    for library, (_, stats) in results.items():
        routes = sorted(stats["requests_by_route"].items(), key=lambda item: -item[1])
        print(f"\n{library}: " + ", ".join(f"{route} {count}" for route, count in routes))
        cdn, gateway = stats.get("cdn", {}), stats.get("gateway", {})
        print(
            f"{library}: CDN downloads {cdn.get('downloads', 0)}, gateway identifies "
            f"{gateway.get('identifies', '?')}"
        )
    return len(results) == 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=20, help="records saved (default 20)")
    parser.add_argument(
        "--changes", type=int, default=5, help="finds, updates and deletes (default 5)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="real seconds per Discord second (default 1: Discord's own windows)",
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"default {CACHE}")
    parser.add_argument("--worker", choices=("original", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if not 0 < args.changes <= args.records:
        parser.error("--changes must be between 1 and --records")
    args.cache.mkdir(parents=True, exist_ok=True)
    python, how = original_python(args.cache)
    if python is None:
        print(f"skipped: the original discobase could not be installed ({how})")
        return 0
    print(f"original: {how}")
    scale = f"time scale {args.time_scale:g}"
    print(f"workload: {args.records} records, {args.changes} changes, {scale}\n")
    return 0 if asyncio.run(compare(python, args)) else 1


if __name__ == "__main__":
    sys.exit(main())
