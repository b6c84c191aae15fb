"""Look up the resources a request names and check the bot may touch them.

Layer: the emulator's REST side. Raises the API errors Discord answers with: 404 for what does
not exist, 403 50001 for what the bot cannot see, 403 50013 for a missing permission.
"""

from __future__ import annotations

from ..errors import missing_access, missing_permissions, unknown
from ..models import Channel, Guild, Message
from ..permissions import VIEW_CHANNEL
from .context import Context

__all__ = ["channel_for", "guild_for", "message_in", "require"]


def guild_for(ctx: Context, guild_id: str) -> Guild:
    """Return the guild if it exists and the bot is a member."""
    guild = ctx.state.guilds.get(guild_id)
    if guild is None:
        raise unknown("guild")
    if ctx.bot.id not in guild.members:
        raise missing_access()
    return guild


def channel_for(ctx: Context, channel_id: str, need: int = 0) -> Channel:
    """Return the channel if the bot can see it and holds the ``need`` bits there."""
    channel = ctx.state.channels.get(channel_id)
    if channel is None:
        raise unknown("channel")
    perms = ctx.state.permissions_in(channel, ctx.bot.id)
    if not perms & VIEW_CHANNEL:
        raise missing_access()
    if perms & need != need:
        raise missing_permissions()
    return channel


def require(ctx: Context, channel: Channel, need: int) -> None:
    """Raise 50013 unless the bot holds every bit of ``need`` in ``channel``."""
    if ctx.state.permissions_in(channel, ctx.bot.id) & need != need:
        raise missing_permissions()


def message_in(ctx: Context, channel: Channel, message_id: str) -> Message:
    """Return the message with ``message_id`` in ``channel`` (404 10008 otherwise)."""
    message = ctx.state.messages.get(int(message_id))
    if message is None or message.channel_id != channel.id:
        raise unknown("message")
    return message
