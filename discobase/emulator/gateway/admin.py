"""The gateway's admin API under ``/_emulator/gateway`` (emulator layer, gateway side).

Layer: the emulator's gateway. Thin JSON routes over :class:`.server.GatewayServer`'s fault
injection, so that a test in another process (or language) can break connections too. Not
part of Discord's API. Knows no sockets or sessions: every decision stays in the server.

Routes (all ``POST`` with an optional JSON body, except ``GET .../stats`` and
``GET .../history?bot_id=``):
``drop {bot_id?, close_code?}``, ``stop_acks {bot_id?}``, ``resume_acks``,
``reconnect {bot_id?, close_after?}``, ``invalid_session {resumable, bot_id?}``,
``request_heartbeat {bot_id?}``, ``delay_dispatches {seconds}``,
``refuse_connects {count?, url?}``, ``reconnect_before_hello {count?}``.

Dispatch faults (each answers ``{"fault": {...}}``), with the selectors
``{event?, bot_id?, guild_id?, count?, probability?}`` (``event`` a name or a list):
``withhold_dispatches``, ``duplicate_dispatches``, ``reorder_dispatches {window?, ...}``,
``delay_dispatches {seconds, ...}`` (with no selector: the slow gateway, answering ``{}``),
``clear_dispatch_faults``; ``GET .../dispatch_faults`` lists those in force. Guild outages:
``guild_outage {guild_id, seconds?}`` and ``guild_restore {guild_id}`` (both answer
``{"affected": sessions}``), ``unavailable_at_ready {guild_id, count?, seconds?}``.
A body the server refuses (an unknown selector, a probability above 1) gets 400.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from discobase import _json

if TYPE_CHECKING:
    from .server import GatewayServer

__all__ = ["ADMIN_PREFIX", "add_admin_routes"]

ADMIN_PREFIX = "/_emulator/gateway"

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_json.dumps(body), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    body = _json.loads(raw)
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _bot_id(body: dict[str, Any]) -> str | None:
    bot_id = body.get("bot_id")
    return None if bot_id is None else str(bot_id)


def _selectors(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - {"event", "bot_id", "guild_id", "count", "probability"}
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown fields: {sorted(unknown)}")
    return body


def _guild_id(body: dict[str, Any]) -> str:
    if body.get("guild_id") is None:
        raise web.HTTPBadRequest(text="guild_id is required")
    return str(body["guild_id"])


def _refusing_bad_values(handler: Handler) -> Handler:
    # The server validates (ValueError); over HTTP that is the caller's mistake: 400.
    async def guarded(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc

    return guarded


def add_admin_routes(
    app: web.Application, server: GatewayServer, prefix: str = ADMIN_PREFIX
) -> None:
    """Register the fault-injection and stats routes under ``prefix``."""

    async def stats(request: web.Request) -> web.Response:
        snapshot = server.stats()
        # JSON keys are strings; close codes are ints in Python.
        for key in ("close_codes", "client_close_codes"):
            snapshot[key] = {str(code): n for code, n in snapshot[key].items()}
        return _reply(snapshot)

    async def history(request: web.Request) -> web.Response:
        records = server.history(request.query.get("bot_id"))
        return _reply([record.as_dict() for record in records])

    async def drop(request: web.Request) -> web.Response:
        body = await _body(request)
        code = body.get("close_code")
        count = await server.drop(_bot_id(body), None if code is None else int(code))
        return _reply({"affected": count})

    async def stop_acks(request: web.Request) -> web.Response:
        server.stop_acks(_bot_id(await _body(request)))
        return _reply({})

    async def resume_acks(request: web.Request) -> web.Response:
        server.resume_acks()
        return _reply({})

    async def reconnect(request: web.Request) -> web.Response:
        body = await _body(request)
        after = body.get("close_after")
        count = await server.send_reconnect(_bot_id(body), None if after is None else float(after))
        return _reply({"affected": count})

    async def invalid_session(request: web.Request) -> web.Response:
        body = await _body(request)
        count = await server.send_invalid_session(bool(body.get("resumable")), _bot_id(body))
        return _reply({"affected": count})

    async def request_heartbeat(request: web.Request) -> web.Response:
        count = await server.request_heartbeat(_bot_id(await _body(request)))
        return _reply({"affected": count})

    async def refuse_connects(request: web.Request) -> web.Response:
        body = await _body(request)
        url = body.get("url")
        if url not in (None, "base", "resume"):
            raise web.HTTPBadRequest(text="url must be 'base', 'resume' or null")
        server.refuse_connects(int(body.get("count", 1)), url)
        return _reply({})

    async def reconnect_before_hello(request: web.Request) -> web.Response:
        server.reconnect_before_hello(int((await _body(request)).get("count", 1)))
        return _reply({})

    async def delay_dispatches(request: web.Request) -> web.Response:
        body = await _body(request)
        seconds = float(body.pop("seconds", 0))
        fault = server.delay_dispatches(seconds, **_selectors(body))
        return _reply({} if fault is None else {"fault": fault.as_dict()})

    async def withhold_dispatches(request: web.Request) -> web.Response:
        fault = server.withhold_dispatches(**_selectors(await _body(request)))
        return _reply({"fault": fault.as_dict()})

    async def duplicate_dispatches(request: web.Request) -> web.Response:
        fault = server.duplicate_dispatches(**_selectors(await _body(request)))
        return _reply({"fault": fault.as_dict()})

    async def reorder_dispatches(request: web.Request) -> web.Response:
        body = await _body(request)
        window = int(body.pop("window", 2))
        fault = server.reorder_dispatches(window, **_selectors(body))
        return _reply({"fault": fault.as_dict()})

    async def clear_dispatch_faults(request: web.Request) -> web.Response:
        server.clear_dispatch_faults()
        return _reply({})

    async def dispatch_faults(request: web.Request) -> web.Response:
        return _reply([fault.as_dict() for fault in server.dispatch_faults()])

    async def guild_outage(request: web.Request) -> web.Response:
        body = await _body(request)
        seconds = body.get("seconds")
        count = server.guild_outage(_guild_id(body), None if seconds is None else float(seconds))
        return _reply({"affected": count})

    async def guild_restore(request: web.Request) -> web.Response:
        return _reply({"affected": server.guild_restore(_guild_id(await _body(request)))})

    async def unavailable_at_ready(request: web.Request) -> web.Response:
        body = await _body(request)
        seconds = body.get("seconds")
        server.unavailable_at_ready(
            _guild_id(body), int(body.get("count", 1)), None if seconds is None else float(seconds)
        )
        return _reply({})

    app.router.add_get(f"{prefix}/stats", stats)
    app.router.add_get(f"{prefix}/history", history)
    app.router.add_get(f"{prefix}/dispatch_faults", dispatch_faults)
    routes: dict[str, Handler] = {
        "drop": drop,
        "stop_acks": stop_acks,
        "resume_acks": resume_acks,
        "reconnect": reconnect,
        "invalid_session": invalid_session,
        "request_heartbeat": request_heartbeat,
        "delay_dispatches": delay_dispatches,
        "refuse_connects": refuse_connects,
        "reconnect_before_hello": reconnect_before_hello,
        "withhold_dispatches": withhold_dispatches,
        "duplicate_dispatches": duplicate_dispatches,
        "reorder_dispatches": reorder_dispatches,
        "clear_dispatch_faults": clear_dispatch_faults,
        "guild_outage": guild_outage,
        "guild_restore": guild_restore,
        "unavailable_at_ready": unavailable_at_ready,
    }
    for name, handler in routes.items():
        app.router.add_post(f"{prefix}/{name}", _refusing_bad_values(handler))
