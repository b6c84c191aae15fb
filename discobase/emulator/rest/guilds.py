"""Guilds: get one, one of its members, and the legacy guild creation that Discord removed in
July 2025.

Layer: the emulator's REST side.
"""

from __future__ import annotations

from ..errors import form_error, unknown
from .access import guild_for
from .context import Context, Reply

__all__ = ["create_guild", "get_guild", "get_member"]


async def get_guild(ctx: Context) -> Reply:
    """``GET /guilds/{guild_id}`` (``with_counts`` adds the approximate counts)."""
    guild = guild_for(ctx, ctx.params["guild_id"])
    payload = ctx.render.guild(guild)
    if ctx.query.get("with_counts", "false").lower() in ("true", "1"):
        payload["approximate_member_count"] = len(guild.members)
        payload["approximate_presence_count"] = 0
    return Reply(200, payload)


async def get_member(ctx: Context) -> Reply:
    """``GET /guilds/{guild_id}/members/{user_id}``: a member with its ``user`` (no intent
    needed over REST); 404 10007 for a user who is not a member."""
    guild = guild_for(ctx, ctx.params["guild_id"])
    user_id = ctx.params["user_id"]
    if user_id not in guild.members:
        raise unknown("member")
    return Reply(200, ctx.render.member(guild, user_id, with_user=True))


async def create_guild(ctx: Context) -> Reply:
    """``POST /guilds``, served only with ``allow_guild_create=True`` (legacy behaviour).

    The bot becomes the owner, as it did before Discord closed the endpoint to apps.
    """
    body = await ctx.json()
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not 2 <= len(name) <= 100:
        raise form_error("name", "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 100 in length.")
    guild = ctx.state.create_guild(name, [ctx.bot], owner=ctx.bot.id)
    return Reply(201, ctx.render.guild(guild))
