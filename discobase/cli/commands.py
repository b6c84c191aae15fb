"""``discobase tables | dump | load | stats``: a database seen without its Python classes.

cli layer. These commands know no ``Table`` classes, so they work below the public API: they
open the storage engine over an HTTP client and use each table's schema as the catalog stores
it. Opening a table with exactly its stored schema writes nothing, so ``tables``, ``dump`` and
``stats`` only read. No gateway connection is made: a one-shot command needs no live sync.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from discobase.cli.env import Settings, read_settings
from discobase.cli.errors import CommandError
from discobase.cli.progress import Progress

if TYPE_CHECKING:
    from discobase.http import HTTPClient
    from discobase.storage import StorageEngine, TableStore

__all__ = ["LOAD_CHUNK", "run_command"]

# Records handed to the writer per submit while loading: large enough that the writer packs
# them into attachments, small enough that progress moves and memory stays flat.
LOAD_CHUNK = 500
_CATALOG = "discobase"


def run_command(args: argparse.Namespace) -> int:
    """Run ``tables``, ``dump``, ``load`` or ``stats`` and return the exit status.

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
        work = _load(settings, args.table, args.file)
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

    def entries(self) -> dict[str, Any]:
        assert self.engine.catalog is not None
        return dict(sorted(self.engine.catalog.tables.items()))

    async def open_table(self, name: str) -> TableStore:
        from discobase.storage import TableSpec

        entry = self.entries().get(name)
        if entry is None:
            known = ", ".join(self.entries()) or "none"
            raise CommandError(f"no table named {name!r} (tables: {known})")
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
            fields = describe_fields(entry.schema, entry.indexes)
            rows.append((name, str(store.count()), str(entry.channel_id), fields))
        if len(rows) == 1:
            print(f"guild {session.guild['name']!r} has no tables yet")
            return
        for line in _columns(rows):
            print(line)


def describe_fields(schema: dict[str, Any], indexes: dict[str, bool]) -> str:
    """Summarise a JSON schema: ``name: string, age: integer = 0, email: string [unique]``."""
    required = set(schema.get("required") or ())
    parts = []
    for name, prop in (schema.get("properties") or {}).items():
        text = f"{name}: {_type_name(prop)}"
        if name not in required and isinstance(prop, dict) and "default" in prop:
            text += f" = {prop['default']!r}"
        if name in indexes:
            text += " [unique]" if indexes[name] else " [index]"
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


async def _load(settings: Settings, table: str, path: str) -> None:
    lines = _read_lines(path)
    async with _session(settings) as session:
        entry = session.entries().get(table)
        store = await session.open_table(table)
        assert entry is not None
        records = list(parse_records(lines, entry.fields))
        check_unique(store, records, entry.indexes)
        progress = Progress(sys.stderr, total=len(records), verb="loaded")
        await _write(store, records, progress)
        progress.finish()
    print(f"loaded {len(records)} records into {table!r}", file=sys.stderr)


def _read_lines(path: str) -> list[str]:
    try:
        if path == "-":
            return sys.stdin.read().splitlines()
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def parse_records(lines: Iterable[str], fields: dict[str, bool]) -> Iterator[dict[str, Any]]:
    """Parse JSON lines into records of a table with ``fields`` (name -> has a default).

    Every line is checked before anything is written: unknown fields, missing required
    fields and lines that are not JSON objects stop the load. An ``id`` is dropped, since
    loaded records get new ids.

    Raises:
        CommandError: a line does not fit, naming its number.
    """
    from discobase import _json

    required = {name for name, has_default in fields.items() if not has_default}
    parsed: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = _json.loads(line)
        except ValueError:
            raise CommandError(f"line {number} is not valid JSON") from None
        if not isinstance(data, dict):
            raise CommandError(f"line {number} is not a JSON object")
        data.pop("id", None)
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise CommandError(f"line {number} has unknown fields: {', '.join(unknown)}")
        missing = sorted(required - set(data))
        if missing:
            raise CommandError(f"line {number} lacks required fields: {', '.join(missing)}")
        parsed.append(data)
    return iter(parsed)


def check_unique(
    store: TableStore, records: list[dict[str, Any]], indexes: dict[str, bool]
) -> None:
    """Refuse, before anything is written, a value a unique index already holds.

    The writer checks each chunk as it is submitted; checking the whole file first keeps a
    load from stopping halfway, after some chunks were written.

    Raises:
        CommandError: naming the field, the value and the line's position among the records.
    """
    from discobase.storage.state import index_key

    for field in (name for name, unique in indexes.items() if unique):
        seen: dict[Any, int] = {}
        for number, data in enumerate(records, start=1):
            if field not in data:
                continue
            value = data[field]
            key = index_key(value)
            taken = store.lookup(field, value)
            if taken or key in seen:
                where = f"record {seen[key]} of the file" if key in seen else "a stored record"
                raise CommandError(
                    f"record {number} of the file: {field} is unique and {value!r} is "
                    f"already taken by {where}; nothing was written"
                )
            seen[key] = number


async def _write(store: TableStore, records: list[dict[str, Any]], progress: Progress) -> None:
    from discobase.storage import Put

    pending: list[tuple[asyncio.Future[None], int]] = []
    for start in range(0, len(records), LOAD_CHUNK):
        chunk = records[start : start + LOAD_CHUNK]
        future = store.submit([Put(store.new_id(), data) for data in chunk])
        pending.append((future, len(chunk)))
    # Submitted all at once, the writer packs chunks together as the rate limit allows.
    for future, size in pending:
        await future
        progress.advance(size)


# ---------------------------------------------------------------------- stats


async def _stats(settings: Settings) -> None:
    from discobase.http import routes

    async with _session(settings) as session:
        http = session.http
        stores = [await session.open_table(name) for name in session.entries()]
        gateway = await http.fetch_gateway_bot()
        sent = http.stats
        print(f"server   {http.api_url}")
        print(f"bot      {session.bot.get('username')} ({session.bot['id']})")
        print(f"guild    {session.guild['name']} ({session.guild['id']})")
        print(
            f"requests {sent.requests_sent} sent to open {len(stores)} table(s): "
            f"{sent.responses} answered, {sent.ratelimited} rate-limited (429), "
            f"{sent.retries} retried, {sent.server_errors} server errors"
        )
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
