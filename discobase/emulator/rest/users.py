"""Users, the application and gateway discovery: ``/users/@me``, ``/gateway``, ...

Layer: the emulator's REST side.
"""

from __future__ import annotations

from typing import Any

from ..errors import unknown
from .context import Context, Reply
from .fields import query_int, query_snowflake

__all__ = [
    "get_application",
    "get_current_user",
    "get_gateway",
    "get_gateway_bot",
    "get_my_guilds",
    "leave_guild",
]


async def get_current_user(ctx: Context) -> Reply:
    """``GET /users/@me``."""
    return Reply(200, ctx.render.current_user(ctx.bot))


async def get_my_guilds(ctx: Context) -> Reply:
    """``GET /users/@me/guilds``: ascending ids, ``before``/``after``/``limit`` 1-200."""
    limit = query_int(ctx, "limit", 200, 1, 200)
    before = query_snowflake(ctx, "before")
    after = query_snowflake(ctx, "after")
    with_counts = ctx.query.get("with_counts", "false").lower() in ("true", "1")
    guilds = ctx.state.guilds_for_bot(ctx.bot.id)
    if before is not None:
        guilds = [g for g in guilds if int(g.id) < before][-limit:]
    if after is not None:
        guilds = [g for g in guilds if int(g.id) > after]
    out = []
    for guild in guilds[:limit]:
        item: dict[str, Any] = {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "banner": None,
            "owner": guild.owner_id == ctx.bot.id,
            "permissions": str(ctx.state.guild_permissions(guild, ctx.bot.id)),
            "features": [],
        }
        if with_counts:
            item["approximate_member_count"] = len(guild.members)
            item["approximate_presence_count"] = 0
        out.append(item)
    return Reply(200, out)


async def leave_guild(ctx: Context) -> Reply:
    """``DELETE /users/@me/guilds/{guild_id}``: 204."""
    guild = ctx.state.guilds.get(ctx.params["guild_id"])
    if guild is None or ctx.bot.id not in guild.members:
        raise unknown("guild")
    ctx.state.remove_member(guild, ctx.bot.id)
    return Reply(204)


async def get_application(ctx: Context) -> Reply:
    """``GET /oauth2/applications/@me`` (and ``/applications/@me``)."""
    bot = ctx.bot
    user = ctx.render.user(bot.id)
    app: dict[str, Any] = {
        "id": bot.application_id,
        "name": bot.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot": user,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": 0,
        "flags_new": "0",
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "owner": ctx.render.user(bot.id),
        "approximate_guild_count": len(ctx.state.guilds_for_bot(bot.id)),
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "team": None,
        "eligible_oauth2_scopes": [],
        "rpc_origins": [],
        "tags": [],
    }
    return Reply(200, app)


async def get_gateway(ctx: Context) -> Reply:
    """``GET /gateway`` (no token needed)."""
    return Reply(200, {"url": ctx.gateway_url()})


async def get_gateway_bot(ctx: Context) -> Reply:
    """``GET /gateway/bot``: the URL, recommended shards and the identify budget."""
    return Reply(
        200,
        {
            "url": ctx.gateway_url(),
            "shards": 1,
            "session_start_limit": ctx.state.session_start_limit(ctx.bot),
        },
    )
