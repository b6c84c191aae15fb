"""``Database``: one guild as a database (public API layer: tables, lifecycle, settings).

A ``Database`` registers tables (``@db.table``), logs in and out, and is what the tables ask
for the tasks their writes return and for change feeds. What it has only while logged in (an
HTTP client, a gateway client and a storage engine, and how gateway events reach storage) is
its `Connection` (``discobase._connection``), and which guild it is, ``discobase._guild``.
Construction does no I/O, and the layers below are imported only when a login starts, so
``import discobase`` never loads aiohttp. This module must not know the storage format nor
the gateway protocol.

Lifecycle (`Phase`): ``NEW`` -> ``STARTING`` (login running) -> ``READY`` -> ``CLOSING`` ->
``CLOSED``; a failed start goes to ``CLOSED`` too, keeping the error for
`Database.wait_ready()`. A closed database may log in again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from discobase._connection import Connection, OwnerHooks, Phase
from discobase._event_loop import check_loop
from discobase._logging import enable_logging
from discobase._logging import log as _log
from discobase._removed import removed
from discobase.errors import NotConnected, TableNotRegistered, UsageError

if TYPE_CHECKING:
    import asyncio

    from discobase._binding import TableBinding, TableStoreLike
    from discobase._guild import PERMISSIONS, invite_url
    from discobase._settings import DEFAULT_API_URL
    from discobase._writetask import WriteTracker
    from discobase.http import HTTPClient
    from discobase.storage import StorageEngine
    from discobase.table import Table
    from discobase.watch import ChangeHub, Watch

__all__ = ["DEFAULT_API_URL", "PERMISSIONS", "Database", "enable_logging", "invite_url"]


def __getattr__(name: str) -> Any:
    # Names from modules `import discobase` does not load (the guild's, loaded at login; the
    # settings', by the first Database), loaded on first access.
    module = {"DEFAULT_API_URL": "_settings", "PERMISSIONS": "_guild", "invite_url": "_guild"}
    if name not in module:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = globals()[name] = getattr(importlib.import_module(f"discobase.{module[name]}"), name)
    return value


T = TypeVar("T", bound="Table")


class Database:
    """A Discord guild used as a database.

    Args:
        name: the guild's exact name; the bot must be a member of it.
        guild_id: pick the guild by id instead (needed when several share the name).
        api_url: the Discord-compatible server to use, e.g. the local Discord's URL;
            defaults to ``$DISCOBASE_API_URL``, then to Discord itself.
        logging: attach a readable handler to the ``discobase`` logger (INFO and above);
            without it, discobase adds no handler (docs/guide/logging.md: what still prints).
        time_scale: real seconds per Discord second, for the local Discord run faster than
            real time; defaults to ``$DISCOBASE_TIME_SCALE``, then to 1.0.
        start_timeout: real seconds the gateway may take to become ready at login before
            `wait_ready()` raises ``StartTimeout`` (the gateway client itself retries a
            lost connection for ever).
        gap_check_interval: Discord seconds between two reads of each open table's newest
            log entries over REST. Gateway events can be lost; this read finds what they
            missed, so a live process converges within it (one request per table each time
            when nothing is new: 240 an hour per table at the default). See
            docs/guarantees.md.
        live: open a gateway session to receive other processes' writes as they happen
            (the default). ``False`` opens none (no identify is spent: for scripts, cron jobs
            and serverless functions): the tables are read over REST at login, then every
            ``gap_check_interval`` and on `refresh()`; writes work as usual. See
            docs/real-discord.md, "One session or none".

    Example:
        ```python
        db = discobase.Database("My discord database")

        @db.table
        class User(discobase.Table):
            name: str

        async with db.conn(token):
            await User(name="Peter").save()
        ```
    """

    def __init__(
        self,
        name: str,
        *,
        guild_id: int | str | None = None,
        api_url: str | None = None,
        logging: bool = False,
        time_scale: float | None = None,
        start_timeout: float = 60.0,
        gap_check_interval: float = 15.0,
        live: bool = True,
    ) -> None:
        # Each argument is checked here, not at login.
        from discobase import _settings

        self.name = _settings.name_of(name)
        self.guild_id: int | None = _settings.guild_id_of(guild_id)
        self.api_url = _settings.api_url_of(api_url)
        self.time_scale = _settings.time_scale_of(time_scale)
        self.start_timeout = _settings.start_timeout_of(start_timeout)
        self.gap_check_interval = _settings.gap_check_interval_of(gap_check_interval)
        self.live = _settings.live_of(live)
        if logging:
            enable_logging()
        self._tables: dict[str, TableBinding[Table]] = {}
        self._phase = Phase.NEW
        self._runner: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None
        # Callers that will receive a failed start (login(), wait_ready()): when there are
        # some, the failure is theirs to handle and is not logged as well.
        self._receivers = 0
        self._connection: Connection | None = None  # only while logged in
        # The writes storage has and that have not finished (made by the first write).
        self._writes: WriteTracker | None = None
        # Extensions' dispatch listeners (discobase.commands); see add_listener().
        self._listeners: list[Callable[[str, Any], None]] = []
        # What the connection asks of this database while it runs (discobase._connection).
        self._hooks = OwnerHooks(
            lambda: self._phase, self._listeners, self._unbuilt_tables, self._open_tables
        )
        # Change feeds (discobase.watch), made by the first watch().
        self._hub: ChangeHub | None = None

    def __repr__(self) -> str:
        guild = f" guild_id={self.guild_id}" if self.guild_id is not None else ""
        return f"<Database name={self.name!r}{guild} state={self._phase.value}>"

    @property
    def _engine(self) -> StorageEngine | None:
        """Return the storage engine while logged in (unit tests and benches read it too)."""
        connection = self._connection
        return None if connection is None else connection.engine

    # ------------------------------------------------------------------ tables

    @property
    def tables(self) -> dict[str, type[Table]]:
        """Return the registered tables by name."""
        return {name: binding.model for name, binding in self._tables.items()}

    @property
    def is_ready(self) -> bool:
        """Return whether the database is logged in and its tables are open."""
        return self._phase is Phase.READY

    @property
    def damage(self) -> list[str]:
        """Return the damage this process found or repaired, oldest first, one line each.

        Each names the table, the channel and the message: a deleted entry written again, an
        entry missing from the log, an unreadable one skipped, a renamed catalog. The same
        lines go to the ``discobase.storage`` logger as warnings.
        """
        return list(getattr(self._engine, "damage", ()))

    def table(self, model: type[T]) -> type[T]:
        """Register a ``Table`` subclass on this database (use as a class decorator).

        The table's name is the class name in lower case. A table registered after login
        must be built with ``await db.build_tables()`` before use.

        Raises:
            TableRegistrationError: not a ``Table`` subclass, or a name, field or class it
                refuses (docs/guide/tables.md, "What @db.table refuses", lists them).
        """
        # Loaded here, not at import: registering loads the table module, and with it
        # pydantic's model machinery (see discobase._registry).
        from discobase._registry import register

        return register(self, self._tables, model)

    async def build_tables(self) -> None:
        """Open every registered table that is not open yet; safe to call any number of times.

        Raises:
            NotConnected: the database is not logged in.
            SchemaMismatch: a table's stored schema is incompatible with its class.
        """
        self._check_loop("build_tables")
        if self._phase is not Phase.READY or self._engine is None:
            raise NotConnected(
                "build_tables() needs a logged-in database: call it inside "
                "`async with db.conn(token):` or after `await db.wait_ready()`"
            )
        await self._open_tables(self._engine)

    def _unbuilt_tables(self) -> list[str]:
        """Return the names of the registered tables that are not open yet."""
        return [b.name for b in self._tables.values() if b.store is None]

    async def _open_tables(self, engine: StorageEngine) -> None:
        """Open every registered table that is not open yet (and watch it if wanted)."""
        from discobase._registry import open_unbuilt

        await open_unbuilt(self._tables, engine, self._table_opened)

    def _table_opened(self, binding: TableBinding[Any]) -> None:
        if self._hub is not None:
            self._hub.attach(binding)

    def _check_loop(self, call: str) -> None:
        """Refuse a call from another event loop than the one the database logged in from."""
        runner = self._runner
        if runner is not None:
            check_loop(f"db.{call}", self, runner.get_loop())

    if not TYPE_CHECKING:  # at run time only: a type checker still flags the name

        @property
        def clean(self) -> Any:
            raise removed(self, "clean")  # 1.0's name: the error says what replaced it

    def _store_for(self, binding: TableBinding[Any]) -> TableStoreLike:
        """Raise the error that says why ``binding`` has no store (called by Table)."""
        from discobase._registry import not_open

        raise not_open(binding, self._phase)

    async def migrate(
        self,
        model: type[Table],
        transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> int:
        """Rewrite a table so that every record fits ``model``, and record its schema.

        For the changes opening a table refuses (`SchemaMismatch` says which): each stored
        record is passed to ``transform`` as a JSON-mode dict (what is stored, without the
        id), and what it returns is validated by ``model`` and written back; ``None``
        deletes the record. Every record is written as one atomic batch, then the catalog
        records ``model``'s schema exactly (fields, types and indexes others declared and
        ``model`` lacks are dropped). If anything fails first, nothing is written. Stop the
        other programs that write the table first: a change they make while the batch is
        being written may be overwritten by it (a WARNING names the records). Register
        ``model`` after login: a class whose table is incompatible stops ``conn()``.

        Args:
            model: a table registered on this database (open or not yet built).
            transform: old record -> new record (or ``None``); without it each record is
                validated as it is stored.

        Returns:
            How many records the table holds afterwards.

        Raises:
            NotConnected: the database is not ready.
            TableNotRegistered: ``model`` is not a table of this database.
            UsageError: the table is being migrated already, or the call is in db.batch().
            MigrationFailed: ``transform`` raised or returned a non-dict, a result did not
                fit ``model``, or the batch could not be written; the table is unchanged.
            UniqueConflict: the rewritten records would hold a unique value twice.
        """
        from discobase._binding import binding_of
        from discobase.migrate import migrate_table

        self._check_loop("migrate")
        engine = self._engine
        if self._phase is not Phase.READY or engine is None:
            raise NotConnected("db.migrate() needs a connected database (inside db.conn())")
        binding = binding_of(model)
        if binding.database is not self:
            raise TableNotRegistered(f"{model.__name__} is not a table of {self!r}")
        try:
            return await migrate_table(engine, binding, transform)
        finally:  # the table's store is a new one, rewritten or not: its watchers follow it
            if self._phase is not Phase.READY:  # closed meanwhile: no store to follow
                binding.store = None  # (the shutdown let go of every other store)
            self._change_hub().attach(binding)

    # ------------------------------------------------------------------ extensions

    def add_listener(self, callback: Callable[[str, Any], None]) -> Callable[[], None]:
        """Call ``callback(name, data)`` for every gateway dispatch while logged in.

        The callback runs in the gateway's listener task before storage sees the event, so it
        must return at once (start a task for slow work); an exception it raises is logged.
        Kept across logins. ``discobase.commands`` receives ``INTERACTION_CREATE`` this way.

        Returns:
            A function that removes the listener.
        """
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return remove

    @property
    def http(self) -> HTTPClient:
        """Return the HTTP client of the logged-in database (and so its rate limiter).

        Raises:
            NotConnected: the database is not logged in.
        """
        http = None if self._connection is None else self._connection.http
        if http is None:
            raise NotConnected("the database is not logged in: it has no HTTP client")
        return http

    # ------------------------------------------------------------------ writes

    def batch(self) -> AbstractAsyncContextManager[None]:
        """Group every write made inside ``async with db.batch():`` into atomic batches.

        Changes to one table inside the block are written as one batch that readers apply
        all or nothing. The tasks the writes return complete after the block: do not await
        them inside it.

        Raises:
            NotConnected: the database is not ready.
        """
        self._check_loop("batch")
        if self._phase is not Phase.READY or self._engine is None:
            raise NotConnected("db.batch() needs a connected database (inside db.conn())")
        return self._engine.batch()

    def _track(self, future: asyncio.Future[Any], what: str, result: Any) -> asyncio.Task[Any]:
        """Return a task that completes with ``result`` once ``future`` (a write) does.

        Called by the tables for every write; ``close()`` waits for every pending one (see
        ``discobase._writetask.WriteTracker``).
        """
        writes = self._writes
        if writes is None:
            # Loaded on the first write: the module imports asyncio, which `import discobase`
            # does not.
            from discobase._writetask import WriteTracker

            writes = self._writes = WriteTracker()
        return writes.track(future, what, result, self._batch_check())

    def _batch_check(self) -> Callable[[], bool] | None:
        """Return the check of the batch block open around the caller, or ``None`` (none)."""
        return None if self._engine is None else self._engine.open_batch_check()

    # ------------------------------------------------------------------ reads

    def watch(self, *, max_pending: int = 100_000) -> Watch[Table]:
        """Return an async iterator of every table's changes, from now on.

        Each insert, update and delete applied in this process (its own writes, other
        processes' writes from the gateway, and what gap checks and catch-ups read) is
        yielded once as a `discobase.Change`, in the order this process applied them; see
        the live-sync guide for exactly what is guaranteed. Iteration ends when the
        database closes.

        Args:
            max_pending: changes held for a consumer that does not keep up; one more raises
                `WatchOverflow` in it (after those it holds).

        Raises:
            NotConnected: the database is not ready.
        """
        self._check_loop("watch")
        if not self.is_ready:
            raise NotConnected("db.watch() needs a connected database (inside db.conn())")
        from discobase.watch import watch_database

        return watch_database(self._change_hub(), max_pending)

    def _watch(self, binding: TableBinding[Any], fields: Mapping[str, Any]) -> Watch[Any]:
        """Return a watcher of one table's changes (see `Table.watch`; called by Table)."""
        from discobase.watch import watch_table

        return watch_table(self._change_hub(), binding, fields)

    def _change_hub(self) -> ChangeHub:
        """Return the database's change feeds (``discobase.watch``), made on first use."""
        hub = self._hub
        if hub is None:
            from discobase.watch import ChangeHub

            hub = self._hub = ChangeHub(self._tables)
        return hub

    async def refresh(self) -> None:
        """Read every open table's log from its read position now, and apply what is new.

        What a gap check does for one table, for all of them at once: a process without a
        gateway session (``live=False``) sees other processes' writes this way; a live one
        gets them within a second anyway. One request per table when nothing is new.

        Raises:
            NotConnected: the database is not ready.
            HTTPException: Discord refused a read.
        """
        self._check_loop("refresh")
        engine = self._engine
        if self._phase is not Phase.READY or engine is None:
            raise NotConnected("db.refresh() needs a connected database (inside db.conn())")
        for binding in list(self._tables.values()):
            store = binding.store
            check = getattr(store, "check", None)
            if check is not None:
                await check()

    # ------------------------------------------------------------------ lifecycle

    async def login(self, token: str) -> None:
        """Log in, open the guild and every table, and run until `close()`.

        Raises:
            InvalidToken: the token was refused.
            GuildNotFound, AmbiguousGuild: the guild cannot be determined.
            MissingPermissions: the bot lacks a permission discobase needs (nothing was read
                or written).
            SchemaMismatch: a table's stored schema conflicts with its class.
            HTTPException, GatewayError: Discord refused or failed for good.
        """
        runner = self.login_task(token)
        self._receivers += 1
        await runner

    def login_task(self, token: str) -> asyncio.Task[None]:
        """Start `login()` as a task the database keeps, and return it.

        Follow it with ``await db.wait_ready()``; await the task to keep the program running
        until the database is closed.

        Raises:
            UsageError: the database is already logged in or logging in.
        """
        import asyncio  # loaded on use: `import discobase` stays light

        from discobase._settings import check_token

        check_token(token)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                "login_task() runs in an event loop: call it from a coroutine "
                "(for example inside asyncio.run(main()))"
            ) from None
        if self._runner is not None and not self._runner.done():
            raise UsageError("this database is already logged in (or logging in)")
        self._phase = Phase.STARTING
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._receivers = 0
        runner = loop.create_task(self._run(token), name=f"discobase login {self.name!r}")
        runner.add_done_callback(self._login_finished)
        self._runner = runner
        return runner

    async def wait_ready(self) -> None:
        """Return once the guild and every registered table are ready.

        Raises:
            NotConnected: no login was started, or the database closed before it was ready.
            Exception: whatever made the start fail (``InvalidToken``, ``GuildNotFound``,
                ``MissingPermissions`` naming each permission the bot lacks and where, ...),
                or stopped a database that was ready (``GatewayError``), once it stopped.
        """
        import asyncio  # loaded on use: `import discobase` stays light

        self._check_loop("wait_ready")
        runner, ready = self._runner, self._ready
        if runner is None or ready is None:
            raise NotConnected("call db.login_task(token) (or use db.conn(token)) first")
        if self._phase is Phase.READY:
            return
        waiter = asyncio.ensure_future(ready.wait())
        self._receivers += 1
        try:
            await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
            if not self.is_ready and not runner.done() and self._batch_check() is None:
                # It was ready and is stopping (the event stays set): wait for its writes'
                # flush, or its error would only be logged. Not inside a batch block: the
                # stop waits for the block's writes, sent when it ends.
                await asyncio.wait({runner})
        finally:
            self._receivers -= 1
            waiter.cancel()
        if self.is_ready:  # (a property: the phase changed while waiting)
            return
        if runner.done() and not runner.cancelled() and runner.exception() is not None:
            failure = runner.exception()
            assert failure is not None
            raise failure
        raise NotConnected("the database was closed before it was ready")

    def conn(self, token: str) -> AbstractAsyncContextManager[Database]:
        """Log in for the duration of an ``async with`` block, ready on entry.

        The database is closed on exit, also when the block raises; pending writes are
        waited for first.
        """
        from discobase._settings import check_token

        check_token(token)
        return self._conn(token)

    @asynccontextmanager
    async def _conn(self, token: str) -> AsyncIterator[Database]:
        self.login_task(token)
        try:
            await self.wait_ready()
            yield self
        finally:
            await self.close()

    async def close(self) -> None:
        """Wait for pending writes, then disconnect; a no-op when not logged in."""
        import asyncio  # loaded on use: `import discobase` stays light

        self._check_loop("close")
        if self._batch_check() is not None:
            raise UsageError(
                "db.close() was called inside `async with db.batch()`: close() waits for the "
                "block's writes, which are sent when the block ends; close after the block"
            )
        runner, closing = self._runner, self._closing
        if runner is None and self._phase is Phase.READY:
            await self._shutdown()  # attached with _use_storage()
            return
        if runner is None or closing is None or runner.done():
            return
        closing.set()
        if runner is asyncio.current_task():
            return
        if self._phase is Phase.STARTING:
            # Nothing is ready to flush yet, and a start may wait on Discord for long.
            runner.cancel()
        # Wait without taking the runner's error: login()'s caller or wait_ready() gets it.
        await asyncio.wait({runner})

    async def _use_storage(self, engine: StorageEngine) -> None:
        """Become ready over an already open storage engine, without Discord.

        The seam unit tests use to run tables over a fake engine: it skips login, the guild
        and the gateway, opens every registered table and leaves the database ready.
        """
        if self._phase in (Phase.STARTING, Phase.READY):
            raise UsageError("this database is already logged in (or logging in)")
        self._connection = Connection.over_storage(self, self._hooks, engine)
        self._phase = Phase.STARTING
        try:
            await self._open_tables(engine)
        except BaseException:
            await self._shutdown()
            raise
        self._phase = Phase.READY

    async def _run(self, token: str) -> None:
        connection = self._connection = Connection(self, self._hooks, self._closing)
        try:
            await connection.start(token)
            self._phase = Phase.READY
            assert self._ready is not None
            self._ready.set()
            _log().info("database %r ready", self.name)
            await connection.serve()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        was_ready = self._phase is Phase.READY
        self._phase = Phase.CLOSING
        if self._writes is not None:
            await self._writes.wait()
        if self._hub is not None:
            self._hub.close()  # watchers end once they yielded what they hold
        for binding in self._tables.values():
            binding.store = None
        connection, self._connection = self._connection, None
        try:
            if connection is not None:
                await connection.close()
        finally:
            self._phase = Phase.CLOSED
            if was_ready:
                _log().info("database %r closed", self.name)

    def _login_finished(self, runner: asyncio.Task[None]) -> None:
        if runner.cancelled():
            return
        exc = runner.exception()
        if exc is not None and not self._receivers:
            # Nobody may ever await a login_task(); its failure must still be seen.
            _log().error("database %r stopped: %s", self.name, exc, exc_info=exc)
