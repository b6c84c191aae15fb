"""The ``discobase`` command line: parse arguments, dispatch to one subcommand module.

Top layer (beside the public API). This module imports nothing heavy: each subcommand's module
is imported only when that subcommand runs, so ``discobase --help`` starts at once and never
loads aiohttp or the emulator. Tokens come from the environment only, never from a flag, so
they stay out of shell history and process listings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from discobase.cli.env import API_URL_VAR, DATABASE_VAR, GUILD_ID_VAR, TOKEN_VAR

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Use a Discord bot as a database: tables are channels, records are messages.

Commands that talk to a server read the bot token from $DISCOBASE_TOKEN and the server from
$DISCOBASE_API_URL (Discord itself when unset). Start a local Discord with
`discobase emulator`; try everything at once with `discobase demo`.
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="discobase",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from discobase import __version__

    parser.add_argument("--version", action="version", version=f"discobase {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    # Listed for --help only: main() hands `emulator ...` over before argparse sees it.
    commands.add_parser(
        "emulator",
        help="run the local Discord (see `discobase emulator --help`)",
        add_help=False,
    )

    demo = commands.add_parser(
        "demo",
        help="start a local Discord in-process and walk through the database",
        description="Start a local Discord, define tables, save, find, update and delete "
        "records, and show what lies in the guild. Needs no token.",
    )
    demo.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="real seconds per Discord second in the local Discord (default 1: real time)",
    )

    tables = commands.add_parser(
        "tables",
        help="list the tables with their record count, channel and schema",
    )
    _add_database_options(tables)

    dump = commands.add_parser("dump", help="write a table's records to stdout as JSON lines")
    _add_database_options(dump)
    dump.add_argument("table", help="the table's name")

    load = commands.add_parser(
        "load",
        help="check every line of a JSON lines file against the table's schema, then save "
        "them all in one batched write",
        description="Check every line against the table's stored schema (fields, types, "
        "formats, unique indexes) and write nothing unless all of them fit; then save them "
        "in one atomic batch. Fields a line leaves out get their defaults.",
    )
    _add_database_options(load)
    load.add_argument("table", help="the table's name (it must exist)")
    load.add_argument("file", help="a file with one JSON object per line; `-` reads stdin")
    load.add_argument(
        "--keep-ids",
        action="store_true",
        help="store each line under its `id` (as `dump` writes it): restores a backup; "
        "an id the table already holds is refused",
    )
    load.add_argument(
        "--replace",
        action="store_true",
        help="with --keep-ids, overwrite the records whose ids the table already holds",
    )

    delete = commands.add_parser(
        "delete",
        help="delete records by id, in one batched write",
        description="Delete the records with these ids, all in one atomic write. An id the "
        "table does not hold is an error, and then nothing is deleted.",
    )
    _add_database_options(delete)
    delete.add_argument("table", help="the table's name")
    delete.add_argument("ids", nargs="+", metavar="ID", help="a record id, as `dump` shows it")

    stats = commands.add_parser(
        "stats",
        help="connect, then show the requests made and the rate-limit state",
    )
    _add_database_options(stats)

    slash = commands.add_parser(
        "commands",
        help="list or remove the bot's slash commands in the database's guild",
        description="`list` shows the bot's guild commands; `remove` deletes all of them "
        "(what AdminCommands.register() added). With --global, the bot's global commands "
        "instead: what the original discobase 1.0.0 registered at every login. See "
        "docs/guide/commands.md.",
    )
    _add_database_options(slash)
    slash.add_argument(
        "--global",
        dest="global_commands",
        action="store_true",
        help="the bot's global commands (every server it is in) instead of the guild's; "
        "needs no database",
    )
    slash.add_argument("action", choices=["list", "remove"])
    return parser


def _add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        "-d",
        help=f"the database's (guild's) name; default ${DATABASE_VAR}",
    )
    parser.add_argument(
        "--guild-id", help=f"the guild's id, when several share the name; default ${GUILD_ID_VAR}"
    )
    parser.epilog = (
        f"The token is read from ${TOKEN_VAR}, the server from ${API_URL_VAR} (default: Discord)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return the process exit status.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        0 on success, 1 when the command failed, 2 on a usage error.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        # The emulator owns its options; argparse here would swallow its --help.
        from discobase.emulator.cli import main as emulator_main

        return emulator_main(args_list[1:])

    args = build_parser().parse_args(args_list)
    from discobase.cli.errors import CommandError

    try:
        if args.command == "demo":
            from discobase.cli.demo import run_demo

            return run_demo(time_scale=args.time_scale)
        if args.command == "commands":
            from discobase.cli.slash import run_slash

            return run_slash(
                args.action, args.database, args.guild_id, global_commands=args.global_commands
            )
        from discobase.cli.commands import run_command

        return run_command(args)
    except CommandError as exc:
        print(f"discobase: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("discobase: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `discobase dump t | head`: the reader left. Point stdout at nothing so the
        # interpreter's final flush does not fail again, and stop quietly.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
