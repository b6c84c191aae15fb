"""``Database``: one guild as a database (public API layer: wires http, gateway and storage).

A ``Database`` owns, while it is logged in, an HTTP client, a gateway client and a storage
engine; it finds its guild, opens every registered table, feeds the gateway's message events
to storage and turns storage's write futures into tasks. Construction does no I/O, and the
three layers below are imported only when a login starts, so ``import discobase`` never loads
aiohttp. This module must not know the storage format nor the gateway protocol.

Lifecycle: ``new`` -> ``starting`` (login running) -> ``ready`` -> ``closed``; a failed
start goes to ``closed`` too, keeping the error for `Database.wait_ready()`. A closed
database may log in again.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from discobase._permissions import INVITE
from discobase.errors import (
    AmbiguousGuild,
    GuildNotFound,
    NotConnected,
    StartTimeout,
    TableNotBuilt,
    TableNotRegistered,
    TableRegistrationError,
    UsageError,
)

if TYPE_CHECKING:
    import asyncio
    import logging as _logging

    from discobase._binding import TableBinding, TableStoreLike
    from discobase._writetask import WriteTracker
    from discobase.gateway import GatewayClient, GatewayEvent
    from discobase.http import HTTPClient
    from discobase.storage import StorageEngine
    from discobase.table import Table
    from discobase.watch import ChangeHub, Watch

__all__ = ["DEFAULT_API_URL", "PERMISSIONS", "Database", "enable_logging", "invite_url"]


def _log() -> _logging.Logger:
    """Return the ``discobase`` logger (``logging`` is imported on first use, not at import)."""
    import logging

    return logging.getLogger("discobase")


DEFAULT_API_URL = "https://discord.com"

#: The permissions discobase needs in its guild: VIEW_CHANNEL, SEND_MESSAGES,
#: READ_MESSAGE_HISTORY, MANAGE_CHANNELS, MANAGE_MESSAGES (bulk delete of old log entries),
#: ATTACH_FILES (large batches and snapshots) and PIN_MESSAGES (snapshots are pinned):
#: 2251799813794832. Start-up checks all but MANAGE_MESSAGES (and MANAGE_CHANNELS only when
#: it must create a channel).
PERMISSIONS = INVITE

T = TypeVar("T", bound="Table")


def invite_url(application_id: int | str, permissions: int = PERMISSIONS) -> str:
    """Return the OAuth2 link that adds the bot to a server with the permissions it needs."""
    return (
        "https://discord.com/oauth2/authorize"
        f"?client_id={application_id}&scope=bot&permissions={permissions}"
    )


class Database:
    """A Discord guild used as a database.

    Args:
        name: the guild's exact name; the bot must be a member of it.
        guild_id: pick the guild by id instead (needed when several share the name).
        api_url: the Discord-compatible server to use, e.g. the local Discord's URL;
            defaults to ``$DISCOBASE_API_URL``, then to Discord itself.
        logging: attach a readable handler to the ``discobase`` logger (INFO and above).
            Otherwise discobase logs through the standard ``logging`` module and prints
            nothing.
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
        if not isinstance(name, str) or not name.strip():
            raise UsageError("a Database needs the name of its guild, a non-empty string")
        self.name = name
        self.guild_id: int | None = _guild_id(guild_id)
        self.api_url = (api_url or os.environ.get("DISCOBASE_API_URL") or DEFAULT_API_URL).rstrip(
            "/"
        )
        self.time_scale = _time_scale(time_scale)
        if not start_timeout > 0:
            raise UsageError(f"start_timeout must be positive, not {start_timeout!r}")
        self.start_timeout = float(start_timeout)
        if not (isinstance(gap_check_interval, int | float) and gap_check_interval > 0):
            raise UsageError(f"gap_check_interval must be positive, not {gap_check_interval!r}")
        self.gap_check_interval = float(gap_check_interval)
        if not isinstance(live, bool):
            raise UsageError(f"live must be True or False, not {live!r}")
        self.live = live
        if logging:
            enable_logging()
        self._tables: dict[str, TableBinding[Table]] = {}
        self._state = "new"
        self._runner: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None
        # Callers that will receive a failed start (login(), wait_ready()): when there are
        # some, the failure is theirs to handle and is not logged as well.
        self._receivers = 0
        self._http: HTTPClient | None = None
        self._gateway: GatewayClient | None = None
        self._gateway_task: asyncio.Task[None] | None = None
        self._engine: StorageEngine | None = None
        self._engine_open = False
        self._early_events: list[tuple[str, Any]] = []
        self._sessions = 0
        self._missed_while_starting = False
        # The database's guild is in a Discord outage (GUILD_DELETE "unavailable").
        self._guild_down = False
        # The writes storage has and that have not finished (made by the first write).
        self._writes: WriteTracker | None = None
        # Extensions' dispatch listeners (discobase.commands); see add_listener().
        self._listeners: list[Callable[[str, Any], None]] = []
        # Change feeds (discobase.watch), made by the first watch().
        self._hub: ChangeHub | None = None

    def __repr__(self) -> str:
        guild = f" guild_id={self.guild_id}" if self.guild_id is not None else ""
        return f"<Database name={self.name!r}{guild} state={self._state}>"

    # ------------------------------------------------------------------ tables

    @property
    def tables(self) -> dict[str, type[Table]]:
        """Return the registered tables by name."""
        return {name: binding.model for name, binding in self._tables.items()}

    @property
    def is_ready(self) -> bool:
        """Return whether the database is logged in and its tables are open."""
        return self._state == "ready"

    @property
    def damage(self) -> list[str]:
        """Return the damage this process found or repaired, oldest first, one line each.

        Each names the table, the channel and the message: a deleted entry written again, an
        entry missing from the log, an unreadable one skipped, a renamed catalog. The same
        lines go to the ``discobase.storage`` logger as warnings.
        """
        engine = self._engine
        return list(getattr(engine, "damage", ()))

    def table(self, model: type[T]) -> type[T]:
        """Register a ``Table`` subclass on this database (use as a class decorator).

        The table's name is the class name in lower case. A table registered after login
        must be built with ``await db.build_tables()`` before use.

        Raises:
            TableRegistrationError: not a ``Table`` subclass, a name already taken, a class
                already registered on another database, or a field named ``id``.
        """
        # Loaded here, not at import: the table module loads pydantic's model machinery,
        # most of `import discobase`'s time, and a program that defines tables has it anyway.
        from discobase._binding import TableBinding
        from discobase.table import Table, check_registrable

        if not isinstance(model, type) or not issubclass(model, Table) or model is Table:
            raise TableRegistrationError(
                f"@db.table takes a subclass of discobase.Table, not {model!r}"
            )
        current = model.__dict__.get("__discobase_binding__")
        if isinstance(current, TableBinding):
            if current.database is self:
                return model
            raise TableRegistrationError(
                f"{model.__name__} is already a table of {current.database!r}; "
                "a class belongs to one database: define a second class for the other one"
            )
        name = model.__name__.lower()
        if name in self._tables:
            raise TableRegistrationError(
                f"{self!r} already has a table named {name!r} "
                f"({self._tables[name].model.__qualname__}); table names come from class "
                "names in lower case and must be unique"
            )
        if "id" in model.model_fields:
            raise TableRegistrationError(
                f"{model.__name__} declares a field named 'id'; discobase gives every record "
                "its id (record.id), so pick another name"
            )
        from pydantic.errors import PydanticUserError

        try:
            # Table defers building validators (for import time); build now, so a type
            # pydantic cannot handle fails here as it would at class creation. Forward
            # references that are not defined yet stay allowed, as in pydantic.
            model.model_rebuild(raise_errors=False)
        except PydanticUserError as exc:
            raise TableRegistrationError(f"{model.__name__} cannot be a table: {exc}") from exc
        check_registrable(model, name)
        binding: TableBinding[Table] = TableBinding(self, model, name)
        model.__discobase_binding__ = binding
        self._tables[name] = binding
        return model

    async def build_tables(self) -> None:
        """Open every registered table that is not open yet; safe to call any number of times.

        Raises:
            NotConnected: the database is not logged in.
            SchemaMismatch: a table's stored schema is incompatible with its class.
        """
        self._check_loop("build_tables")
        if self._state != "ready" or self._engine is None:
            raise NotConnected(
                "build_tables() needs a logged-in database: call it inside "
                "`async with db.conn(token):` or after `await db.wait_ready()`"
            )
        await self._open_tables(self._engine)

    async def _open_tables(self, engine: StorageEngine) -> None:
        from discobase.storage import TableSpec

        # A table registered while another opens is picked up by the next round.
        while unbuilt := [b for b in self._tables.values() if b.store is None]:
            for binding in unbuilt:
                spec = TableSpec(
                    name=binding.name,
                    schema=binding.schema(),
                    fields=binding.has_default(),
                    indexes=binding.indexes,
                    renames=binding.renames,
                )
                store = await engine.open_table(spec)
                binding.store = store
                if self._hub is not None:
                    self._hub.attach(binding)
                _log().info("table %r ready (%d records)", binding.name, store.count())

    def _check_loop(self, call: str) -> None:
        """Refuse a call from another event loop than the one the database logged in from.

        Its tasks and futures belong to that loop: awaited from another one (a second
        thread's ``asyncio.run``) they would never complete there.

        Raises:
            UsageError: no running loop, or another one than the database's.
        """
        import asyncio  # loaded on use: `import discobase` stays light

        runner = self._runner
        if runner is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                f"db.{call}() was called with no running event loop; call it from a coroutine "
                "in the event loop the database logged in from"
            ) from None
        if running is not runner.get_loop():
            raise UsageError(
                f"db.{call}() was called from another event loop than the one {self!r} logged "
                "in from (a second thread's asyncio.run?); hand the call to that loop, for "
                "example with asyncio.run_coroutine_threadsafe"
            )

    def _store_for(self, binding: TableBinding[Any]) -> TableStoreLike:
        """Raise the error that says why ``binding`` has no store (called by Table)."""
        name = binding.model.__name__
        if self._state == "ready":
            raise TableNotBuilt(
                f"table {binding.name!r} was registered after login; "
                f"call `await db.build_tables()` before using {name}"
            )
        if self._state == "starting":
            raise NotConnected(
                f"the database is still starting; `await db.wait_ready()` before using {name}"
            )
        raise NotConnected(
            f"the database is not connected; use {name} inside `async with db.conn(token):` "
            "or after `db.login_task(token)` and `await db.wait_ready()`"
        )

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
        other programs that write the table first: records they write meanwhile are not
        rewritten. Register ``model`` after login (inside ``db.conn()``): a class whose
        table is incompatible stops ``conn()`` from opening.

        Args:
            model: a table registered on this database (open or not yet built).
            transform: old record -> new record (or ``None``); without it each record is
                validated as it is stored.

        Returns:
            How many records the table holds afterwards.

        Raises:
            NotConnected: the database is not ready.
            TableNotRegistered: ``model`` is not a table of this database.
            MigrationFailed: ``transform`` raised or returned a non-dict, a result did not
                fit ``model``, or the batch could not be written; the table is unchanged.
            UniqueConflict: the rewritten records would hold a unique value twice.
        """
        from discobase._binding import binding_of
        from discobase.migrate import migrate_table

        self._check_loop("migrate")
        engine = self._engine
        if self._state != "ready" or engine is None:
            raise NotConnected("db.migrate() needs a connected database (inside db.conn())")
        binding = binding_of(model)
        if binding.database is not self:
            raise TableNotRegistered(f"{model.__name__} is not a table of {self!r}")
        count = await migrate_table(engine, binding, transform)
        if self._hub is not None:  # the rewritten table's store is a new one: watch it too
            self._hub.attach(binding)
        return count

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
        if self._http is None:
            raise NotConnected("the database is not logged in: it has no HTTP client")
        return self._http

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
        if self._state != "ready" or self._engine is None:
            raise NotConnected("db.batch() needs a connected database (inside db.conn())")
        manager: AbstractAsyncContextManager[None] = self._engine.batch()
        return manager

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
        inside_batch = self._engine.open_batch_check() if self._engine is not None else None
        return writes.track(future, what, result, inside_batch)

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
        if self._state != "ready" or engine is None:
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

        _check_token(token)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise UsageError(
                "login_task() runs in an event loop: call it from a coroutine "
                "(for example inside asyncio.run(main()))"
            ) from None
        if self._runner is not None and not self._runner.done():
            raise UsageError("this database is already logged in (or logging in)")
        self._state = "starting"
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
                ``MissingPermissions`` naming each permission the bot lacks and where, ...).
        """
        import asyncio  # loaded on use: `import discobase` stays light

        self._check_loop("wait_ready")
        runner, ready = self._runner, self._ready
        if runner is None or ready is None:
            raise NotConnected("call db.login_task(token) (or use db.conn(token)) first")
        if self._state == "ready":
            return
        waiter = asyncio.ensure_future(ready.wait())
        self._receivers += 1
        try:
            await asyncio.wait({waiter, runner}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._receivers -= 1
            waiter.cancel()
        if self._state == "ready":
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
        _check_token(token)
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
        runner, closing = self._runner, self._closing
        if runner is None and self._state == "ready":
            await self._shutdown()  # attached with _use_storage()
            return
        if runner is None or closing is None or runner.done():
            return
        closing.set()
        if runner is asyncio.current_task():
            return
        if self._state == "starting":
            # Nothing is ready to flush yet, and a start may wait on Discord for long.
            runner.cancel()
        # Wait without taking the runner's error: login()'s caller or wait_ready() gets it.
        await asyncio.wait({runner})

    async def _use_storage(self, engine: StorageEngine) -> None:
        """Become ready over an already open storage engine, without Discord.

        The seam unit tests use to run tables over a fake engine: it skips login, the guild
        and the gateway, opens every registered table and leaves the database ready.
        """
        if self._state in ("starting", "ready"):
            raise UsageError("this database is already logged in (or logging in)")
        self._engine = engine
        self._engine_open = True
        self._state = "starting"
        try:
            await self._open_tables(engine)
        except BaseException:
            await self._shutdown()
            raise
        self._state = "ready"

    async def _run(self, token: str) -> None:
        try:
            await self._start(token)
            self._state = "ready"
            assert self._ready is not None
            self._ready.set()
            _log().info("database %r ready", self.name)
            await self._serve()
        finally:
            await self._shutdown()

    async def _start(self, token: str) -> None:
        import asyncio  # loaded on use: `import discobase` stays light

        # Imported here so that `import discobase` does not load aiohttp.
        from discobase.gateway import GatewayClient, Intents
        from discobase.http import HTTPClient
        from discobase.storage import StorageEngine

        http = self._http = HTTPClient(token, api_url=self.api_url, time_scale=self.time_scale)
        await http.open()
        me = await http.fetch_current_user()
        bot_id = int(me["id"])
        guild_id = await self._find_guild(http, bot_id)
        self.guild_id = guild_id
        _log().info("using guild %d for database %r", guild_id, self.name)

        engine = self._engine = StorageEngine(
            http,
            guild_id=guild_id,
            bot_id=bot_id,
            time_scale=self.time_scale,
            gap_check_interval=self.gap_check_interval,
        )
        if not self.live:
            # Scripts: no gateway session (no identify spent); the tables are read over REST.
            await self._open_without_gateway(engine)
            return
        gateway_bot = await http.fetch_gateway_bot()
        gateway = self._gateway = GatewayClient(
            token,
            url=gateway_bot["url"],
            # A bot reads its own messages' content without the privileged MESSAGE_CONTENT
            # intent, and only its own messages matter.
            intents=Intents.GUILDS | Intents.GUILD_MESSAGES,
            session_start_limit=gateway_bot.get("session_start_limit"),
            time_scale=self.time_scale,
        )
        gateway.add_listener(self._on_gateway_event)
        self._gateway_task = asyncio.get_running_loop().create_task(
            gateway.run(), name="discobase gateway"
        )
        # Listening before reading means no write by another process falls between the
        # tables' REST reads and the first event; storage applies an entry twice harmlessly.
        try:
            # Only the database's own guild matters: another guild's outage (sent as
            # unavailable at READY) must not hold the start back.
            async with asyncio.timeout(self.start_timeout):
                await _first_of(gateway.wait_guild(str(guild_id)), self._gateway_task)
        except TimeoutError:
            why = gateway.last_error
            down = (
                f"; guild {guild_id} is unavailable (a Discord outage)" if self._guild_down else ""
            )
            raise StartTimeout(
                f"the gateway was not ready after {self.start_timeout:g} s{down}"
                + (f"; last error: {why}" if why is not None else "")
            ) from why
        # Checks the bot's permissions in the catalog's channel before reading it, then in
        # every table's channel before opening any: a read without Read Message History
        # returns nothing, which would pass for an empty database.
        names = [b.name for b in self._tables.values() if b.store is None]
        await self._retrying(lambda: engine.open(tables=names), "opening the database")
        self._engine_open = True
        early, self._early_events = self._early_events, []
        for name, data in early:
            await engine.on_event(name, data)
        await self._retrying(lambda: self._open_tables(engine), "opening its tables")
        if self._missed_while_starting:
            self._missed_while_starting = False
            await self._catch_up(engine)

    async def _open_without_gateway(self, engine: StorageEngine) -> None:
        names = [b.name for b in self._tables.values() if b.store is None]
        await self._retrying(lambda: engine.open(tables=names), "opening the database")
        self._engine_open = True
        await self._retrying(lambda: self._open_tables(engine), "opening its tables")

    def _retry_delay(self, failures: int) -> float:
        """Return the real seconds to wait after ``failures`` transient failures in a row:
        doubling from ``_CATCH_UP_BASE`` up to ``_CATCH_UP_CAP`` Discord seconds, jittered."""
        import random

        ceiling = min(_CATCH_UP_CAP, _CATCH_UP_BASE * 2 ** (failures - 1))
        return float(ceiling * (0.5 + random.random() / 2) * self.time_scale)

    async def _retrying(self, attempt: Callable[[], Awaitable[None]], what: str) -> None:
        """Run ``attempt`` again while Discord fails transiently, within ``start_timeout``.

        A 5xx or a lost answer that outlasts the HTTP client's own retries should not end a
        start that a moment later would succeed; opening is safe to repeat (what was read is
        read again, what was created is found).
        """
        import asyncio  # loaded on use: `import discobase` stays light

        from discobase.http.errors import RateLimited, ServerError, TransportError

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        failures = 0
        while True:
            try:
                await attempt()
                return
            except (ServerError, TransportError, RateLimited) as exc:
                failures += 1
                delay = self._retry_delay(failures)
                if loop.time() + delay > deadline:
                    raise
                _log().warning("%s failed (%s); trying again in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)

    async def _serve(self) -> None:
        import asyncio  # loaded on use: `import discobase` stays light

        closing, gateway_task = self._closing, self._gateway_task
        assert closing is not None
        if gateway_task is None:  # live=False: nothing to serve but the tables' checks
            await closing.wait()
            return
        close_wait = asyncio.ensure_future(closing.wait())
        try:
            await asyncio.wait({close_wait, gateway_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            close_wait.cancel()
        if gateway_task.done() and not closing.is_set():
            # The gateway stopped on its own: a fatal close code, or the budget ran out.
            gateway_task.result()
            raise NotConnected("the gateway connection ended")

    async def _shutdown(self) -> None:
        import asyncio  # loaded on use: `import discobase` stays light

        was_ready = self._state == "ready"
        self._state = "closing"
        if self._writes is not None:
            await self._writes.wait()
        if self._hub is not None:
            self._hub.close()  # watchers end once they yielded what they hold
        for binding in self._tables.values():
            binding.store = None
        engine, gateway, gateway_task, http = (
            self._engine,
            self._gateway,
            self._gateway_task,
            self._http,
        )
        self._engine = self._gateway = self._gateway_task = self._http = None
        self._engine_open = False
        self._early_events = []
        self._sessions = 0
        self._missed_while_starting = False
        self._guild_down = False
        try:
            if engine is not None:
                await _quietly(engine.close(), "closing storage")
            if gateway is not None:
                await _quietly(gateway.close(), "closing the gateway")
            if gateway_task is not None:
                await asyncio.wait({gateway_task})
                if not gateway_task.cancelled() and gateway_task.exception() is not None:
                    _log().debug("gateway ended with %r", gateway_task.exception())
            if http is not None:
                await _quietly(http.close(), "closing the HTTP client")
        finally:
            self._state = "closed"
            if was_ready:
                _log().info("database %r closed", self.name)

    def _login_finished(self, runner: asyncio.Task[None]) -> None:
        if runner.cancelled():
            return
        exc = runner.exception()
        if exc is not None and not self._receivers:
            # Nobody may ever await a login_task(); its failure must still be seen.
            _log().error("database %r stopped: %s", self.name, exc, exc_info=exc)

    # ------------------------------------------------------------------ the guild

    async def _find_guild(self, http: HTTPClient, bot_id: int) -> int:
        from discobase.http.errors import HTTPException

        guilds = await http.fetch_my_guilds()
        if self.guild_id is not None:
            if any(int(g["id"]) == self.guild_id for g in guilds):
                return self.guild_id
            link = await self._invite_link(http, bot_id)
            raise GuildNotFound(
                f"the bot is not a member of guild {self.guild_id}; invite it with {link}"
            )
        named = [g for g in guilds if g.get("name") == self.name]
        if len(named) > 1:
            ids = ", ".join(str(g["id"]) for g in named)
            raise AmbiguousGuild(
                f"the bot is in {len(named)} guilds named {self.name!r} (ids {ids}); "
                f"pass guild_id= to Database to pick one"
            )
        if named:
            return int(named[0]["id"])
        try:
            created = await http.create_guild(self.name)
        except HTTPException as exc:
            if exc.status is None or exc.status >= 500 or exc.status in (401, 429):
                raise
            _log().debug("creating guild %r was refused: %s", self.name, exc)
        else:
            _log().info("created guild %r", self.name)
            return int(created["id"])
        link = await self._invite_link(http, bot_id)
        raise GuildNotFound(
            f"the bot is in no guild named {self.name!r}. Discord no longer lets bots create "
            "servers (since July 2025): create the server in Discord yourself, then add the "
            f"bot with {link}"
        )

    @staticmethod
    async def _invite_link(http: HTTPClient, bot_id: int) -> str:
        from discobase.http.errors import HTTPException

        try:
            application = await http.fetch_current_application()
            application_id = application["id"]
        except (HTTPException, KeyError, TypeError):
            # A bot's user id is its application's id for every application made since 2019.
            application_id = bot_id
        return invite_url(application_id)

    # ------------------------------------------------------------------ gateway events

    def _is_our_guild(self, data: Any) -> bool:
        return (
            isinstance(data, dict)
            and self.guild_id is not None
            and str(data.get("id")) == str(self.guild_id)
        )

    def _on_guild_delete(self, data: Any) -> None:
        if not self._is_our_guild(data):
            return
        if data.get("unavailable"):
            # An outage: Discord sends the guild again (GUILD_CREATE) once it is back.
            self._guild_down = True
            _log().warning(
                "guild %d (database %r) is unavailable (a Discord outage): live changes "
                "pause until it is back%s",
                self.guild_id,
                self.name,
                "" if self._state == "ready" else "; the database becomes ready then",
            )
            return
        # No "unavailable": the bot was removed from the guild.
        _log().error(
            "the bot was removed from guild %d (database %r): writes will fail until it "
            "is invited again",
            self.guild_id,
            self.name,
        )

    async def _on_guild_back(self, engine: StorageEngine | None) -> None:
        if not self._guild_down:
            return
        self._guild_down = False
        _log().warning("guild %d (database %r) is available again", self.guild_id, self.name)
        # Nothing of the guild was dispatched during the outage: read what was written.
        if self._state == "ready" and engine is not None:
            await self._catch_up(engine)
        else:
            self._missed_while_starting = True

    async def _on_gateway_event(self, event: GatewayEvent) -> None:
        from discobase.gateway import DispatchEvent

        engine = self._engine
        if isinstance(event, DispatchEvent):
            for listener in tuple(self._listeners):
                try:
                    listener(event.name, event.data)
                except Exception:
                    _log().exception("listener %r failed on %s", listener, event.name)
            if event.name == "GUILD_DELETE":
                self._on_guild_delete(event.data)
            elif event.name == "GUILD_CREATE" and self._is_our_guild(event.data):
                await self._on_guild_back(engine)
            if engine is None or not (
                event.name.startswith("MESSAGE_") or event.name == "CHANNEL_DELETE"
            ):
                return
            if not self._engine_open:
                self._early_events.append((event.name, event.data))
                return
            await engine.on_event(event.name, event.data)
            return
        self._sessions += 1
        if event.resumed or self._sessions == 1:
            return
        # A new session after the first: events may have been missed while away.
        if self._state == "ready" and engine is not None:
            _log().info("gateway reconnected with a new session; catching up")
            await self._catch_up(engine)
        else:
            # Tables still opening may have read past the gap already: catch up once open.
            self._missed_while_starting = True

    async def _catch_up(self, engine: StorageEngine) -> None:
        """Read what the gateway missed, trying again while Discord fails transiently.

        Runs in the gateway's listener task on purpose: later events wait until the gap is
        read, because storage reads on from the newest entry it has seen, and a live entry
        applied first would move that point past the missed ones. A catch-up given up after
        one failure would lose the gap's records until the next new session. Failures that
        waiting cannot cure (a corrupt entry, a missing permission) are raised (the gateway
        client logs them) instead of blocking live events for ever.
        """
        import asyncio  # loaded on use: `import discobase` stays light

        from discobase.http.errors import RateLimited, ServerError, TransportError

        attempt = 0
        while True:
            try:
                await engine.catch_up()
                return
            except (ServerError, TransportError, RateLimited) as exc:
                attempt += 1
                delay = self._retry_delay(attempt)
                _log().warning(
                    "catching up after a gateway gap failed (%s); trying again in %.1f s",
                    exc,
                    delay,
                )
            closing = self._closing
            if closing is None or closing.is_set() or self._state not in ("starting", "ready"):
                return
            try:
                async with asyncio.timeout(delay):
                    await closing.wait()
                return  # the database is closing: nothing left to catch up for
            except TimeoutError:
                pass


#: Discord seconds between catch-up attempts: doubling from the base up to the cap, jittered.
_CATCH_UP_BASE = 1.0
_CATCH_UP_CAP = 60.0


async def _first_of(awaitable: Any, task: asyncio.Task[None]) -> None:
    """Await ``awaitable`` unless ``task`` ends first, in which case raise why it ended."""
    import asyncio  # loaded on use: `import discobase` stays light

    waiter = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiter.done():
            waiter.cancel()
    if waiter.done() and not waiter.cancelled():
        waiter.result()
        return
    task.result()
    raise NotConnected("the gateway connection ended before it was ready")


async def _quietly(awaitable: Any, what: str) -> None:
    try:
        await awaitable
    except Exception as exc:
        _log().warning("%s failed: %s", what, exc)


def _check_token(token: object) -> None:
    if not isinstance(token, str) or not token:
        raise UsageError("login needs a bot token, a non-empty string")
    # The HTTP client's own check (whitespace around or inside it), before the login starts.
    from discobase.http.client import check_token

    check_token(token)


def _guild_id(value: object) -> int | None:
    """Check a ``guild_id`` argument: a snowflake, as an int or a string of digits."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif text is not None and text.isascii() and text.isdigit():
        number = int(text)
    else:
        raise UsageError(f"guild_id must be a guild's id (a snowflake: digits), not {value!r}")
    if not 0 < number < 1 << 64:
        raise UsageError(
            f"guild_id must be a guild's id (a positive 64-bit snowflake), not {value!r}"
        )
    return number


def _time_scale(value: float | None) -> float:
    if value is None:
        raw = os.environ.get("DISCOBASE_TIME_SCALE")
        try:
            value = float(raw) if raw else 1.0
        except ValueError:
            raise UsageError(f"DISCOBASE_TIME_SCALE must be a number, not {raw!r}") from None
    if not value > 0:
        raise UsageError(f"time_scale must be a positive number of seconds, not {value!r}")
    return float(value)


_handler: _logging.Handler | None = None


def _stderr_handler() -> _logging.Handler:
    """Return a handler that writes to ``sys.stderr`` as it is when a record is emitted.

    A plain ``StreamHandler()`` keeps the ``sys.stderr`` of the moment it was made, so
    output redirected later (pytest's capture, ``contextlib.redirect_stderr``, a daemon that
    swaps its streams) would still go to the old stream, or to a closed one.
    """
    import logging
    import sys

    class StderrHandler(logging.StreamHandler[Any]):
        @property
        def stream(self) -> Any:
            return sys.stderr

        @stream.setter
        def stream(self, value: Any) -> None:
            pass  # StreamHandler.__init__ and setStream() assign it; stderr is read at use

    return StderrHandler()


def enable_logging(level: int | None = None) -> None:
    """Attach a readable handler to the ``discobase`` logger (once per process).

    Args:
        level: the logger's level; INFO when not given.
    """
    import logging

    global _handler
    log = _log()
    if _handler is None:
        _handler = _stderr_handler()
        _handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
        log.addHandler(_handler)
    wanted = logging.INFO if level is None else level
    if log.level == logging.NOTSET or log.level > wanted:
        log.setLevel(wanted)
