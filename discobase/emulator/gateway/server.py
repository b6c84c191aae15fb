"""The local gateway server: routes, sessions, fan-out and fault injection (emulator layer).

Layer: the emulator's gateway. It reads the emulator's state only through the contract in
ARCHITECTURE.md (``state.bot_by_token``, ``guilds_for_bot``, ``guild_create_payload``,
``session_start_limit``, ``record_identify``, ``guilds``, the user and member objects of
``state.render``, the event bus and the clock) and imports nothing from the client packages
(``discobase.http``, ``discobase.gateway``, storage).

Served at ``/gateway`` (the URL ``GET /gateway`` returns) and ``/gateway/resume`` (READY's
``resume_gateway_url``); both speak the same protocol, and the counters record which one each
connection used so that tests can check clients resume where Discord tells them to.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from aiohttp import web

from .codes import GUILD_PRESENCES, CloseCode
from .compression import UnsupportedCompression, new_compressor
from .config import GatewayConfig
from .connection import GatewayConnection
from .controls import DispatchFaultControls
from .delivery import Delivery
from .faults import FaultBook
from .limits import SlidingLog
from .protocol import (
    SUPPORTED_VERSIONS,
    Identify,
    Violation,
    in_shard,
    members_chunk,
    strip_message_content,
)
from .session import Session, SessionRegistry
from .stats import ConnectionRecord, GatewayCounters

__all__ = ["GatewayServer"]

HISTORY_LIMIT = 1_000
BASE_PATH = "/gateway"
RESUME_PATH = "/gateway/resume"


class GatewayServer(DispatchFaultControls):
    """Serve Discord's gateway websocket for one emulator.

    The dispatch-fault and guild-outage methods come from :class:`.controls.DispatchFaultControls`.

    Args:
        emulator: The owning emulator (its ``state``, ``events`` and ``clock``).
        config: Limits and intervals in Discord units; defaults follow Discord.
    """

    def __init__(self, emulator: Any, config: GatewayConfig | None = None) -> None:
        self._emulator = emulator
        self.config = config or GatewayConfig()
        self.counters = GatewayCounters()
        self.sessions = SessionRegistry()
        self.dispatch_delay = 0.0
        self._connections: set[GatewayConnection] = set()
        self._attached: dict[str, GatewayConnection] = {}
        self._identify_logs: dict[tuple[str, int], SlidingLog] = {}
        self._history: deque[ConnectionRecord] = deque(maxlen=HISTORY_LIMIT)
        self._refusals: list[str | None] = []
        self.early_reconnects = 0
        self._timers: set[asyncio.Task[None]] = set()
        self._subscribed = False
        self._closing = False
        # Dispatch faults draw chance only from the emulator's seeded source (replayable runs).
        self.delivery = Delivery(self, FaultBook(emulator.random))

    # -- wiring -----------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        """Real seconds per Discord second."""
        clock = getattr(self._emulator, "clock", None)
        scale: Any = getattr(clock, "time_scale", None)
        if scale is None:
            scale = getattr(self._emulator, "time_scale", 1.0)
        return float(scale)

    @property
    def _state(self) -> Any:
        return self._emulator.state

    def add_routes(self, app: web.Application) -> None:
        """Register the websocket routes on the emulator's application.

        The admin routes over this server's faults are ``admin.add_admin_routes``, which the
        emulator adds beside its own.
        """
        self._subscribe()
        app.router.add_get(BASE_PATH, self._serve_base)
        app.router.add_get(RESUME_PATH, self._serve_resume)

    def _subscribe(self) -> None:
        if not self._subscribed:
            self._emulator.events.subscribe(self._on_event)
            self._subscribed = True

    def stats(self) -> dict[str, Any]:
        """Return the counters plus what is live now (``open`` sockets, ``sessions``)."""
        out = self.counters.snapshot()
        try:
            self.sessions.expire(self._now(), self._session_ttl())
        except RuntimeError:  # no running loop: nothing can have expired since the last look
            pass
        out["open"] = len(self._connections)
        out["sessions"] = len(self.sessions)
        return out

    def history(self, bot_id: str | None = None) -> list[ConnectionRecord]:
        """Return what each connection did, oldest first (the last 1000; optionally one bot's).

        Tests of clients read heartbeat cadence (``heartbeats``, ``heartbeat_seqs``), send
        rates (``max_frames_in(window)``), the URL of each connect and how each one ended.
        """
        return [r for r in self._history if bot_id is None or r.bot_id == str(bot_id)]

    def reset(self) -> None:
        """Forget counters, history, identify limits, faults and every detached session.

        Live connections and their sessions are kept, so that a test can zero the counters
        while its client stays connected (tests call ``Emulator.reset()`` for exactly that).
        What dispatch faults held back is sent now, and every guild outage ends (sessions
        that were told a guild was down get its GUILD_CREATE), before the counters are zeroed.
        """
        self.delivery.reset()
        self.counters = GatewayCounters()
        self._history.clear()
        live = {id(conn.session) for conn in self._connections if conn.session is not None}
        for session in self.sessions:
            if id(session) not in live:
                self.sessions.end(session)
        for conn in self._connections:
            conn.acking = True
        self._identify_logs.clear()
        self._refusals.clear()
        self.early_reconnects = 0
        self.dispatch_delay = 0.0

    async def close(self) -> None:
        """Close every connection with 1001 (going away), as a restarting Discord would."""
        self._closing = True
        self.delivery.close()
        for task in list(self._timers):
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        await asyncio.gather(
            *(conn.close(CloseCode.GOING_AWAY, "emulator stopping") for conn in self._connections),
            return_exceptions=True,
        )

    # -- the websocket endpoints ---------------------------------------------------------

    async def _serve_base(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "base")

    async def _serve_resume(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "resume")

    async def _serve(self, request: web.Request, url_kind: str) -> web.StreamResponse:
        if self._take_refusal(url_kind):
            self.counters.refused_connects += 1
            return web.Response(status=503, text="refused by fault injection")
        # Discord does not negotiate permessage-deflate; its compression is in the payloads.
        ws = web.WebSocketResponse(
            timeout=self.config.close_timeout, max_msg_size=1 << 20, compress=False
        )
        await ws.prepare(request)
        query = request.query
        compression = query.get("compress") or "none"
        self.counters.connected(url_kind, compression)
        record = ConnectionRecord(url=url_kind, compression=compression)
        self._history.append(record)
        problem = _query_problem(query)
        if problem is not None:
            code, reason = problem
            record.server_close_code, record.open = int(code), False
            self.counters.server_close(code)
            await ws.close(code=code, message=reason.encode())
            return ws
        try:
            compressor = new_compressor(query.get("compress"))
        except UnsupportedCompression:
            record.server_close_code, record.open = int(CloseCode.UNKNOWN_ERROR), False
            self.counters.server_close(CloseCode.UNKNOWN_ERROR)
            await ws.close(code=CloseCode.UNKNOWN_ERROR, message=b"compression not served here")
            return ws
        conn = GatewayConnection(self, request, ws, url_kind, compressor, record)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)
        return ws

    # -- what connections ask of the server ----------------------------------------------

    def bot_by_token(self, token: str) -> Any:
        """Return the bot with ``token``, or None."""
        return self._state.bot_by_token(token)

    def session_start_limit(self, bot: Any) -> dict[str, Any]:
        """Return the bot's daily identify budget as ``GET /gateway/bot`` reports it."""
        limit: dict[str, Any] = self._state.session_start_limit(bot)
        return limit

    def take_identify_slot(self, bot: Any, shard_id: int, now: float) -> bool:
        """Count an identify against ``max_concurrency`` per 5 s; False if over the limit.

        Shards share a slot when ``shard_id % max_concurrency`` matches (Discord's buckets),
        so one bucket admits one identify per window.
        """
        concurrency = max(1, int(getattr(bot, "max_concurrency", 1)))
        key = (str(bot.id), shard_id % concurrency)
        log = self._identify_logs.get(key)
        window = self.config.identify_window * self.scale
        if log is None or log.window != window:
            log = self._identify_logs[key] = SlidingLog(1, window)
        # A refused identify does not count: Discord answers it with op 9 and nothing else.
        if not log.allows(now):
            return False
        log.record(now)
        return True

    def start_session(self, conn: GatewayConnection, bot: Any, identify: Identify) -> Session:
        """Open a session for an accepted IDENTIFY and queue READY and the GUILD_CREATEs."""
        self._state.record_identify(bot)
        bot_id = str(bot.id)
        session = self.sessions.create(
            bot_id, identify.intents, identify.shard, self.config.replay_limit
        )
        self.attach(conn, session)
        guild_ids = [str(g.id) for g in self._state.guilds_for_bot(bot_id)]
        guild_ids = [gid for gid in guild_ids if in_shard(gid, identify.shard)]
        conn.enqueue(
            session.next_payload(
                "READY", self._ready(bot, session, guild_ids, identify.shard_sent), replay=False
            )
        )
        for gid in guild_ids:
            # A guild down at READY gets GUILD_DELETE instead (gateway-events.mdx).
            if not self.delivery.starts_down(session, gid):
                self.delivery.deliver(
                    session, "GUILD_CREATE", self.guild_payload(session, gid), gid
                )
        return session

    def guild_payload(self, session: Session, guild_id: str) -> dict[str, Any]:
        """Return the full GUILD_CREATE of ``guild_id`` as ``session`` gets it."""
        guild = dict(self._state.guild_create_payload(guild_id, session.bot_id))
        guild["unavailable"] = False
        if session.intents & GUILD_PRESENCES:
            # With presences Discord lists every member of a (non-large) guild.
            guild["members"] = self._members(guild_id)
        return guild

    def in_guild(self, session: Session, guild_id: str) -> bool:
        """Return whether ``session``'s bot is in ``guild_id`` and its shard serves it."""
        mine = {str(g.id) for g in self._state.guilds_for_bot(session.bot_id)}
        return guild_id in mine and in_shard(guild_id, session.shard)

    def _ready(
        self, bot: Any, session: Session, guild_ids: Iterable[str], shard_sent: bool
    ) -> dict[str, Any]:
        ready: dict[str, Any] = {
            "v": 10,
            "user": self._user(bot),
            "guilds": [{"id": gid, "unavailable": True} for gid in guild_ids],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self._resume_url(),
            "application": {"id": str(bot.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ['["discobase-emulator-gateway",{"micros":0}]'],
        }
        if shard_sent:  # READY echoes the shard only when IDENTIFY named one
            ready["shard"] = list(session.shard)
        return ready

    def _user(self, bot: Any) -> dict[str, Any]:
        user: dict[str, Any] = dict(self._state.render.current_user(bot))
        return user

    def _resume_url(self) -> str:
        url = str(self._emulator.url)
        return "ws" + url[len("http") :] + RESUME_PATH if url.startswith("http") else url

    def request_guild_members(self, session: Session, d: Any) -> None:
        """Answer op 8 with one GUILD_MEMBERS_CHUNK per guild the bot is in.

        Raises:
            Violation: 4001 when ``d`` is not a member request.
        """
        if not isinstance(d, dict) or "guild_id" not in d:
            raise Violation(CloseCode.UNKNOWN_OPCODE, "REQUEST_GUILD_MEMBERS needs guild_id")
        requested = d["guild_id"] if isinstance(d["guild_id"], list) else [d["guild_id"]]
        mine = {str(g.id) for g in self._state.guilds_for_bot(session.bot_id)}
        for guild_id in (str(g) for g in requested):
            if guild_id in mine:
                payload = members_chunk(self._members(guild_id), guild_id, d)
                self.delivery.deliver(session, "GUILD_MEMBERS_CHUNK", payload, guild_id)

    def _members(self, guild_id: str) -> list[dict[str, Any]]:
        guild = self._state.guilds[guild_id]
        render = self._state.render
        return [render.member(guild, uid, with_user=True) for uid in guild.members]

    def resumable_session(self, session_id: str, bot_id: str, seq: int | None) -> Session | None:
        """Return the session a RESUME may take over, or None (unknown, foreign, bad seq)."""
        session = self.sessions.get(session_id, self._now(), self._session_ttl())
        if session is None or session.bot_id != bot_id or not session.can_resume_from(seq):
            return None
        return session

    def attached(self, session: Session) -> GatewayConnection | None:
        """Return the connection a session currently delivers to."""
        return self._attached.get(session.session_id)

    def attach(self, conn: GatewayConnection, session: Session) -> None:
        """Deliver the session's dispatches to ``conn`` from now on."""
        session.detached_at = None
        self._attached[session.session_id] = conn

    def detach(self, conn: GatewayConnection, *, ended: bool) -> None:
        """Stop delivering to ``conn``; the session stays resumable unless ``ended``."""
        session = conn.session
        if session is None:
            return
        if self._attached.get(session.session_id) is conn:
            del self._attached[session.session_id]
            session.detached_at = self._now()
        if ended:
            self.sessions.end(session)
        conn.session = None

    def forget(self, conn: GatewayConnection) -> None:
        """Drop a finished connection from the live set."""
        self._connections.discard(conn)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _session_ttl(self) -> float:
        return self.config.session_ttl * self.scale

    # -- fan-out -------------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        """Number, buffer and deliver one bus event to every session that should see it."""
        try:
            now = self._now()
        except RuntimeError:  # published outside a running loop: nobody is connected
            return
        self.sessions.expire(now, self._session_ttl())
        name = str(event.name)
        guild_id = None if event.guild_id is None else str(event.guild_id)
        guilds_of: dict[str, set[str]] = {}
        for session in self.sessions:
            if not self._wants(session, event, guilds_of):
                continue
            data = strip_message_content(name, event.data, session.bot_id, session.intents)
            if getattr(event, "target_bot_id", None) is not None and guild_id is not None:
                # The bot's own join or removal passes an outage: its view must stay true.
                if name == "GUILD_CREATE":
                    data = self.delivery.joined(session, guild_id, data)
                else:
                    session.unavailable.discard(guild_id)
            self.delivery.deliver(session, name, data, guild_id)

    def _wants(self, session: Session, event: Any, guilds_of: dict[str, set[str]]) -> bool:
        intent = getattr(event, "intent", None)
        if intent and not session.intents & int(intent):
            return False
        target = getattr(event, "target_bot_id", None)
        if target is not None:
            return str(target) == session.bot_id
        guild_id = getattr(event, "guild_id", None)
        if guild_id is None:
            return True
        if not in_shard(guild_id, session.shard):
            return False
        if session.bot_id not in guilds_of:
            guilds_of[session.bot_id] = {
                str(g.id) for g in self._state.guilds_for_bot(session.bot_id)
            }
        return str(guild_id) in guilds_of[session.bot_id]

    # -- fault injection -----------------------------------------------------------------

    def connections(self, bot_id: str | None = None) -> list[GatewayConnection]:
        """Return the open connections, or those of one bot (authenticated ones only)."""
        return [conn for conn in self._connections if bot_id is None or conn.bot_id == str(bot_id)]

    async def drop(self, bot_id: str | None = None, close_code: int | None = None) -> int:
        """Cut connections: with ``close_code`` None, without a close frame; else close with it.

        Returns:
            How many connections were affected: one already closing (by the heartbeat
            watchdog, say) is not, so a test's fault count matches what the client saw.
        """
        targets = [conn for conn in self.connections(bot_id) if not conn.closing]
        for conn in targets:
            if close_code is None:
                conn.drop()
            else:
                await conn.close(close_code, "closed by the emulator")
        return len(targets)

    def stop_acks(self, bot_id: str | None = None) -> None:
        """Stop answering heartbeats (a zombie connection from the client's point of view)."""
        for conn in self.connections(bot_id):
            conn.acking = False

    def resume_acks(self) -> None:
        """Answer heartbeats again on every connection."""
        for conn in self._connections:
            conn.acking = True

    async def send_reconnect(
        self, bot_id: str | None = None, close_after: float | None = None
    ) -> int:
        """Send op 7 RECONNECT; return how many connections got it.

        Args:
            bot_id: Only this bot's connections; None for all.
            close_after: Discord seconds after which the server closes a socket the client
                has not closed itself (with 4000, the session kept), as Discord may; None
                leaves it open.
        """
        targets = self.connections(bot_id)
        for conn in targets:
            await conn.send_reconnect()
            if close_after is not None:
                self._later(close_after, conn.close, CloseCode.UNKNOWN_ERROR, "reconnect")
        return len(targets)

    def _later(
        self, seconds: float, action: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        # The coroutine is made only when it is due, so a cancelled timer leaves none unawaited.
        async def run() -> None:
            await asyncio.sleep(seconds * self.scale)
            await action(*args)

        task = asyncio.create_task(run())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def send_invalid_session(self, resumable: bool, bot_id: str | None = None) -> int:
        """Send op 9 with ``d = resumable``; a non-resumable one ends the session."""
        targets = self.connections(bot_id)
        for conn in targets:
            await conn.send_invalid_session(resumable)
        return len(targets)

    async def request_heartbeat(self, bot_id: str | None = None) -> int:
        """Send op 1; each client must answer with a heartbeat at once."""
        targets = self.connections(bot_id)
        for conn in targets:
            await conn.request_heartbeat()
        return len(targets)

    def refuse_connects(self, count: int = 1, url: str | None = None) -> None:
        """Answer the next ``count`` websocket upgrades with HTTP 503 instead of a socket.

        Args:
            count: How many connection attempts to refuse.
            url: ``"base"`` or ``"resume"`` to refuse only on that URL; None for either.
        """
        if url not in (None, "base", "resume"):
            raise ValueError("url must be 'base', 'resume' or None")
        self._refusals.extend([url] * count)

    def _take_refusal(self, url_kind: str) -> bool:
        for i, url in enumerate(self._refusals):
            if url is None or url == url_kind:
                del self._refusals[i]
                return True
        return False

    def reconnect_before_hello(self, count: int = 1) -> None:
        """Send op 7 before HELLO on the next ``count`` connections (Discord may)."""
        self.early_reconnects += count

    def take_early_reconnect(self) -> bool:
        """Consume one pending op-7-before-HELLO; return whether there was one."""
        if self.early_reconnects <= 0:
            return False
        self.early_reconnects -= 1
        return True


def _query_problem(query: Any) -> tuple[int, str] | None:
    if query.get("v") not in SUPPORTED_VERSIONS:
        return CloseCode.INVALID_API_VERSION, "invalid API version"
    if query.get("encoding", "json") != "json":
        # ETF is a real Discord encoding the emulator does not speak.
        return CloseCode.DECODE_ERROR, "only encoding=json is served here"
    return None
