"""``discobase emulator``: run the local Discord as a server and print how to reach it.

Layer: the emulator's command line. Prints ``DISCOBASE_API_URL=...``, ``DISCOBASE_TOKEN=...``,
``DISCOBASE_DATABASE=...`` and ``DISCOBASE_TIME_SCALE=...`` lines, each value quoted for a POSIX
shell (``. ./discobase.env`` reads back a guild named "My discord database"), then serves
until interrupted. With ``--data DIR`` the state, and so the bot's token, survive
restarts. The token printed is the emulator's own, never a real Discord token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import sys
from typing import TextIO

from .server import Emulator

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="discobase emulator",
        description="Run a local Discord (REST v10, CDN, gateway, admin API under /_emulator/).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--guild", default="discobase", help="the guild (database) to seed (default discobase)"
    )
    parser.add_argument("--bot", default="discobase", help="the bot's name (default discobase)")
    parser.add_argument(
        "--permissions",
        type=int,
        metavar="BITS",
        help="the bot's role permissions in that guild (default: what a database bot needs; "
        "8 is ADMINISTRATOR, which the original discobase 1.0.0 needs for its invite)",
    )
    parser.add_argument("--data", metavar="DIR", help="keep the state in DIR across restarts")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="real seconds per Discord second (default 1.0; 0.01 runs 100x faster)",
    )
    parser.add_argument(
        "--chaos",
        type=float,
        default=0.0,
        metavar="RATE",
        help="make every failure Discord may produce happen at random, each kind at RATE "
        "(0 to 1; default 0: none); see docs/emulator.md, Chaos",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed every random fault, so that a run replays (default: a fresh one, "
        "printed on stderr when --chaos is on)",
    )
    parser.add_argument(
        "--allow-guild-create",
        action="store_true",
        help="serve the legacy POST /guilds that Discord removed for bots in July 2025",
    )
    return parser


def seed(
    emu: Emulator, bot_name: str, guild_name: str, permissions: int | None = None
) -> tuple[str, str]:
    """Reuse (or create) a bot and a guild it is in; return the token and the guild id.

    ``permissions``, when given, become the bot's role permissions in that guild (also in a
    reused one); otherwise a new guild gets the emulator's default for a database bot.
    """
    bot = next((b for b in emu.state.bots.values() if b.username == bot_name), None)
    if bot is None:
        bot = emu.create_bot(bot_name)
    for guild in emu.state.guilds_for_bot(bot.id):
        if guild.name == guild_name:
            if permissions is not None:
                emu.set_permissions(guild.id, bot, permissions)
            return bot.token, guild.id
    return bot.token, emu.create_guild(guild_name, bots=[bot], permissions=permissions)


async def serve(args: argparse.Namespace, out: TextIO, stop: asyncio.Event) -> None:
    """Start the emulator, print the connection lines, and serve until ``stop`` is set."""
    emu = Emulator(
        time_scale=args.time_scale,
        host=args.host,
        port=args.port,
        data_dir=args.data,
        allow_guild_create=args.allow_guild_create,
        seed=args.seed,
        chaos=args.chaos or None,
    )
    async with emu:
        token, guild_id = seed(emu, args.bot, args.guild, args.permissions)
        # Quoted only where a shell needs it: a plain value (a URL, a token, an id) is
        # written as before, so simple `NAME=value` readers keep working.
        out.write(f"DISCOBASE_API_URL={shlex.quote(emu.url)}\n")
        out.write(f"DISCOBASE_TOKEN={shlex.quote(token)}\n")
        out.write(f"DISCOBASE_DATABASE={shlex.quote(args.guild)}\n")
        out.write(f"DISCOBASE_GUILD_ID={shlex.quote(str(guild_id))}\n")
        out.write(f"DISCOBASE_TIME_SCALE={shlex.quote(format(args.time_scale, 'g'))}\n")
        out.flush()
        if emu.chaos is not None:
            print(
                f"emulator: chaos at {args.chaos:g}, seed {emu.seed} "
                f"(replay: --chaos {args.chaos:g} --seed {emu.seed})",
                file=sys.stderr,
                flush=True,
            )
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Run ``discobase emulator [--host] [--port] [--guild] [--data] [--time-scale] [--chaos]``.

    Returns:
        The exit status: 0 after an interrupt, 2 for bad arguments (argparse exits).
    """
    args = _parser().parse_args(argv)
    if not args.time_scale > 0:
        print("--time-scale must be positive", file=sys.stderr)
        return 2
    if not 0.0 <= args.chaos <= 1.0:
        print("--chaos must lie between 0 and 1", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await serve(args, sys.stdout, stop)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is taken, the data directory is not writable, ...
        print(f"emulator: {exc}", file=sys.stderr)
        return 1
    return 0
