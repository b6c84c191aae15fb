"""A database's logged-in half and its phases (public API layer: wires http, gateway and
storage).

`Phase` is where a ``Database`` is in its lifecycle: ``NEW`` -> ``STARTING`` (login running)
-> ``READY`` -> ``CLOSING`` -> ``CLOSED``; a failed start goes to ``CLOSED`` too, keeping the
error for ``Database.wait_ready()``. A closed database may log in again.

A `Connection` is what a database has only while it is logged in: the HTTP client, the
gateway client and its task, the storage engine, and how gateway events reach storage
(events held while storage opens, sessions seen, a guild outage, a catch-up owed after a gap).
A login makes one (`Connection.start`), `Connection.serve` runs it until the database closes
or the gateway ends for good, and `Connection.close` closes its three clients. It knows its
database only by its settings (`ConnectionOwner`) and what it handed over (`OwnerHooks`),
and must not know tables, the storage format or the gateway protocol. ``discobase.database``
imports this module, so it stays light: the layers below are imported only when a login
starts, and ``import discobase`` never loads aiohttp.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from discobase._logging import log as _log
from discobase.errors import NotConnected, StartTimeout

if TYPE_CHECKING:
    import asyncio

    from discobase.gateway import GatewayClient, GatewayEvent
    from discobase.http import HTTPClient
    from discobase.storage import StorageEngine

__all__ = ["Connection", "ConnectionOwner", "OwnerHooks", "Phase"]

#: Discord seconds between catch-up attempts: doubling from the base up to the cap, jittered.
_CATCH_UP_BASE = 1.0
_CATCH_UP_CAP = 60.0
#: How long after READY the guild's GUILD_CREATE may take before REST is asked whether the
#: guild is there: Discord seconds, and at least these real seconds (a loaded machine).
_GUILD_GRACE = 10.0
_GUILD_GRACE_FLOOR = 2.0


class Phase(enum.Enum):
    """Where a database is in its lifecycle (the values are what its repr shows)."""

    NEW = "new"
    STARTING = "starting"
    READY = "ready"
    CLOSING = "closing"
    CLOSED = "closed"


class ConnectionOwner(Protocol):
    """The database a connection serves, as the connection reads it (`Database` is the one):
    its settings, and which guild it is (found at login)."""

    name: str
    guild_id: int | None
    api_url: str
    time_scale: float
    start_timeout: float
    gap_check_interval: float
    live: bool


class OwnerHooks(NamedTuple):
    """What a connection asks of its database while it runs, handed over by the database.

    (A named tuple, not a dataclass: ``import discobase`` does not load dataclasses.)

    Attributes:
        phase: the database's phase now.
        listeners: the callbacks extensions added (the database's own list, read live).
        unbuilt_tables: the names of the registered tables that are not open yet.
        open_tables: opens every registered table that is not open yet.
    """

    phase: Callable[[], Phase]
    listeners: Sequence[Callable[[str, Any], None]]
    unbuilt_tables: Callable[[], list[str]]
    open_tables: Callable[[StorageEngine], Awaitable[None]]


class Connection:
    """What a database has only while it is logged in (see the module's docstring).

    Args:
        owner: the database's settings.
        hooks: what the connection asks of the database while it runs.
        closing: set when the database closes (its ``close()``); ``None`` for a connection
            over an already open engine (`over_storage`).

    Attributes:
        http: the HTTP client, once the login made it.
        gateway: the gateway client (``None`` for ``live=False``).
        gateway_task: the task running the gateway client.
        engine: the storage engine, once the guild is known.
        engine_open: whether the engine opened (events before that are held for it).
    """

    def __init__(
        self, owner: ConnectionOwner, hooks: OwnerHooks, closing: asyncio.Event | None = None
    ) -> None:
        self._owner = owner
        self._hooks = hooks
        self._closing = closing
        self.http: HTTPClient | None = None
        self.gateway: GatewayClient | None = None
        self.gateway_task: asyncio.Task[None] | None = None
        self.engine: StorageEngine | None = None
        self.engine_open = False
        self._early_events: list[tuple[str, Any]] = []
        self._sessions = 0
        self._missed_while_starting = False
        # The database's guild is in a Discord outage (GUILD_DELETE "unavailable").
        self._guild_down = False

    @classmethod
    def over_storage(
        cls, owner: ConnectionOwner, hooks: OwnerHooks, engine: StorageEngine
    ) -> Connection:
        """Return a connection to an already open storage engine, with no HTTP client or
        gateway (``Database._use_storage``, the seam unit tests use)."""
        connection = cls(owner, hooks)
        connection.engine = engine
        connection.engine_open = True
        return connection

    # ------------------------------------------------------------------ login

    async def start(self, token: str) -> None:
        """Log in, find the guild, connect the gateway, open storage and every table.

        Raises:
            InvalidToken, GuildNotFound, AmbiguousGuild, MissingPermissions, SchemaMismatch,
            StartTimeout, HTTPException, GatewayError: see ``Database.login()``.
        """
        import asyncio  # loaded on use: `import discobase` stays light

        # Imported here so that `import discobase` does not load aiohttp.
        from discobase._guild import find_guild
        from discobase.gateway import GatewayClient, Intents
        from discobase.http import HTTPClient
        from discobase.storage import StorageEngine

        owner = self._owner
        http = self.http = HTTPClient(token, api_url=owner.api_url, time_scale=owner.time_scale)
        await http.open()
        me = await http.fetch_current_user()
        bot_id = int(me["id"])
        guild_id = await find_guild(http, bot_id, owner.name, owner.guild_id)
        owner.guild_id = guild_id
        _log().info("using guild %d for database %r", guild_id, owner.name)

        engine = self.engine = StorageEngine(
            http,
            guild_id=guild_id,
            bot_id=bot_id,
            time_scale=owner.time_scale,
            gap_check_interval=owner.gap_check_interval,
        )
        if not owner.live:
            # Scripts: no gateway session (no identify spent); the tables are read over REST.
            await self._open_without_gateway(engine)
            return
        gateway_bot = await http.fetch_gateway_bot()
        gateway = self.gateway = GatewayClient(
            token,
            url=gateway_bot["url"],
            # A bot reads its own messages' content without the privileged MESSAGE_CONTENT
            # intent, and only its own messages matter.
            intents=Intents.GUILDS | Intents.GUILD_MESSAGES,
            session_start_limit=gateway_bot.get("session_start_limit"),
            time_scale=owner.time_scale,
        )
        gateway.add_listener(self._on_gateway_event)
        self.gateway_task = asyncio.get_running_loop().create_task(
            gateway.run(), name="discobase gateway"
        )
        # Listening before reading means no write by another process falls between the
        # tables' REST reads and the first event; storage applies an entry twice harmlessly.
        try:
            # Only the database's own guild matters: another guild's outage (sent as
            # unavailable at READY) must not hold the start back.
            async with asyncio.timeout(owner.start_timeout):
                await _first_of(self._our_guild(gateway, http, str(guild_id)), self.gateway_task)
        except TimeoutError:
            why = gateway.last_error
            down = (
                f"; guild {guild_id} is unavailable (a Discord outage)" if self._guild_down else ""
            )
            raise StartTimeout(
                f"the gateway was not ready after {owner.start_timeout:g} s{down}"
                + (f"; last error: {why}" if why is not None else "")
            ) from why
        # Checks the bot's permissions in the catalog's channel before reading it, then in
        # every table's channel before opening any: a read without Read Message History
        # returns nothing, which would pass for an empty database.
        names = self._hooks.unbuilt_tables()
        await self._retrying(lambda: engine.open(tables=names), "opening the database")
        self.engine_open = True
        early, self._early_events = self._early_events, []
        for name, data in early:
            await engine.on_event(name, data)
        await self._retrying(lambda: self._hooks.open_tables(engine), "opening its tables")
        if self._missed_while_starting:
            self._missed_while_starting = False
            await self._catch_up(engine)

    async def _our_guild(self, gateway: GatewayClient, http: HTTPClient, guild_id: str) -> None:
        """Wait until the database's guild is available in the gateway session.

        Discord may never send a dispatch, GUILD_CREATE included (facts 6.1; discord.js
        #8726): a guild that neither arrives nor is reported down (GUILD_DELETE
        "unavailable", an outage: it comes when the guild is back) within a grace after
        READY is read over REST instead. If it is there, the start goes on: storage reads
        over REST, and the session carries the guild's events all the same.
        """
        import asyncio

        from discobase.http.errors import HTTPException

        await gateway.wait_session()
        grace = max(_GUILD_GRACE * self._owner.time_scale, _GUILD_GRACE_FLOOR)
        while True:
            try:
                async with asyncio.timeout(grace):
                    await gateway.wait_guild(guild_id)
                return
            except TimeoutError:
                if self._guild_down:
                    continue
            try:
                await http.fetch_guild(guild_id)
            except HTTPException:
                continue
            _log().warning(
                "guild %s (database %r): no GUILD_CREATE %.1f s after READY (Discord lost "
                "it?), but REST answers for the guild: starting without it",
                guild_id,
                self._owner.name,
                grace,
            )
            return

    async def _open_without_gateway(self, engine: StorageEngine) -> None:
        names = self._hooks.unbuilt_tables()
        await self._retrying(lambda: engine.open(tables=names), "opening the database")
        self.engine_open = True
        await self._retrying(lambda: self._hooks.open_tables(engine), "opening its tables")

    def _retry_delay(self, failures: int) -> float:
        """Return the real seconds to wait after ``failures`` transient failures in a row:
        doubling from ``_CATCH_UP_BASE`` up to ``_CATCH_UP_CAP`` Discord seconds, jittered."""
        import random

        ceiling = min(_CATCH_UP_CAP, _CATCH_UP_BASE * 2 ** (failures - 1))
        return float(ceiling * (0.5 + random.random() / 2) * self._owner.time_scale)

    async def _retrying(self, attempt: Callable[[], Awaitable[None]], what: str) -> None:
        """Run ``attempt`` again while Discord fails transiently, within ``start_timeout``.

        A 5xx or a lost answer that outlasts the HTTP client's own retries should not end a
        start that a moment later would succeed; opening is safe to repeat (what was read is
        read again, what was created is found).
        """
        import asyncio  # loaded on use: `import discobase` stays light

        from discobase.http.errors import RateLimited, ServerError, TransportError

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._owner.start_timeout
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

    async def serve(self) -> None:
        """Run until the database closes; raise if the gateway ends on its own first."""
        import asyncio  # loaded on use: `import discobase` stays light

        closing, gateway_task = self._closing, self.gateway_task
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

    # ------------------------------------------------------------------ gateway events

    def _is_our_guild(self, data: Any) -> bool:
        owner = self._owner
        return (
            isinstance(data, dict)
            and owner.guild_id is not None
            and str(data.get("id")) == str(owner.guild_id)
        )

    def _on_guild_delete(self, data: Any) -> None:
        owner = self._owner
        if not self._is_our_guild(data):
            return
        if data.get("unavailable"):
            # An outage: Discord sends the guild again (GUILD_CREATE) once it is back.
            self._guild_down = True
            _log().warning(
                "guild %d (database %r) is unavailable (a Discord outage): live changes "
                "pause until it is back%s",
                owner.guild_id,
                owner.name,
                "" if self._hooks.phase() is Phase.READY else "; the database becomes ready then",
            )
            return
        # No "unavailable": the bot was removed from the guild.
        _log().error(
            "the bot was removed from guild %d (database %r): writes will fail until it "
            "is invited again",
            owner.guild_id,
            owner.name,
        )

    async def _on_guild_back(self, engine: StorageEngine | None) -> None:
        owner = self._owner
        if not self._guild_down:
            return
        self._guild_down = False
        _log().warning("guild %d (database %r) is available again", owner.guild_id, owner.name)
        # Nothing of the guild was dispatched during the outage: read what was written.
        if self._hooks.phase() is Phase.READY and engine is not None:
            await self._catch_up(engine)
        else:
            self._missed_while_starting = True

    async def _on_gateway_event(self, event: GatewayEvent) -> None:
        from discobase.gateway import DispatchEvent

        engine = self.engine
        if isinstance(event, DispatchEvent):
            for listener in tuple(self._hooks.listeners):
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
            if not self.engine_open:
                self._early_events.append((event.name, event.data))
                return
            await engine.on_event(event.name, event.data)
            return
        self._sessions += 1
        if event.resumed or self._sessions == 1:
            return
        # A new session after the first: events may have been missed while away.
        if self._hooks.phase() is Phase.READY and engine is not None:
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
            if (
                closing is None
                or closing.is_set()
                or self._hooks.phase() not in (Phase.STARTING, Phase.READY)
            ):
                return
            try:
                async with asyncio.timeout(delay):
                    await closing.wait()
                return  # the database is closing: nothing left to catch up for
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ close

    async def close(self) -> None:
        """Close storage, the gateway and the HTTP client, in that order (failures are logged).

        The connection is of no use afterwards: late gateway events find no engine.
        """
        import asyncio  # loaded on use: `import discobase` stays light

        engine, gateway, gateway_task, http = (
            self.engine,
            self.gateway,
            self.gateway_task,
            self.http,
        )
        self.engine = self.gateway = self.gateway_task = self.http = None
        self.engine_open = False
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
