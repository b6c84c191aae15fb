"""StorageEngine: a guild as a set of logs (storage layer: uses the HTTP client and gateway
*events*; knows nothing of pydantic models, the Database object or the gateway connection
itself).

Opening the engine lists the guild's channels and reads the bot's guild and member (its
roles), to check its permissions before anything is read (``access.py``): without Read
Message History Discord answers every read with an empty list, which would look like an
empty database. It finds the catalog by what it holds (``catalog_channel.py``), reads it, and
opens tables (``store.py``) on demand. Entries written by other processes arrive as gateway
events (``on_event``); deleted messages and channels are reported and, where this process
still holds what they carried, written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Collection
from typing import Any

from discobase import _json
from discobase import _permissions as perms
from discobase.errors import DatabaseError, NotConnected, StorageCorrupted, StorageDamaged
from discobase.http import HTTPClient
from discobase.http.errors import HTTPException, NotFound
from discobase.storage import codec
from discobase.storage.access import Access
from discobase.storage.batch import batch_block, open_batch_check
from discobase.storage.catalog import (
    CATALOG_CHANNEL,
    Catalog,
    TableEntry,
    TableSpec,
    entry_body,
    table_entry_body,
)
from discobase.storage.catalog_channel import find_catalog_channel, find_table_channel
from discobase.storage.evolution import follow_renames, plan_open, refuse_duplicates
from discobase.storage.ids import IdGenerator
from discobase.storage.outgoing import Limits, Outgoing, plan_stream, post
from discobase.storage.own import OwnWrites
from discobase.storage.reader import PAGE, fetch_stream, page_forward
from discobase.storage.repairs import track
from discobase.storage.snapshot import SnapshotInfo, replay_from
from discobase.storage.state import TableState
from discobase.storage.store import GAP_CHECK_INTERVAL, TableStore

__all__ = ["GAP_CHECK_INTERVAL", "StorageEngine"]

_log = logging.getLogger("discobase.storage")

_DAMAGE_MAX = 1000


class StorageEngine:
    """A guild's tables as logs of messages, with their live state in memory.

    Args:
        http: an open HTTP client for the bot.
        guild_id: the database's guild.
        bot_id: the bot's user id (entries by anyone else are ignored).
        time_scale: real seconds per Discord second (emulator tests).
        snapshot_ops: write a snapshot once this many operations follow the last one.
        snapshot_messages: ... or once this many log entries follow it.
        limits: size limits (defaults to Discord's).
        catalog_name: the catalog channel's name.
        gap_check_interval: Discord seconds between two reads of each table's newest
            entries over REST, which find what the gateway did not deliver.
    """

    def __init__(
        self,
        http: HTTPClient,
        *,
        guild_id: int,
        bot_id: int,
        time_scale: float = 1.0,
        snapshot_ops: int = 50_000,
        snapshot_messages: int = 300,
        limits: Limits | None = None,
        catalog_name: str = CATALOG_CHANNEL,
        gap_check_interval: float = GAP_CHECK_INTERVAL,
    ) -> None:
        self.http = http
        self.guild_id = int(guild_id)
        self.bot_id = int(bot_id)
        self.time_scale = time_scale
        self.snapshot_ops = snapshot_ops
        self.snapshot_messages = snapshot_messages
        self.limits = limits or Limits()
        self.catalog_name = catalog_name
        self.ids = IdGenerator()
        self.catalog: Catalog | None = None
        self.tables: dict[str, TableStore] = {}
        self._by_channel: dict[int, TableStore] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: This process's own entries, so their gateway echoes are skipped.
        self.own = OwnWrites()
        self._closing = False
        self.gap_check_interval = gap_check_interval
        #: Damage found (deleted entries, unreadable ones, ...), newest last, as reported.
        self.damage: list[str] = []
        self._repairs: set[asyncio.Task[None]] = set()
        #: The bot's permissions and the guild's channels (learnt by open()).
        self.access = Access(self.guild_id, self.bot_id)

    def __repr__(self) -> str:
        return f"<StorageEngine guild={self.guild_id} tables={sorted(self.tables)}>"

    @property
    def closing(self) -> bool:
        """Return whether close() was called."""
        return self._closing

    def check_usable(self) -> None:
        """Raise ``NotConnected`` once the engine is closing."""
        if self._closing:
            raise NotConnected("the database is closed; open it again to write")

    # ------------------------------------------------------------------ the catalog

    async def open(self, tables: Collection[str] = ()) -> None:
        """Find or create the catalog channel, check the bot's permissions, read the catalog.

        Args:
            tables: the names of the tables about to be opened: their permissions are
                checked too, before anything is created or written.

        Raises:
            MissingPermissions: the bot lacks a permission the catalog or one of ``tables``
                needs (checked before anything the check concerns is read, created or
                written).
            StorageDamaged: the catalog is gone but channels hold this bot's entries.
            HTTPException: Discord refused a request.
        """
        self.check_usable()
        if self.catalog is not None:
            await self.check_tables(tables)
            return
        channel_id, first_page = await find_catalog_channel(
            self.http, self.access, self.catalog_name, tables, self.report_damage
        )
        catalog = Catalog(channel_id)
        self.catalog = catalog
        try:
            for message in sorted(first_page, key=lambda m: int(m["id"])):
                await self._ingest_catalog(message, strict=True)
            if len(first_page) >= PAGE:
                await self._read_catalog(after=catalog.cursor)
            await self.check_tables(tables)
            if not catalog.has_version:
                await self.post_catalog("db", {})
        except BaseException:
            # A catalog read half-way would pass for a smaller database: the next open()
            # reads it again from the start.
            self.catalog = None
            raise

    async def check_tables(self, names: Collection[str]) -> None:
        """Check, before any of them is opened, that the bot may use these tables.

        A table in the catalog needs View Channel, Send Messages, Read Message History,
        Attach Files and Pin Messages in its channel; a new one needs Manage Channels and
        those at the server level. Costs no request unless a table's channel was made after
        the channels were listed (then one, to list them again).

        Raises:
            MissingPermissions: naming every permission missing, and where.
        """
        catalog = self._require_catalog()
        access = self.access
        if not access.checked:
            return
        entries = [(name, catalog.tables.get(name)) for name in names]
        if any(e is not None and e.channel_id not in access.channels for _, e in entries):
            access.learn_channels(await self.http.fetch_guild_channels(self.guild_id))
        for name, entry in entries:
            if entry is not None and entry.channel_id not in access.channels:
                raise StorageDamaged(
                    f"the channel of table {name!r} ({entry.channel_id}) is gone (deleted?): "
                    f"the catalog (channel {catalog.channel_id}, entry {entry.first_id}) "
                    "names it. discobase stopped rather than start the table empty in a new "
                    "channel",
                    table=name,
                    channel_id=entry.channel_id,
                )
        places: dict[str, int] = {}
        new = [name for name, entry in entries if entry is None]
        if new:
            need = perms.TABLE_NEEDS | perms.MANAGE_CHANNELS
            places.update(access.server_needs(need, "", new))
        for name, entry in entries:
            if entry is not None:
                places.update(access.needs(entry.channel_id, perms.TABLE_NEEDS, f"table {name!r}"))
        access.require(places)

    async def _read_catalog(self, after: int) -> None:
        catalog = self._require_catalog()
        async for page in page_forward(self.http, catalog.channel_id, after=after):
            for message in page:
                await self._ingest_catalog(message, strict=True)

    async def _ingest_catalog(self, message: dict[str, Any], *, strict: bool) -> None:
        catalog = self._require_catalog()
        try:
            header = codec.parse_header(message, self.bot_id)
            if header is None:
                catalog.cursor = max(catalog.cursor, int(message["id"]))
                return
            body: dict[str, Any] | None = None
            if header.files:
                raw = codec.decode_stream(
                    await fetch_stream(self.http, catalog.channel_id, [header])
                )
                if not raw or not isinstance(raw[0], dict):
                    raise StorageCorrupted(f"catalog entry {header.message_id} is empty")
                body = raw[0]
            catalog.ingest_header(header, body)
        except StorageCorrupted:
            if strict:
                raise
            _log.exception("catalog entry %s could not be read", message.get("id"))
            return
        if header.kind == "table":
            self._follow_renames((body or header.body).get("name"))

    def _follow_renames(self, name: object) -> None:
        """Give an open table the renames its newest catalog entry records, if they changed.

        Another program may rename a field of a table this one has open: this program
        then reads the field from the records written under its new name (``on_renames``).
        """
        store = self.tables.get(name) if isinstance(name, str) else None
        if store is None or self.catalog is None:
            return
        entry = self.catalog.tables.get(store.spec.name)
        if entry is None or entry.channel_id != store.channel_id:
            return
        renames = follow_renames(store.spec, entry.renames)
        if renames is None:
            return
        store.spec = dataclasses.replace(store.spec, renames=renames)
        if store.on_renames is not None:
            store.on_renames()

    async def post_catalog(self, kind: str, body: dict[str, Any]) -> None:
        """Post a catalog entry and fold it into the catalog."""
        await self._post_catalog_entry(kind, body)

    async def _post_catalog_entry(self, kind: str, body: dict[str, Any]) -> int:
        """Post a catalog entry, fold it into the catalog and return its message id."""
        catalog = self._require_catalog()
        content = codec.encode_header(kind, **body)
        if len(content) <= codec.CONTENT_LIMIT:
            outgoing = Outgoing(content)
        else:
            # Too long for content (a large schema): the whole entry goes in an attachment
            # and the content keeps only what identifies it.
            stream = codec.encode_stream([_json.dumps(body)])
            short = {k: v for k, v in body.items() if k in ("name", "table", "channel")}
            plans = plan_stream(kind, stream, self.limits, **short)
            if len(plans) > 1:
                raise DatabaseError(f"a catalog entry of {len(stream)} bytes is too large")
            outgoing = plans[0]
        message = await post(self.http, catalog.channel_id, outgoing)
        await self._ingest_catalog(message, strict=True)
        return int(message["id"])

    def _require_catalog(self) -> Catalog:
        if self.catalog is None:
            raise NotConnected("the storage engine is not open; call open() first")
        return self.catalog

    # ------------------------------------------------------------------ tables

    async def open_table(self, spec: TableSpec, *, replace: bool = False) -> TableStore:
        """Open (creating if new) a table and load its state.

        Args:
            spec: what the program declares (the catalog records the union of the stored
                schema and this one, see ``evolution.plan_open``).
            replace: open for a migration: the stored schema is not checked and nothing is
                recorded (the migration records ``spec`` once the records are rewritten).

        Raises:
            MissingPermissions: the bot may not use the table's channel (or create it).
            SchemaMismatch: the stored schema is incompatible with ``spec``.
            UniqueConflict: ``spec`` declares a unique index over values stored twice.
            StorageCorrupted: the table's entries cannot be read.
            HTTPException: Discord refused a request.
        """
        self.check_usable()
        catalog = self._require_catalog()
        if spec.name not in self.tables:
            await self.check_tables([spec.name])
        lock = self._locks.setdefault(spec.name, asyncio.Lock())
        async with lock:
            store = self.tables.get(spec.name)
            if store is not None:
                return store
            entry = catalog.tables.get(spec.name)
            if entry is None:
                entry = await self._recover_table(spec)
            if entry is None:
                channel_id, recorded = await self._create_table(spec)
                entry = catalog.tables[spec.name]
                if entry.channel_id != channel_id:
                    # Another process created the table first; adopt its channel. Our entry
                    # goes first: left behind, it would name a deleted channel, and take the
                    # table over for every later open once a member deletes the winner's
                    # entry (a live process writes that again, but after ours).
                    with contextlib.suppress(HTTPException):
                        await self.http.delete_message(catalog.channel_id, recorded)
                        catalog.forget_entry(spec.name, recorded)
                        await self.http.delete_channel(channel_id)
            plan = plan_open(entry, spec, replace=replace)
            opened = plan.spec
            defaults = opened.defaults()
            # A migration checks unique values itself, on the records it writes.
            indexes = {n: False for n in opened.indexes} if replace else opened.indexes
            state = TableState(opened.name, indexes, defaults)
            store = TableStore(self, opened, entry.channel_id, state)
            self._by_channel[entry.channel_id] = store
            try:
                await store.load(catalog.snapshots.get(spec.name))
            except BaseException:
                del self._by_channel[entry.channel_id]
                raise
            try:
                self.check_usable()  # closed while it loaded: close() missed this store
                if plan.new_unique and not replace:
                    refuse_duplicates(opened.name, state.records, plan.new_unique, defaults)
                if plan.record is not None and not replace:
                    body = table_entry_body(plan.record, entry.channel_id)
                    await self.post_catalog("table", body)
            except BaseException:
                del self._by_channel[entry.channel_id]
                with contextlib.suppress(Exception):
                    await store.close()
                raise
            self.tables[spec.name] = store
            # A rename recorded by another program while this one loaded the table.
            self._follow_renames(spec.name)
            self._report_losses(store)
            await self._delete_strays(spec.name)
            return store

    async def forget_table(self, name: str) -> None:
        """Close a table's store and forget it, so that the next ``open_table`` reads it again
        (a migration reopens the table it rewrote this way)."""
        store = self.tables.pop(name, None)
        if store is None:
            return
        if self._by_channel.get(store.channel_id) is store:
            del self._by_channel[store.channel_id]
        await store.close()

    def catalog_snapshot(self, table: str) -> SnapshotInfo | None:
        """Return the newest snapshot of ``table`` the catalog names, if any."""
        return self._require_catalog().snapshots.get(table)

    def loss_noted(self, table: str, message_id: int) -> bool:
        """Return whether the catalog notes the entry ``message_id`` of ``table`` as lost."""
        return message_id in self._require_catalog().losses.get(table, ())

    def _report_losses(self, store: TableStore) -> None:
        """Report the entries a live process saw deleted and could not write again, as it
        did, so that every process that opens the table says the same."""
        catalog = self._require_catalog()
        for message_id in catalog.losses.get(store.spec.name, ()):
            if not store.repaired(message_id) and not store.repairs.reclaim(message_id):
                self.report_damage(
                    f"table {store.spec.name!r} (channel {store.channel_id}): entry "
                    f"{message_id} was deleted, and no process that saw it go could write it "
                    "again; records it wrote that no later entry changed are missing"
                )

    async def _recover_table(self, spec: TableSpec) -> TableEntry | None:
        """Find the channel of a table whose catalog entry was deleted, and describe it again."""
        catalog = self._require_catalog()
        taken = {e.channel_id for e in catalog.tables.values()} | {catalog.channel_id}
        found = await find_table_channel(self.http, self.access, spec.name, taken, self.bot_id)
        if found is None:
            return None
        await self.post_catalog("table", table_entry_body(spec, found))
        self.report_damage(
            f"the catalog had no entry for table {spec.name!r}, but channel {found} holds its "
            "entries (its catalog entry was deleted?): discobase wrote the entry again with "
            "this program's schema instead of starting the table empty in a new channel"
        )
        return catalog.tables[spec.name]

    async def _create_table(self, spec: TableSpec) -> tuple[int, int]:
        """Make a table's channel and record it; return the channel and the catalog entry."""
        catalog = self._require_catalog()
        created = await self.http.create_guild_channel(
            self.guild_id,
            name=spec.name,
            topic=f"discobase table {spec.name}",
            permission_overwrites=self.access.read_only_overwrites(),
        )
        channel_id = int(created["id"])
        before = catalog.cursor
        recorded = await self._post_catalog_entry("table", table_entry_body(spec, channel_id))
        # Entries others posted meanwhile may not have reached us: re-read from before ours
        # (ingesting twice is harmless); the earliest entry of a name wins.
        await self._read_catalog(after=min(before, replay_from(catalog.cursor)))
        return channel_id, recorded

    # ------------------------------------------------------------------ live sync

    def report_damage(self, what: str) -> None:
        """Record and log damage found in the database (``damage`` lists it)."""
        self.damage.append(what)
        if len(self.damage) > _DAMAGE_MAX:
            del self.damage[0]
        _log.warning("damage: %s", what)

    async def on_event(self, name: str, data: dict[str, Any]) -> None:
        """Apply a gateway dispatch (entries by other processes, catalog changes)."""
        if not isinstance(data, dict) or self._closing:
            return
        if name in ("MESSAGE_DELETE", "MESSAGE_DELETE_BULK"):
            self._on_messages_deleted(data)
            return
        if name == "CHANNEL_DELETE":
            self._on_channel_deleted(data)
            return
        if name != "MESSAGE_CREATE":
            return
        try:
            channel_id = int(data["channel_id"])
        except (KeyError, TypeError, ValueError):
            return
        guild = data.get("guild_id")
        if guild is not None and str(guild) != str(self.guild_id):
            return
        catalog = self.catalog
        if catalog is not None and channel_id == catalog.channel_id:
            await self._ingest_catalog(data, strict=False)
            return
        store = self._by_channel.get(channel_id)
        if store is not None:
            try:
                await store.ingest(data, live=True)
            except HTTPException:
                _log.exception("table %s: a live entry could not be read", store.spec.name)

    def _on_messages_deleted(self, data: dict[str, Any]) -> None:
        try:
            channel_id = int(data["channel_id"])
            raw = data["ids"] if "ids" in data else [data["id"]]
            ids = [int(m) for m in raw]
        except (KeyError, TypeError, ValueError):
            return
        catalog = self.catalog
        if catalog is not None and channel_id == catalog.channel_id:
            for name, entry in catalog.tables.items():
                store = self.tables.get(name)
                if store is not None and {entry.first_id, entry.latest_id} & set(ids):
                    track(
                        self._repairs,
                        asyncio.get_running_loop().create_task(self._repair_table_entry(store)),
                    )
            return
        store = self._by_channel.get(channel_id)
        if store is not None:
            store.on_deleted(ids)

    async def _delete_strays(self, name: str) -> None:
        """Delete the entries of table ``name`` naming another channel (`Catalog.strays`):
        written again later than them, the table's own entry would lose to them."""
        catalog = self._require_catalog()
        for message_id in catalog.strays(name):
            try:
                await self.http.delete_message(catalog.channel_id, message_id)
            except NotFound:
                pass  # deleted already (by its writer, or another process)
            except HTTPException as exc:
                self.report_damage(
                    f"catalog entry {message_id} of table {name!r} names a channel that is not "
                    f"the table's (a process that lost the race to create it died before "
                    f"deleting it) and could not be deleted ({exc}): if the table's own entry "
                    "is deleted, processes that open the database later read that channel"
                )
                continue
            catalog.forget_entry(name, message_id)

    async def _repair_table_entry(self, store: TableStore) -> None:
        # Without its catalog entry a table is unknown to a process that opens the database
        # later, which would make it a second channel: describe it again.
        catalog = self.catalog
        known = catalog.tables.get(store.spec.name) if catalog is not None else None
        try:
            await self._delete_strays(store.spec.name)
            # What the catalog recorded (the union of every program's schema), not this
            # program's own schema, which may lack what others declared.
            body = (
                entry_body(known)
                if known is not None and known.channel_id == store.channel_id
                else table_entry_body(store.spec, store.channel_id)
            )
            await self.post_catalog("table", body)
        except (HTTPException, DatabaseError) as exc:
            self.report_damage(
                f"the catalog entry of table {store.spec.name!r} (channel {store.channel_id}) "
                f"was deleted and could not be written again: {exc}"
            )
        else:
            self.report_damage(
                f"the catalog entry of table {store.spec.name!r} (channel {store.channel_id}) "
                "was deleted; it was written again"
            )

    def _on_channel_deleted(self, data: dict[str, Any]) -> None:
        try:
            channel_id = int(data["id"])
        except (KeyError, TypeError, ValueError):
            return
        store = self._by_channel.get(channel_id)
        catalog = self.catalog
        if store is not None:
            self.report_damage(
                f"the channel of table {store.spec.name!r} ({channel_id}) was deleted: its "
                "records live only in the processes that have it open; writes to it fail"
            )
        elif catalog is not None and channel_id == catalog.channel_id:
            self.report_damage(
                f"the catalog channel ({channel_id}) was deleted: processes that open the "
                "database later will not find its tables"
            )

    async def catch_up(self) -> None:
        """Read what the gateway may have missed (after a connection that did not resume)."""
        if self._closing or self.catalog is None:
            return
        # The cursor may be one of our own entries, posted while events were missed: read a
        # little further back (ingesting an entry twice is harmless).
        await self._read_catalog(after=replay_from(self.catalog.cursor))
        for store in list(self.tables.values()):
            await store.check()

    def open_batch_check(self) -> Callable[[], bool] | None:
        """Return, when a batch block is open here, a check that says whether the code calling
        it runs inside that block still (None outside any block)."""
        return open_batch_check(self)

    def batch(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the groups submitted inside the block and send them on exit, atomically per
        table.

        Call ``submit`` inside the block (not from a task that starts later) and await the
        futures after it: they resolve only once the block's batch is written.
        """
        return batch_block(self)

    async def flush(self) -> None:
        """Wait until every write submitted so far was sent (or failed)."""
        for store in list(self.tables.values()):
            await store.writer.flush()

    async def close(self) -> None:
        """Send pending writes, then stop the writers and snapshots."""
        if self._closing:
            return
        self._closing = True
        for store in list(self.tables.values()):
            await store.close()
        if self._repairs:
            await asyncio.gather(*self._repairs, return_exceptions=True)
