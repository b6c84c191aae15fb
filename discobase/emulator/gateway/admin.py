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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from discobase import _json

if TYPE_CHECKING:
    from .server import GatewayServer

__all__ = ["add_admin_routes"]

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


def add_admin_routes(app: web.Application, server: GatewayServer, prefix: str) -> None:
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
        server.delay_dispatches(float(body.get("seconds", 0)))
        return _reply({})

    app.router.add_get(f"{prefix}/stats", stats)
    app.router.add_get(f"{prefix}/history", history)
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
    }
    for name, handler in routes.items():
        app.router.add_post(f"{prefix}/{name}", handler)
