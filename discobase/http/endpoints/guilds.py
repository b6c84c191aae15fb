"""Guilds, their members and channels (http layer).

Routes of ``routes.py``'s "Guilds and channels" section.
"""

from __future__ import annotations

from typing import Any

from discobase.http import routes
from discobase.http.endpoints.base import Endpoints

__all__ = ["GuildEndpoints"]


class GuildEndpoints(Endpoints):
    """Guilds, members and channels."""

    async def create_guild(self, name: str, **fields: Any) -> Any:
        """Create a guild (Discord removed this for bots in 2025; the emulator keeps it)."""
        return await self.request(routes.CREATE_GUILD.compile(), json={"name": name, **fields})

    async def fetch_guild(self, guild_id: int | str, *, with_counts: bool = False) -> Any:
        """Return a guild."""
        query = {"with_counts": True} if with_counts else None
        return await self.request(routes.GET_GUILD.compile(guild_id=guild_id), query=query)

    async def fetch_guild_member(self, guild_id: int | str, user_id: int | str) -> Any:
        """Return a member of a guild (its ``roles`` are role ids; no privileged intent)."""
        route = routes.GET_GUILD_MEMBER.compile(guild_id=guild_id, user_id=user_id)
        return await self.request(route)

    async def fetch_guild_channels(self, guild_id: int | str) -> Any:
        """Return a guild's channels (threads excluded)."""
        return await self.request(routes.LIST_GUILD_CHANNELS.compile(guild_id=guild_id))

    async def create_guild_channel(
        self,
        guild_id: int | str,
        *,
        name: str,
        type: int = 0,
        topic: str | None = None,
        parent_id: int | str | None = None,
        reason: str | None = None,
        **fields: Any,
    ) -> Any:
        """Create a channel in a guild and return it."""
        body: dict[str, Any] = {"name": name, "type": type, **fields}
        if topic is not None:
            body["topic"] = topic
        if parent_id is not None:
            body["parent_id"] = str(parent_id)
        route = routes.CREATE_GUILD_CHANNEL.compile(guild_id=guild_id)
        return await self.request(route, json=body, reason=reason)

    async def fetch_channel(self, channel_id: int | str) -> Any:
        """Return a channel."""
        return await self.request(routes.GET_CHANNEL.compile(channel_id=channel_id))

    async def edit_channel(
        self, channel_id: int | str, *, reason: str | None = None, **fields: Any
    ) -> Any:
        """Change a channel's fields and return it (renames have their own tiny limit)."""
        variant = routes.channel_edit_variant(fields)
        route = routes.UPDATE_CHANNEL.compile(variant, channel_id=channel_id)
        return await self.request(route, json=fields, reason=reason)

    async def delete_channel(self, channel_id: int | str, *, reason: str | None = None) -> Any:
        """Delete a channel and return it."""
        route = routes.DELETE_CHANNEL.compile(channel_id=channel_id)
        return await self.request(route, reason=reason)
