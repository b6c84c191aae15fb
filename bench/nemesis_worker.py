"""One process of a nemesis run: a writer, a live reader or the fresh loader.

Layer: bench helper, run by ``bench/nemesis.py`` as its own OS process with its own
``discobase.Database`` against the local Discord (``DISCOBASE_API_URL``,
``DISCOBASE_TIME_SCALE`` and ``DISCOBASE_TOKEN`` in the environment; the token is never
printed). It writes JSON lines to ``--log``, one ``write()`` per line, so a SIGKILL loses at
most the line being written.

- ``writer``: ``--clients`` loops, each doing one operation at a time on two tables: ``owned``
  (each client updates and deletes only the keys it created) and ``shared`` (any client
  updates and deletes any key). Every operation is an ``invoke`` line, then ``ok``, ``fail``
  (an error that promises nothing was stored) or ``info`` (unknown). Saves always use a fresh
  key and every write a value no other write uses. SIGUSR2 stops the loops (each finishes its
  operation first); SIGUSR1 reports the state held; SIGTERM closes the database and exits.
- ``reader``: samples every table every ``--sample`` real seconds and logs what changed;
  SIGUSR1 samples at once and reports the whole state; SIGTERM exits.
- ``load``: logs in, reports every record of every table once, exits.

``--tables`` names the tables a process declares (``owned`` and ``shared`` by default): a
writer started with a table of its own that does not exist yet races another to create it
(``bench/nemesis.py``'s ``table_race``), and does ``--max-ops`` operations per client at most.
A table other than ``owned`` is written as ``shared`` is. ``--small-messages`` lowers the
message size limits, so that ``save_many`` batches and snapshots are written in several parts.

Every report and load line carries ``damage``: the process's ``db.damage`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import discobase  # noqa: E402
from discobase.errors import UniqueViolation, UsageError  # noqa: E402

#: Errors that promise nothing was stored: those raised before anything is sent (misuse, a
#: unique index). Not Discord's 4xx answers: discobase retries a 5xx with the same nonce, and
#: when the first attempt was stored after all and the retry is refused (a 403 once the
#: permission is gone, say), the error is a Forbidden for a stored write (seen with
#: ``--seed 3 --minutes 10``). Every other error is ``info``.
NOTHING_STORED: tuple[type[BaseException], ...] = (UsageError, UniqueViolation)

TABLES = ("owned", "shared")

#: ``--small-messages``: the size limits (bytes) a process's writes respect. A save_many of
#: 25 records or more no longer fits in a message's content and is compressed into files of
#: at most SMALL_FILE bytes, SMALL_FILES a message: a large one, and every snapshot of a few
#: hundred records, takes several messages (a multi-part batch, a multi-part snapshot).
SMALL_FILE = 256
SMALL_FILES = 2
#: With --small-messages, the share of save_many calls that save BIG records, not 2 to 6.
BIG_SHARE = 0.4
BIG = (25, 80)


def make_database(
    guild: str, tables: tuple[str, ...] = TABLES
) -> tuple[discobase.Database, dict[str, Any]]:
    """Return a database of ``tables``, each of the same fields, as the run's processes
    declare them (a table's name is its class's, in lower case)."""
    db = discobase.Database(guild, logging=True)
    models: dict[str, Any] = {}
    for name in tables:
        namespace = {
            "__annotations__": {"key": str, "value": int, "writer": str},
            "__module__": __name__,
        }
        models[name] = db.table(type(name.capitalize(), (discobase.Table,), namespace))
    return db, models


def use_small_messages(db: discobase.Database) -> None:
    """Lower the size limits of the database's writers (not public: the engine's Limits,
    shared by every writer, snapshot and repair of the database, are changed in place)."""
    engine = db._engine  # noqa: SLF001 - bench only
    assert engine is not None, "the database is open"
    limits = engine.limits
    limits.file_limit = SMALL_FILE
    limits.max_files = SMALL_FILES
    limits.request_limit = SMALL_FILE * SMALL_FILES


class Log:
    """JSON lines, each written with one unbuffered call."""

    def __init__(self, path: str, process: str) -> None:
        self.process = process
        self.file: TextIO = open(path, "a", buffering=1)  # noqa: SIM115 (lives as long as us)

    def write(self, kind: str, **fields: Any) -> None:
        line = {"type": kind, "process": self.process, "t": time.monotonic(), **fields}
        self.file.write(json.dumps(line, separators=(",", ":")) + "\n")


def snapshot(models: dict[str, Any], log: Log, doubles: set[str]) -> dict[str, int]:
    """Return ``{"table/key": value}`` of every record held; log a key held twice, once."""
    state: dict[str, int] = {}
    for name, model in models.items():
        for record in model.find():
            key = f"{name}/{record.key}"
            if key in state and key not in doubles:
                doubles.add(key)
                log.write("double", key=key, values=[state[key], record.value])
            state[key] = record.value
    return state


def die_with_parent(parent: int) -> None:
    """Be killed when the nemesis dies, even by SIGKILL (Linux); exit if it is gone already."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(2)


