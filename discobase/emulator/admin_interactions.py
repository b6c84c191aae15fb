"""The admin API for interactions: act as a server member from another process.

Layer: the emulator. Routes under ``/_emulator/`` (guarded like the rest of the admin API):

- ``POST /_emulator/guilds/{guild_id}/members`` ``{"name", "permissions"}``: a member, 201
  ``{"id"}``.
- ``GET /_emulator/guilds/{guild_id}/commands``: the commands registered in the guild.
- ``POST /_emulator/interactions/commands`` ``{"guild_id", "member", "name", "options",
  "channel_id", "bot_id", "override_permissions", "settle", "timeout"}``: invoke a slash
  command and answer what the app answered (see ``InteractionResult``).
- ``POST /_emulator/interactions/autocomplete`` ``{..., "options", "focused"}``: type into
  an option; ``choices`` holds the app's.
- ``POST /_emulator/interactions/clicks`` ``{"channel_id", "message_id", "custom_id",
  "member", "values"}``: click a button of an app's message.

An answer carries no interaction token: ``interaction`` is the payload with its token left
out. A request the Discord client would not send answers 400 ``{"error": ...}``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from .admin import PREFIX, guarded, json_body, reply
from .interactions import InteractionError, InteractionResult
from .members import InteractionsMixin

__all__ = ["add_interaction_routes"]


def result_out(result: InteractionResult) -> dict[str, Any]:
    """Return a result as JSON, without the interaction's token."""
    out = asdict(result)
    out["interaction"] = {k: v for k, v in result.interaction.items() if k != "token"}
    out["text"] = result.text()
    return out


def add_interaction_routes(app: web.Application, emu: InteractionsMixin) -> None:
    """Register the interaction admin endpoints on ``app``.

    Args:
        app: The emulator's application.
        emu: The emulator, through the members part of its Python API (``members.py``).
    """

    def bot_of(body: dict[str, Any]) -> Any:
        bot_id = body.get("bot_id")
        if bot_id is None:
            return None
        bot = emu.state.bots.get(str(bot_id))
        if bot is None:
            raise ValueError(f"no bot {bot_id}")
        return bot

    def optional_str(body: dict[str, Any], key: str) -> str | None:
        value = body.get(key)
        return None if value is None else str(value)

    async def create_member(request: web.Request) -> web.Response:
        body = await json_body(request)
        user_id = emu.create_member(
            request.match_info["guild_id"],
            str(body.get("name", "member")),
            int(body.get("permissions", 0)),
        )
        return reply({"id": user_id}, 201)

    async def list_commands(request: web.Request) -> web.Response:
        return reply(emu.guild_commands(request.match_info["guild_id"]))

    async def invoke(request: web.Request) -> web.Response:
        body = await json_body(request)
        timeout = body.get("timeout")
        result = await emu.invoke_command(
            str(body["guild_id"]),
            optional_str(body, "member"),
            str(body["name"]),
            body.get("options") or {},
            channel_id=optional_str(body, "channel_id"),
            bot=bot_of(body),
            override_permissions=bool(body.get("override_permissions", False)),
            settle=bool(body.get("settle", True)),
            timeout=None if timeout is None else float(timeout),
        )
        return reply(result_out(result))

    async def autocomplete(request: web.Request) -> web.Response:
        body = await json_body(request)
        result = await emu.autocomplete_result(
            str(body["guild_id"]),
            optional_str(body, "member"),
            str(body["name"]),
            body.get("options") or {},
            str(body["focused"]),
            channel_id=optional_str(body, "channel_id"),
            bot=bot_of(body),
        )
        return reply(result_out(result))

    async def click(request: web.Request) -> web.Response:
        body = await json_body(request)
        timeout = body.get("timeout")
        message = {"id": str(body["message_id"]), "channel_id": body.get("channel_id")}
        result = await emu.click(
            message,
            str(body["custom_id"]),
            optional_str(body, "member"),
            values=body.get("values"),
            settle=bool(body.get("settle", True)),
            timeout=None if timeout is None else float(timeout),
        )
        return reply(result_out(result))

    handlers = {
        ("POST", "/guilds/{guild_id}/members"): create_member,
        ("GET", "/guilds/{guild_id}/commands"): list_commands,
        ("POST", "/interactions/commands"): invoke,
        ("POST", "/interactions/autocomplete"): autocomplete,
        ("POST", "/interactions/clicks"): click,
    }
    for (method, path), handler in handlers.items():
        app.router.add_route(method, PREFIX + path, guarded(handler, InteractionError))
