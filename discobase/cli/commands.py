"""``discobase tables | dump | load | delete | stats``: a database without its Python classes.

cli layer. These commands know no ``Table`` classes, so they work below the public API: they
open the storage engine over an HTTP client and use each table's schema as the catalog stores
it. Opening a table with exactly its stored schema writes nothing, so ``tables``, ``dump`` and
``stats`` only read. ``load`` checks every line against that schema (``records.py``) before it
writes anything, and ``load`` and ``delete`` each write in one atomic batch. No gateway
connection is made: a one-shot command needs no live sync.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from discobase.cli.env import Settings, read_settings
from discobase.cli.errors import CommandError
from discobase.cli.progress import Progress

if TYPE_CHECKING:
    from discobase.cli.records import ParsedLine
    from discobase.http import HTTPClient
    from discobase.storage import StorageEngine, TableStore
    from discobase.storage.catalog import TableEntry

__all__ = ["LOAD_CHUNK", "run_command"]

# Records handed to the writer per submit while loading: large enough that the writer packs
# them into attachments, small enough that progress moves and memory stays flat.
LOAD_CHUNK = 500
_CATALOG = "discobase"
# Lines checked between two progress updates, problems listed at most, the id bound.
_PROGRESS_STEP = 1000
_PROBLEMS_SHOWN = 20
_MAX_ID = 2**63


def run_command(args: argparse.Namespace) -> int:
    """Run ``tables``, ``dump``, ``load``, ``delete`` or ``stats`` and return the exit status.

    Raises:
        CommandError: the command failed; its message is for the user.
    """
    settings = read_settings(args.database, args.guild_id)
    command = args.command
    if command == "tables":
        work = _tables(settings)
    elif command == "dump":
        work = _dump(settings, args.table)
    elif command == "load":
        if args.replace and not args.keep_ids:
            raise CommandError("--replace needs --keep-ids (new ids never exist yet)", status=2)
        work = _load(settings, args.table, args.file, keep_ids=args.keep_ids, replace=args.replace)
    elif command == "delete":
        work = _delete(settings, args.table, args.ids)
    elif command == "stats":
        work = _stats(settings)
    else:  # argparse allows only the commands above
        raise CommandError(f"unknown command {command!r}", status=2)
    from discobase.errors import DiscobaseError

    try:
        asyncio.run(work)
    except DiscobaseError as exc:
        raise CommandError(f"{type(exc).__name__}: {exc}") from None
    return 0


@dataclass
class _Session:
    http: HTTPClient
    engine: StorageEngine
    guild: dict[str, Any]
    bot: dict[str, Any]

    def entries(self) -> dict[str, TableEntry]:
        assert self.engine.catalog is not None
        return dict(sorted(self.engine.catalog.tables.items()))

    def entry(self, name: str) -> TableEntry:
        entry = self.entries().get(name)
        if entry is None:
            known = ", ".join(self.entries()) or "none"
            raise CommandError(f"no table named {name!r} (tables: {known})")
        return entry

    async def open_table(self, name: str) -> TableStore:
        from discobase.storage import TableSpec

        entry = self.entry(name)
        # Exactly the stored schema and indexes: the catalog sees no change and gets no write.
        spec = TableSpec(
            name=entry.name, schema=entry.schema, fields=entry.fields, indexes=entry.indexes
        )
        return await self.engine.open_table(spec)


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[_Session]:
    from discobase.http import HTTPClient
    from discobase.storage import StorageEngine

    async with HTTPClient(
        settings.token, api_url=settings.api_url, time_scale=settings.time_scale
    ) as http:
        bot = await http.fetch_current_user()
        guild = await _find_guild(http, settings)
        channels = await http.fetch_guild_channels(guild["id"])
        if not any(c.get("type") == 0 and c.get("name") == _CATALOG for c in channels):
            raise CommandError(
                f"guild {guild['name']!r} holds no discobase database yet "
                f"(no #{_CATALOG} channel): a program must create its tables first"
            )
        engine = StorageEngine(
            http, guild_id=int(guild["id"]), bot_id=int(bot["id"]), time_scale=settings.time_scale
        )
        try:
            await engine.open()
            yield _Session(http, engine, guild, bot)
        finally:
            await engine.close()


async def _find_guild(http: HTTPClient, settings: Settings) -> dict[str, Any]:
    guilds = await http.fetch_my_guilds()
    if settings.guild_id:
        found = [g for g in guilds if str(g["id"]) == settings.guild_id]
    else:
        found = [g for g in guilds if g.get("name") == settings.database]
    if len(found) > 1:
        ids = ", ".join(str(g["id"]) for g in found)
        raise CommandError(f"several guilds are named {settings.database!r} ({ids}): --guild-id")
    if not found:
        what = f"id {settings.guild_id}" if settings.guild_id else f"name {settings.database!r}"
        raise CommandError(f"the bot is in no guild with the {what}")
    guild: dict[str, Any] = found[0]
    return guild


# ---------------------------------------------------------------------- tables


async def _tables(settings: Settings) -> None:
    async with _session(settings) as session:
        rows = [("TABLE", "RECORDS", "CHANNEL", "FIELDS")]
        for name, entry in session.entries().items():
            store = await session.open_table(name)
            fields = describe_fields(entry.schema, entry.indexes, entry.renames)
            rows.append((name, str(store.count()), str(entry.channel_id), fields))
        if len(rows) == 1:
            print(f"guild {session.guild['name']!r} has no tables yet")
            return
        for line in _columns(rows):
            print(line)


def describe_fields(
    schema: dict[str, Any], indexes: dict[str, bool], renames: Mapping[str, str] | None = None
) -> str:
    """Summarise a JSON schema: ``name: string, age: integer = 0, email: string [unique]``,
    and ``(was title)`` after a field renamed from ``title`` (``renames``: name -> before)."""
    required = set(schema.get("required") or ())
    renames = renames or {}
    parts = []
    for name, prop in (schema.get("properties") or {}).items():
        text = f"{name}: {_type_name(prop)}"
        if name not in required and isinstance(prop, dict) and "default" in prop:
            text += f" = {prop['default']!r}"
        if name in indexes:
            text += " [unique]" if indexes[name] else " [index]"
        if name in renames:
            text += f" (was {renames[name]})"
        parts.append(text)
    return ", ".join(parts) or "(no fields)"


def _type_name(prop: Any) -> str:
    if not isinstance(prop, dict):
        return "any"
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " | ".join(_type_name(p) for p in prop[key])
    kind = prop.get("type")
    if kind == "array":
        return f"array[{_type_name(prop.get('items', {}))}]"
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind is None:
        return "any"
    return f"{kind}({prop['format']})" if "format" in prop else str(kind)


def _columns(rows: Sequence[tuple[str, ...]]) -> Iterator[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        yield "  ".join([*cells, row[-1]])


# ---------------------------------------------------------------------- dump


async def _dump(settings: Settings, table: str) -> None:
    from discobase import _json

    async with _session(settings) as session:
        store = await session.open_table(table)
        records = store.records()
        progress = Progress(sys.stderr, total=len(records), verb="dumped")
        out = sys.stdout
        for record_id in sorted(records):
            out.write(_json.dumps_str({"id": record_id, **records[record_id]}) + "\n")
            progress.advance()
        out.flush()
        progress.finish()


# ---------------------------------------------------------------------- load


async def _load(
    settings: Settings, table: str, path: str, *, keep_ids: bool, replace: bool
) -> None:
    lines = _read_lines(path)
    async with _session(settings) as session:
        entry = session.entry(table)
        # Checked before the table is opened: a bad file costs no snapshot download.
        parsed = check_lines(entry.schema, entry.fields, lines, keep_ids=keep_ids, source=path)
        store = await session.open_table(table)
        problems: list[str] = []
        if keep_ids:
            problems.extend(check_ids(store, parsed, table, replace=replace))
        problems.extend(check_unique(store, parsed, entry.indexes, keep_ids=keep_ids))
        if problems:
            raise CommandError(_refusal(problems, path))
        await _write(session.engine, store, parsed, keep_ids=keep_ids)
    kept = " under their ids" if keep_ids else ""
    print(f"loaded {_records(len(parsed))} into {table!r}{kept}", file=sys.stderr)


def _read_lines(path: str) -> list[str]:
    try:
        if path == "-":
            return sys.stdin.read().splitlines()
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CommandError(f"cannot read {path}: not UTF-8 text ({exc.reason})") from None


def check_lines(
    schema: dict[str, Any],
    fields: dict[str, bool],
    lines: Sequence[str],
    *,
    keep_ids: bool,
    source: str | None = None,
) -> list[ParsedLine]:
    """Check every line against the table's stored schema, before anything is written.

    Lines that are not JSON objects, unknown fields, missing required fields and values of
    the wrong type, format or range are refused, every one of them named by its line. A
    field with a default the line leaves out gets the default ``save()`` would store.

    Args:
        schema: the table's JSON schema, as the catalog keeps it.
        fields: ``{field name: has a default}``, as the catalog keeps it.
        lines: the file's lines.
        keep_ids: whether each line's ``id`` is kept; it is dropped otherwise.
        source: the file's name, for the message.

    Returns:
        The records to store, one per non-blank line.

    Raises:
        CommandError: some lines do not fit; the message names each (the first ones).
    """
    from discobase.cli.records import RecordSchema

    checker = RecordSchema(schema, fields)
    progress = Progress(sys.stderr, total=len(lines), verb="checked")
    parsed: list[ParsedLine] = []
    problems: list[str] = []
    for number, text in enumerate(lines, start=1):
        line = checker.parse(number, text, keep_ids=keep_ids)
        if line is not None:
            parsed.append(line)
            problems.extend(str(problem) for problem in line.problems)
        if number % _PROGRESS_STEP == 0:
            progress.advance(_PROGRESS_STEP)
    progress.advance(len(lines) % _PROGRESS_STEP)
    progress.finish()
    if problems:
        raise CommandError(_refusal(problems, source))
    return parsed


def check_ids(
    store: TableStore, parsed: Sequence[ParsedLine], table: str, *, replace: bool
) -> Iterator[str]:
    """Yield a problem for each kept id given twice, or (unless ``replace``) already stored."""
    first: dict[int, int] = {}
    for line in parsed:
        record_id = line.record_id
        assert record_id is not None  # check_lines refused lines without one
        if record_id in first:
            yield f"line {line.line}: id {record_id} is also the id of line {first[record_id]}"
            continue
        first[record_id] = line.line
        if not replace and store.get(record_id) is not None:
            yield (
                f"line {line.line}: id {record_id} is already a record of {table!r} "
                "(--replace overwrites it)"
            )


def check_unique(
    store: TableStore,
    parsed: Sequence[ParsedLine],
    indexes: dict[str, bool],
    *,
    keep_ids: bool = False,
) -> Iterator[str]:
    """Yield a problem for each value a unique index would hold twice after the load.

    The writer checks each write as it is submitted; checking the whole file first names
    every clash by its line. A record the file rewrites (``--keep-ids --replace``) gives up
    its stored values.
    """
    from discobase.storage.state import index_key

    rewritten = {line.record_id for line in parsed} if keep_ids else set()
    for field in (name for name, unique in indexes.items() if unique):
        seen: dict[Any, int] = {}
        for line in parsed:
            if field not in line.data:
                continue
            value = line.data[field]
            key = index_key(value)
            if key in seen:
                yield (
                    f"line {line.line}: {field} is unique and {value!r} is already taken "
                    f"by line {seen[key]}"
                )
                continue
            seen[key] = line.line
            holders = sorted(set(store.lookup(field, value) or ()) - rewritten)
            if holders:
                yield (
                    f"line {line.line}: {field} is unique and {value!r} is already taken "
                    f"by stored record {holders[0]}"
                )


def _refusal(problems: Sequence[str], path: str | None) -> str:
    if len(problems) == 1:
        return f"{problems[0]}; nothing was written"
    shown = problems[:_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    where = f" in {path}" if path and path != "-" else ""
    text = f"{len(problems)} problems{where}; nothing was written:"
    text += "".join(f"\n  {problem}" for problem in shown)
    if more:
        text += f"\n  ... and {more} more"
    return text


async def _write(
    engine: StorageEngine, store: TableStore, parsed: Sequence[ParsedLine], *, keep_ids: bool
) -> None:
    from discobase.storage import Put

    if keep_ids:
        ids = [record_id for line in parsed if (record_id := line.record_id) is not None]
        assert len(ids) == len(parsed)  # check_lines refused lines without an id
    else:
        ids = store.new_ids(len(parsed))
    progress = Progress(sys.stderr, total=len(parsed), verb="loaded")
    pending: list[tuple[asyncio.Future[None], int]] = []
    # One batch: the chunks are sent as one atomic write, so a load is stored whole or not at
    # all, even if a write fails halfway. Chunks keep the progress moving as they are acked.
    async with engine.batch():
        for start in range(0, len(parsed), LOAD_CHUNK):
            chunk = parsed[start : start + LOAD_CHUNK]
            chunk_ids = ids[start : start + LOAD_CHUNK]
            ops = [Put(i, line.data) for i, line in zip(chunk_ids, chunk, strict=True)]
            pending.append((store.submit(ops), len(chunk)))
    for future, size in pending:
        await future
        progress.advance(size)
    progress.finish()


# ---------------------------------------------------------------------- delete


async def _delete(settings: Settings, table: str, raw_ids: Sequence[str]) -> None:
    from discobase.storage import Delete

    ids = parse_ids(raw_ids)
    async with _session(settings) as session:
        store = await session.open_table(table)
        unknown = [record_id for record_id in ids if store.get(record_id) is None]
        if unknown:
            listed = ", ".join(str(record_id) for record_id in unknown[:_PROBLEMS_SHOWN])
            if len(unknown) > _PROBLEMS_SHOWN:
                listed += f" and {len(unknown) - _PROBLEMS_SHOWN} more"
            noun = "id" if len(unknown) == 1 else "ids"
            raise CommandError(
                f"{table!r} has no record with the {noun} {listed}; nothing was deleted"
            )
        progress = Progress(sys.stderr, total=len(ids), verb="deleted")
        # One group: the records go in one atomic write, all of them or none.
        await store.submit([Delete(record_id) for record_id in ids])
        progress.advance(len(ids))
        progress.finish()
    print(f"deleted {_records(len(ids))} from {table!r}", file=sys.stderr)


def parse_ids(raw_ids: Sequence[str]) -> list[int]:
    """Turn the command's id arguments into record ids, each once, in the order given.

    Raises:
        CommandError: an argument is not a record id (a usage error, naming it).
    """
    ids: dict[int, None] = {}
    for raw in raw_ids:
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or not 0 < int(text) < _MAX_ID:
            raise CommandError(
                f"{raw!r} is not a record id (a positive integer, as `dump` shows it)", status=2
            )
        ids[int(text)] = None
    return list(ids)


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


# ---------------------------------------------------------------------- stats


async def _stats(settings: Settings) -> None:
    from discobase.http import routes

    async with _session(settings) as session:
        http = session.http
        stores = [await session.open_table(name) for name in session.entries()]
        sent = http.stats
        # Counted before the session budget is asked for: that request opens no table.
        opening = (
            f"requests {sent.requests_sent} sent to open {len(stores)} table(s): "
            f"{sent.responses} answered, {sent.ratelimited} rate-limited (429), "
            f"{sent.retries} retried, {sent.server_errors} server errors"
        )
        gateway = await http.fetch_gateway_bot()
        print(f"server   {http.api_url}")
        print(f"bot      {session.bot.get('username')} ({session.bot['id']})")
        print(f"guild    {session.guild['name']} ({session.guild['id']})")
        print(opening)
        print(f"invalid  {http.ratelimiter.invalid_count} recent 401/403/429 responses")
        limit = gateway.get("session_start_limit") or {}
        if limit:
            print(
                f"sessions {limit.get('remaining')}/{limit.get('total')} gateway sessions "
                f"left today, resets in {float(limit.get('reset_after', 0)) / 1000:.0f} s"
            )
        rows = [("TABLE", "RECORDS", "WRITE BUCKET")]
        for store in stores:
            view = http.ratelimiter.view(routes.CREATE_MESSAGE.compile(channel_id=store.channel_id))
            bucket = (
                f"{view.remaining}/{view.limit} left, refills in {view.reset_in:.2f} s"
                if view.known
                else "not learned yet (no write this session)"
            )
            rows.append((store.spec.name, str(store.count()), bucket))
        if stores:
            print()
            for line in _columns(rows):
                print(line)
        server = await _emulator_stats(http)
        if server is not None:
            statuses = server.get("responses_by_status", {})
            print(
                f"\nlocal Discord: {server.get('requests_total')} requests served in all, "
                f"{statuses.get('429', statuses.get(429, 0))} answered 429"
            )


async def _emulator_stats(http: HTTPClient) -> dict[str, Any] | None:
    """Read a local Discord's own counters; ``None`` from Discord itself."""
    from discobase import _json
    from discobase.errors import DiscobaseError

    if "discord.com" in http.api_url:
        return None
    try:
        body = await http.download_attachment(http.api_url + "/_emulator/stats")
        stats = _json.loads(body)
    except (DiscobaseError, ValueError):
        return None
    return stats if isinstance(stats, dict) else None
