"""``Emulator``: the local Discord (REST, CDN, gateway, admin API) on one loopback port.

Layer: the emulator. Wires the state, clock, event bus, rate limiter, REST API, CDN, admin
API and the gateway server into one aiohttp application. Imports nothing from the client
packages (``discobase.http``, ``discobase.gateway``, ``discobase.storage``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .cdn import Cdn
from .cdn_faults import CdnFault
from .chaos import Chaos, ChaosRun, fault_summary
from .clock import Clock
from .events import EventBus
from .gateway import GatewayServer
from .interactions import InteractionStore
from .limits import LimitConfig, RateLimiter
from .link import Link
from .members import InteractionsMixin
from .models import Bot, Guild
from .rest.context import Backend, MiB
from .rest.dispatch import RestApi, json_response
from .rest.routes import CREATE_GUILD, ROUTES
from .state import State

__all__ = ["Emulator"]


class Emulator(InteractionsMixin):
    """A faithful local Discord for tests and offline use.

    Use it as an async context manager (or call ``start()``/``stop()``)::

        async with Emulator(time_scale=0.01) as emu:
            bot = emu.create_bot("db")
            guild_id = emu.create_guild("My db", bots=[bot])
            ...  # point a client at emu.url with bot.token

    Args:
        time_scale: Real seconds per Discord second; every window, expiry and interval
            shrinks by it (0.01: a 5-second window lasts 50 ms).
        host: Interface to listen on.
        port: TCP port (0: a free one; read ``url`` after start).
        data_dir: Keep the state in ``DIR/emulator.sqlite3`` across restarts.
        allow_guild_create: Serve the legacy ``POST /guilds`` (Discord removed it for bots
            on 2025-07-28; without this option it is an unknown route).
        attachment_url_lifetime: How long signed attachment URLs stay valid (Discord s).
        limits: Overrides of the rate-limit table (see ``LimitConfig.with_overrides``).
        max_file_size: Largest accepted file (Discord's default: 10 MiB).
        max_request_size: Largest accepted request body (Discord: 25 MiB).
        seed: Seeds ``random``, the one source every randomised fault draws from, so that a
            run with faults at random replays exactly (``None``: a fresh seed each run,
            kept in ``seed``).
        chaos: Make every failure Discord may produce happen at random: a rate for every
            kind (``0.05``), a mapping of per-kind rates or a :class:`Chaos` (None: none).
            See ``set_chaos``.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        allow_guild_create: bool = False,
        attachment_url_lifetime: float = 86_400.0,
        limits: Mapping[str, Any] | None = None,
        max_file_size: int = 10 * MiB,
        max_request_size: int = 25 * MiB,
        seed: int | None = None,
        chaos: Chaos | float | Mapping[str, Any] | None = None,
    ) -> None:
        self.time_scale = float(time_scale)
        self.seed = seed if seed is not None else random.randrange(2**32)
        self.random = random.Random(self.seed)
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.allow_guild_create = allow_guild_create
        self.max_file_size = max_file_size
        self.max_request_size = max_request_size
        self.clock = Clock(time_scale)
        self.events = EventBus()
        self.state = State(self.clock, self.events)
        self.limiter = RateLimiter(LimitConfig().with_overrides(limits))
        self.link = Link(self.clock)
        self.cdn = Cdn(
            self.state,
            self.clock,
            lambda: self.url,
            attachment_url_lifetime,
            rng=self.random,
            link=self.link,
        )
        self.state.render.sign_url = self.cdn.sign
        self.interactions = InteractionStore(self.state)
        backend = Backend(
            state=self.state,
            interactions=self.interactions,
            limiter=self.limiter,
            link=self.link,
            rng=self.random,
            gateway_url=self._gateway_url,
            max_file_size=max_file_size,
            max_request_size=max_request_size,
        )
        routes = ROUTES + ((CREATE_GUILD,) if allow_guild_create else ())
        self.rest = RestApi(backend, routes)
        self.gateway = GatewayServer(self)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._store: Any = None
        if self.data_dir is not None:
            from .persistence import SqliteStore

            self._store = SqliteStore(self.data_dir / "emulator.sqlite3")
            self._store.load_into(self.state, self.cdn)
        self.chaos_counts: Counter[str] = Counter()
        self._chaos: ChaosRun | None = None
        self.set_chaos(chaos)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the server's origin, ``http://HOST:PORT`` (after ``start()``)."""
        if self._url is None:
            raise RuntimeError("the emulator is not started; use `async with Emulator()`")
        return self._url

    def _address(self) -> tuple[str, int]:
        return self.host, self.port

    def _gateway_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/gateway"

    def build_app(self) -> web.Application:
        """Return the aiohttp application (REST, CDN, admin, gateway)."""
        from .admin import add_admin_routes
        from .admin_guard import admin_guard
        from .admin_interactions import add_interaction_routes
        from .gateway.admin import add_admin_routes as add_gateway_admin_routes

        app = web.Application(
            client_max_size=self.max_request_size + MiB, middlewares=[admin_guard(self._address)]
        )
        self.gateway.add_routes(app)
        add_gateway_admin_routes(app, self.gateway)
        self.cdn.add_routes(app)
        add_admin_routes(app, self)
        add_interaction_routes(app, self)
        app.router.add_route("*", "/api", self.rest.handle)
        app.router.add_route("*", "/api/{tail:.*}", self.rest.handle)
        app.router.add_route("*", "/{tail:.*}", _not_found)
        return app

    async def start(self) -> None:
        """Start listening; ``url`` is valid afterwards."""
        if self._runner is not None:
            return
        # Handlers finish in microseconds; a stop should not wait a minute for a stuck client.
        runner = web.AppRunner(
            self.build_app(), access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self.port = int(port)
        self._url = f"http://{shown}:{port}"
        if self._chaos is not None:
            self._chaos.start()

    async def stop(self) -> None:
        """Close gateway connections, stop serving and flush the store."""
        runner, self._runner = self._runner, None
        if self._chaos is not None:
            await self._chaos.stop()
        if runner is not None:
            await self.gateway.close()
            await runner.cleanup()
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- seeding -------------------------------------------------------------------------

    def create_bot(self, name: str = "discobase") -> Bot:
        """Register a bot; the result has ``.id``, ``.token`` and ``.application_id``."""
        return self.state.create_bot(name)

    def create_guild(
        self,
        name: str,
        bots: Iterable[Bot] = (),
        permissions: int | None = None,
        *,
        everyone_permissions: int = 0,
    ) -> str:
        """Create a guild (owned by a synthetic human) and return its id.

        Args:
            name: The guild's name.
            bots: Bots to add, each with its own role.
            permissions: That role's permission bits (default: ``permissions.BOT_DEFAULT``,
                what a database bot is invited with); pass fewer to test 403s.
            everyone_permissions: The @everyone role's bits (default 0).
        """
        guild = self.state.create_guild(
            name, bots, permissions=permissions, everyone_permissions=everyone_permissions
        )
        return guild.id

    def _guild(self, guild_id: str | int) -> Guild:
        guild = self.state.guilds.get(str(guild_id))
        if guild is None:
            raise KeyError(f"no guild {guild_id}")
        return guild

    def add_bot_to_guild(
        self, guild_id: str | int, bot: Bot, permissions: int | None = None
    ) -> None:
        """Add ``bot`` to a guild (it receives GUILD_CREATE)."""
        guild = self._guild(guild_id)
        if bot.id not in guild.members:
            self.state.add_member(guild, bot, permissions)

    def remove_bot_from_guild(self, guild_id: str | int, bot: Bot) -> None:
        """Remove ``bot`` from a guild (it receives GUILD_DELETE)."""
        self.state.remove_member(self._guild(guild_id), bot.id)

    def set_permissions(self, guild_id: str | int, bot: Bot, permissions: int) -> None:
        """Replace the permission bits of the bot's own role in a guild."""
        self.state.set_permissions(self._guild(guild_id), bot, permissions)

    # -- control -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Return the counters: requests, responses by status, 429s by scope, ..., gateway.

        ``faults`` sums up every injected fault (by hand or by chaos) by kind, with the
        names chaos gives the kinds (``rest_server_error``, ``cdn_truncated``,
        ``dispatch_withhold``, ``guild_outage``, ...) and a ``total``.
        """
        out = self.rest.stats.snapshot()
        out["cdn"] = self.cdn.stats()
        out["gateway"] = self.gateway.stats()
        out["faults"] = fault_summary(out, out["cdn"], out["gateway"], self.chaos_counts)
        return out

    @property
    def chaos(self) -> Chaos | None:
        """Return the chaos in force, or None."""
        return None if self._chaos is None else self._chaos.chaos

    def set_chaos(
        self, chaos: Chaos | float | Mapping[str, Any] | None, *, seed: int | None = None
    ) -> Chaos | None:
        """Make every failure Discord may produce happen at random, or stop that (None, 0).

        Per-message kinds (dispatches, downloads, requests) become probability faults added
        after those in force, drawn from ``random``; guild outages, socket drops and latency
        spikes are decided by a timer while the emulator serves. The previous chaos's faults
        are taken out first; faults set by hand stay. ``reset()`` keeps chaos (it puts its
        faults back), and ``clear_faults()`` and its siblings take chaos's faults of their
        family out until chaos is set again.

        Args:
            chaos: A rate for every kind, a mapping of ``Chaos`` fields, a ``Chaos``, or None.
            seed: Reseed ``random`` first (and ``seed``), to replay a run.

        Returns:
            The chaos now in force, or None.

        Raises:
            ValueError: an unknown kind or a rate outside 0..1.
        """
        wanted = Chaos.of(chaos)
        if seed is not None:
            self.seed = int(seed)
            self.random.seed(self.seed)
        if self._chaos is not None:
            self._chaos.remove()
            self._chaos.cancel()
            self._chaos = None
        if wanted is not None:
            self._chaos = ChaosRun(
                wanted,
                rng=self.random,
                rest=self.rest,
                cdn=self.cdn,
                gateway=self.gateway,
                link=self.link,
                clock=self.clock,
                guilds=self.state.guilds,
                counts=self.chaos_counts,
            )
            self._chaos.apply()
            if self._runner is not None:
                self._chaos.start()
        return wanted

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        count: int | None = None,
        after_write: bool = False,
        *,
        scope: str = "user",
        retry_after: float = 1.0,
        code: int | None = None,
        message: str | None = None,
        probability: float | None = None,
    ) -> None:
        """Answer ``status`` to the next ``count`` requests that match (or some, at random).

        Args:
            method: HTTP method (``"*"`` for any).
            path_regex: Searched in the path after ``/api/v10``, e.g.
                ``r"/channels/\\d+/messages"``.
            status: The status to answer (a 429 comes with a proper rate-limit body).
            count: How many requests to fail (None: the next one, or with a
                ``probability`` no limit). With a ``probability`` too: up to ``count``,
                each with that chance.
            after_write: Perform the request (store the write) and *then* answer the error:
                the "500 after the message was stored" case.
            scope: For a 429: ``"user"`` (a route bucket, with its headers), ``"global"``
                or ``"shared"`` (with the route bucket's headers too, ``Remaining`` usually
                above 0; not counted as an invalid request).
            retry_after: For a 429: the wait it asks for, in Discord seconds.
            code: The JSON ``code`` of the answer (default 0), e.g. 20028 (the channel write
                limit, with ``status=429``), 20029 (the server's) or 40333 (Cloudflare's
                block, with ``status=403``). A user-scope 429 with a code is a sub-limit and
                carries the route bucket's headers.
            message: The JSON ``message`` (default: Discord's for ``code``, else the
                generic one of the status).
            probability: Fail each matching request with this chance, drawn from
                ``random`` (the seeded source), until ``count`` have failed or
                ``clear_faults()``.

        Raises:
            ValueError: an unknown scope, a status below 400, or a bad count/probability.
        """
        self.rest.add_fault(
            method,
            path_regex,
            status,
            count,
            after_write,
            scope,
            retry_after,
            code=code,
            message=message,
            probability=probability,
        )

    def clear_faults(self) -> None:
        """Forget the pending ``fail_next`` faults (the CDN's stay; see ``clear_cdn_faults``)."""
        self.rest.clear_faults()

    def fail_cdn(
        self,
        kind: str,
        count: int | None = None,
        probability: float | None = None,
        *,
        status: int | None = None,
        path_regex: str | None = None,
        retry_after: float = 1.0,
        bytes_per_second: float = 16_384.0,
        fraction: float = 0.5,
    ) -> None:
        """Make attachment downloads fail, separately from the API's faults.

        Args:
            kind: ``"server_error"`` (5xx), ``"rate_limited"`` (429), ``"redirect"`` (to a
                fresh valid URL of the same file), ``"slow"`` (the body trickles),
                ``"truncated"`` (``Content-Length`` promises more than is sent, then the
                connection closes) or ``"expired"`` (the stale-URL refusal).
            count: How many downloads to fail (the next ones that would succeed; None: the
                next one, or with a ``probability`` no limit).
            probability: Fail each download with this chance, drawn from ``random`` (the
                seeded source), until ``count`` have failed or ``clear_cdn_faults()``.
            status: The status of a ``server_error`` (default 503), ``redirect`` (302) or
                ``expired`` (404; 403 also happens) answer.
            path_regex: Only downloads whose path this matches (default: any).
            retry_after: A 429's ``Retry-After``, in Discord seconds.
            bytes_per_second: A slow body's rate, in bytes per Discord second.
            fraction: The share of the file a truncated body sends, at least 0 and below 1.

        Raises:
            ValueError: an unknown kind, a status the kind cannot answer, or a bad number.
        """
        self.cdn.add_fault(
            CdnFault.build(
                kind,
                count,
                probability,
                status=status,
                path_regex=path_regex,
                retry_after=retry_after,
                bytes_per_second=bytes_per_second,
                fraction=fraction,
            )
        )

    def clear_cdn_faults(self) -> None:
        """Forget the pending ``fail_cdn`` faults (counters stay)."""
        self.cdn.clear_faults()

    def set_link(
        self, upload_bytes_per_second: float | None = None, latency: float | None = None
    ) -> None:
        """Make the client's link slow; each call replaces both settings.

        Args:
            upload_bytes_per_second: Receive request bodies at this rate, in bytes per
                Discord second (None: unlimited), so a client's upload really takes that long.
            latency: Delay every API and CDN answer by this many Discord seconds (None: none).

        Raises:
            ValueError: a bandwidth that is not positive or a negative latency.
        """
        self.link.set(upload_bytes_per_second, latency)

    def advance(self, seconds: float) -> None:
        """Move the Discord clock forward by ``seconds`` (for 14-day rules and expiries)."""
        self.clock.advance(seconds)

    def reset(self) -> None:
        """Forget counters, rate-limit windows, bans, faults, the slow link, guild outages and
        the detached gateway sessions (open connections keep theirs).

        Bots, guilds, channels and messages stay (``reset_data()`` wipes them too). Chaos
        stays in force: its faults are put back.
        """
        self.rest.reset()
        self.limiter.reset()
        self.gateway.reset()
        self.cdn.reset()
        self.link.reset()
        self.chaos_counts.clear()
        if self._chaos is not None:
            self._chaos.remove()
            self._chaos.apply()

    def reset_data(self) -> None:
        """Forget every bot, guild, channel, message, file, application command and
        interaction, and everything ``reset`` does."""
        self.reset()
        state = self.state
        for table in (state.bots, state.humans, state.guilds, state.channels, state.messages):
            table.clear()
        state.blobs.clear()
        state.blob_types.clear()
        state.reset_indexes()
        self.forget_interactions()
        if self._store is not None:
            self._store.clear()


async def _not_found(request: web.Request) -> web.Response:
    return json_response(404, {"message": "404: Not Found", "code": 0})