class Writer:
    """The client loops of one writer process."""

    def __init__(self, args: argparse.Namespace, models: dict[str, Any], log: Log) -> None:
        self.args = args
        self.models = models
        self.log = log
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(*(self.client(c) for c in range(self.args.clients)))
        self.log.write("stopped")

    async def client(self, c: int) -> None:
        args = self.args
        rng = random.Random(f"{args.seed}/client {c}")
        owner = f"w{args.slot}c{c}"
        base = ((args.slot * 1000 + args.incarnation) * 100 + c) * 10**7
        scale = float(os.environ["DISCOBASE_TIME_SCALE"])
        n = 0
        tables = tuple(self.models)
        while not self.stopping.is_set() and (args.max_ops is None or n < args.max_ops):
            n += 1
            table = rng.choice(tables)
            model = self.models[table]
            held = list(model.find(writer=owner) if table == "owned" else model.find())
            f = rng.choices(("save", "update", "delete", "save_many"), (3, 4, 1, 2))[0]
            if f in ("update", "delete") and not held:
                f = "save"
            op = f"{self.log.process}.c{c}.{n}"
            fresh = f"{self.log.process}.c{c}.{n}"
            if f == "save":
                records = [model(key=fresh, value=base + n * 10, writer=owner)]
                writes = [(f"{table}/{fresh}", base + n * 10)]
            elif f == "save_many":
                big = args.small_messages and rng.random() < BIG_SHARE
                size = rng.randint(*BIG) if big else rng.randint(2, 6)
                records = [
                    model(key=f"{fresh}.{j}", value=base + n * 10 + j, writer=owner)
                    for j in range(size)
                ]
                writes = [(f"{table}/{r.key}", r.value) for r in records]
            else:
                records = [rng.choice(held)]
                value = None if f == "delete" else base + n * 10
                writes = [(f"{table}/{records[0].key}", value)]
            await self.one(op, f, model, records, writes)
            await asyncio.sleep(rng.uniform(0.0, args.pace) * scale)

    async def one(
        self, op: str, f: str, model: Any, records: list[Any], writes: list[tuple[str, Any]]
    ) -> None:
        log = self.log
        log.write("invoke", op=op, f=f, writes=writes)
        try:
            if f == "save":
                task = records[0].save()
            elif f == "save_many":
                task = model.save_many(records)
            elif f == "update":
                records[0].value = writes[0][1]
                task = records[0].update()
            else:
                task = records[0].delete()
            await asyncio.wait_for(asyncio.shield(task), self.args.op_timeout)
        except TimeoutError:
            # The write may still be on its way: end the process, so that it ends for sure.
            log.write("info", op=op, error="timeout", pending=True)
            os._exit(3)
        except NOTHING_STORED as exc:
            log.write("fail", op=op, error=f"{type(exc).__name__}: {exc}"[:300])
        except Exception as exc:  # noqa: BLE001 (any other error leaves the outcome unknown)
            log.write("info", op=op, error=f"{type(exc).__name__}: {exc}"[:300])
        else:
            log.write("ok", op=op)


async def main(args: argparse.Namespace) -> None:
    die_with_parent(args.parent)
    log = Log(args.log, args.name)
    log.write("start", mode=args.mode, pid=os.getpid())
    if args.start_at is not None:
        # Two racers open their table at the same moment, their start-up times aside.
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
    tables = tuple(args.tables.split(",")) if args.tables else TABLES
    db, models = make_database(args.guild, tables)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    doubles: set[str] = set()
    async with db.conn(os.environ["DISCOBASE_TOKEN"]):
        engine = getattr(db, "_engine", None)
        if args.snapshot_every and hasattr(engine, "snapshot_messages"):
            # Not public: a damage run wants snapshots early, to delete some.
            engine.snapshot_messages = args.snapshot_every
        if args.small_messages:
            use_small_messages(db)
        if args.mode == "load":
            records = [
                {"key": f"{name}/{r.key}", "id": str(r.id), "value": r.value}
                for name, model in models.items()
                for r in model.find()
            ]
            log.write("load", records=records, damage=db.damage)
            return

        def report() -> None:
            # db.damage: what this process found or repaired (deleted entries, a renamed
            # catalog), one line each naming the table, the channel and the message.
            log.write("report", state=snapshot(models, log, doubles), damage=db.damage)

        loop.add_signal_handler(signal.SIGUSR1, report)
        log.write("ready")
        if args.mode == "writer":
            writer = Writer(args, models, log)
            loop.add_signal_handler(signal.SIGUSR2, writer.stopping.set)
            await writer.run()
            await done.wait()
            return
        held: dict[str, int] = {}
        while not done.is_set():
            now = snapshot(models, log, doubles)
            changes: dict[str, int | None] = {k: v for k, v in now.items() if held.get(k) != v}
            changes.update((k, None) for k in held.keys() - now.keys())
            if changes:
                log.write("sample", changes=changes)
            held = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), args.sample)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("writer", "reader", "load"))
    parser.add_argument("--name", required=True, help="the process's name in the history")
    parser.add_argument("--log", required=True, help="the JSON-lines file to append to")
    parser.add_argument("--guild", required=True)
    parser.add_argument("--parent", type=int, required=True, help="the nemesis's pid")
    parser.add_argument("--seed", default="0", help="this process's own seed")
    parser.add_argument("--slot", type=int, default=0, help="writer slot (owns its keys)")
    parser.add_argument("--incarnation", type=int, default=0, help="restarts of the slot")
    parser.add_argument("--clients", type=int, default=2, help="client loops per writer")
    parser.add_argument("--pace", type=float, default=2.0, help="Discord s between ops, max")
    parser.add_argument("--op-timeout", type=float, default=30.0, help="real s per operation")
    parser.add_argument("--snapshot-every", type=int, help="log entries per snapshot")
    parser.add_argument("--tables", help="comma-separated tables (default owned,shared)")
    parser.add_argument("--start-at", type=float, help="open the database at this time.time()")
    parser.add_argument("--max-ops", type=int, help="operations per client at most")
    parser.add_argument(
        "--small-messages", action="store_true", help="small message size limits (multi-part)"
    )
    parser.add_argument("--sample", type=float, default=0.02, help="real s between samples")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
