"""The admin API under ``/_emulator/``: seed bots and guilds, read stats, inject faults, reset.

Faults: ``POST``/``DELETE /_emulator/faults`` (the API's), ``POST``/``DELETE
/_emulator/cdn/faults`` (attachment downloads), ``GET``/``PUT /_emulator/link`` (a slow link),
``GET``/``POST``/``DELETE /_emulator/chaos`` (every kind at random, from a seed).

Layer: the emulator. For tests in another process (``discobase emulator`` running as a server).
It is not part of Discord's API and needs no token: the emulator listens on loopback, and
``admin_guard`` refuses requests not addressed to it or not JSON. Bot tokens are shown only
for one bot asked for by id (``GET /_emulator/bots/{id}``) or just created, never in a list.
The gateway's own admin routes live under ``/_emulator/gateway/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import orjson
from aiohttp import web

from .chaos import Chaos
from .clock import Clock
from .link import Link
from .models import Bot
from .state import State

__all__ = ["PREFIX", "BadRequest", "Controls", "add_admin_routes", "guarded", "json_body", "reply"]

PREFIX = "/_emulator"


def reply(body: Any, status: int = 200) -> web.Response:
    """Answer ``body`` as JSON (``Content-Type: application/json``)."""
    response = web.Response(status=status, body=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS))
    response.headers["Content-Type"] = "application/json"
    return response


class Controls(Protocol):
    """The part of ``Emulator``'s Python API that the admin API serves over HTTP.

    A protocol, not the ``Emulator`` class itself (house style keeps protocols for seams with
    a second implementation): the emulator builds this API, so naming its class here would
    make the two modules import each other. ``Emulator`` satisfies it, which mypy checks
    where the routes are added.
    """

    time_scale: float
    seed: int
    state: State
    clock: Clock
    link: Link

    @property
    def url(self) -> str: ...

    @property
    def chaos(self) -> Chaos | None: ...

    def stats(self) -> dict[str, Any]: ...

    def create_bot(self, name: str = ...) -> Bot: ...

    def create_guild(
        self,
        name: str,
        bots: Iterable[Bot] = ...,
        permissions: int | None = ...,
        *,
        everyone_permissions: int = ...,
    ) -> str: ...

    def add_bot_to_guild(
        self, guild_id: str | int, bot: Bot, permissions: int | None = ...
    ) -> None: ...

    def remove_bot_from_guild(self, guild_id: str | int, bot: Bot) -> None: ...

    def set_permissions(self, guild_id: str | int, bot: Bot, permissions: int) -> None: ...

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        count: int | None = ...,
        after_write: bool = ...,
        *,
        scope: str = ...,
        retry_after: float = ...,
        code: int | None = ...,
        message: str | None = ...,
        probability: float | None = ...,
    ) -> None: ...

    def clear_faults(self) -> None: ...

    def fail_cdn(
        self,
        kind: str,
        count: int | None = ...,
        probability: float | None = ...,
        *,
        status: int | None = ...,
        path_regex: str | None = ...,
        retry_after: float = ...,
        bytes_per_second: float = ...,
        fraction: float = ...,
    ) -> None: ...

    def clear_cdn_faults(self) -> None: ...

    def set_link(
        self, upload_bytes_per_second: float | None = ..., latency: float | None = ...
    ) -> None: ...

    def set_chaos(
        self, chaos: Chaos | float | Mapping[str, Any] | None, *, seed: int | None = ...
    ) -> Chaos | None: ...

    def advance(self, seconds: float) -> None: ...

    def reset(self) -> None: ...

    def reset_data(self) -> None: ...


class BadRequest(Exception):
    """The admin request itself is wrong (answered 400 with the message)."""


def _optional(body: dict[str, Any], key: str, kind: type[Any]) -> Any:
    """Return ``body[key]`` converted by ``kind``, or None when absent or null."""
    value = body.get(key)
    return None if value is None else kind(value)


async def json_body(request: web.Request) -> dict[str, Any]:
    """Return the request's JSON object body ({} when empty).

    Raises:
        BadRequest: the body is not a JSON object.
    """
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def add_admin_routes(app: web.Application, emu: Controls) -> None:
    """Register the admin endpoints on ``app``."""

    def bot_out(bot: Any, *, token: bool = False) -> dict[str, Any]:
        out = {"id": bot.id, "username": bot.username, "application_id": bot.application_id}
        if token:
            out["token"] = bot.token
        return out

    def bot_named(bot_id: Any) -> Any:
        bot = emu.state.bots.get(str(bot_id))
        if bot is None:
            raise BadRequest(f"no bot {bot_id}")
        return bot

    async def health(request: web.Request) -> web.Response:
        return reply({"ok": True, "url": emu.url, "time_scale": emu.time_scale, "seed": emu.seed})

    async def stats(request: web.Request) -> web.Response:
        return reply(emu.stats())

    async def list_bots(request: web.Request) -> web.Response:
        return reply([bot_out(b) for b in emu.state.bots.values()])

    async def get_bot(request: web.Request) -> web.Response:
        bot = emu.state.bots.get(request.match_info["bot_id"])
        if bot is None:
            return reply({"error": "no such bot"}, 404)
        return reply(bot_out(bot, token=True))

    async def create_bot(request: web.Request) -> web.Response:
        body = await json_body(request)
        bot = emu.create_bot(str(body.get("name", "discobase")))
        return reply(bot_out(bot, token=True), 201)

    async def list_guilds(request: web.Request) -> web.Response:
        return reply(
            [
                {"id": g.id, "name": g.name, "members": list(g.members)}
                for g in emu.state.guilds.values()
            ]
        )

    async def create_guild(request: web.Request) -> web.Response:
        body = await json_body(request)
        bots = [bot_named(b) for b in body.get("bots", [])]
        perms = body.get("permissions")
        guild_id = emu.create_guild(
            str(body.get("name", "discobase")),
            bots=bots,
            permissions=None if perms is None else int(perms),
            everyone_permissions=int(body.get("everyone_permissions", 0)),
        )
        return reply({"id": guild_id}, 201)

    async def add_bot(request: web.Request) -> web.Response:
        body = await json_body(request)
        perms = body.get("permissions")
        emu.add_bot_to_guild(
            request.match_info["guild_id"],
            bot_named(body.get("bot_id")),
            None if perms is None else int(perms),
        )
        return web.Response(status=204)

    async def remove_bot(request: web.Request) -> web.Response:
        emu.remove_bot_from_guild(
            request.match_info["guild_id"], bot_named(request.match_info["bot_id"])
        )
        return web.Response(status=204)

    async def set_permissions(request: web.Request) -> web.Response:
        body = await json_body(request)
        emu.set_permissions(
            request.match_info["guild_id"],
            bot_named(request.match_info["bot_id"]),
            int(body["permissions"]),
        )
        return web.Response(status=204)

    async def fault(request: web.Request) -> web.Response:
        body = await json_body(request)
        emu.fail_next(
            str(body.get("method", "*")),
            str(body["path_regex"]),
            int(body["status"]),
            count=_optional(body, "count", int),
            after_write=bool(body.get("after_write", False)),
            scope=str(body.get("scope", "user")),
            retry_after=float(body.get("retry_after", 1.0)),
            code=_optional(body, "code", int),
            message=_optional(body, "message", str),
            probability=_optional(body, "probability", float),
        )
        return web.Response(status=204)

    async def clear_faults(request: web.Request) -> web.Response:
        emu.clear_faults()
        return web.Response(status=204)

    async def cdn_fault(request: web.Request) -> web.Response:
        body = await json_body(request)
        emu.fail_cdn(
            str(body["kind"]),
            count=_optional(body, "count", int),
            probability=_optional(body, "probability", float),
            status=_optional(body, "status", int),
            path_regex=_optional(body, "path_regex", str),
            retry_after=float(body.get("retry_after", 1.0)),
            bytes_per_second=float(body.get("bytes_per_second", 16_384.0)),
            fraction=float(body.get("fraction", 0.5)),
        )
        return web.Response(status=204)

    async def clear_cdn_faults(request: web.Request) -> web.Response:
        emu.clear_cdn_faults()
        return web.Response(status=204)

    async def get_link(request: web.Request) -> web.Response:
        return reply(emu.link.snapshot())

    async def set_link(request: web.Request) -> web.Response:
        body = await json_body(request)
        emu.set_link(
            upload_bytes_per_second=_optional(body, "upload_bytes_per_second", float),
            latency=_optional(body, "latency", float),
        )
        return reply(emu.link.snapshot())

    def chaos_out() -> dict[str, Any]:
        chaos = emu.chaos
        return {"chaos": None if chaos is None else chaos.as_dict(), "seed": emu.seed}

    async def get_chaos(request: web.Request) -> web.Response:
        return reply(chaos_out())

    async def set_chaos(request: web.Request) -> web.Response:
        body = await json_body(request)
        seed = _optional(body, "seed", int)
        body.pop("seed", None)
        emu.set_chaos(body, seed=seed)
        return reply(chaos_out())

    async def clear_chaos(request: web.Request) -> web.Response:
        emu.set_chaos(None)
        return reply(chaos_out())

    async def reset(request: web.Request) -> web.Response:
        body = await json_body(request)
        if body.get("data"):
            emu.reset_data()
        else:
            emu.reset()
        return web.Response(status=204)

    async def advance(request: web.Request) -> web.Response:
        body = await json_body(request)
        emu.advance(float(body["seconds"]))
        return reply({"now": emu.clock.now()})

    handlers = {
        ("GET", ""): health,
        ("GET", "/stats"): stats,
        ("GET", "/bots"): list_bots,
        ("POST", "/bots"): create_bot,
        ("GET", "/bots/{bot_id}"): get_bot,
        ("GET", "/guilds"): list_guilds,
        ("POST", "/guilds"): create_guild,
        ("POST", "/guilds/{guild_id}/bots"): add_bot,
        ("DELETE", "/guilds/{guild_id}/bots/{bot_id}"): remove_bot,
        ("PUT", "/guilds/{guild_id}/bots/{bot_id}/permissions"): set_permissions,
        ("POST", "/faults"): fault,
        ("DELETE", "/faults"): clear_faults,
        ("POST", "/cdn/faults"): cdn_fault,
        ("DELETE", "/cdn/faults"): clear_cdn_faults,
        ("GET", "/link"): get_link,
        ("PUT", "/link"): set_link,
        ("GET", "/chaos"): get_chaos,
        ("POST", "/chaos"): set_chaos,
        ("DELETE", "/chaos"): clear_chaos,
        ("POST", "/reset"): reset,
        ("POST", "/advance"): advance,
    }
    for (method, path), handler in handlers.items():
        app.router.add_route(method, PREFIX + path, guarded(handler))


def guarded(handler: Any, *refusals: type[Exception]) -> Any:
    """Wrap an admin handler: a bad request (or one of ``refusals``) is answered 400."""
    caught: tuple[type[Exception], ...] = (BadRequest, KeyError, ValueError, TypeError, *refusals)

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except caught as exc:
            return reply({"error": str(exc) or type(exc).__name__}, 400)
        return response

    return run
