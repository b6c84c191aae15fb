"""What the database needs to know about its guilds, kept current by dispatches.

Gateway layer: plain data fed with :class:`DispatchEvent` payloads; knows nothing of sockets,
asyncio or storage. Ids are kept as the strings Discord sends (snowflakes arrive as JSON
strings and the HTTP client returns them so too), so nothing converts back and forth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["GatewayCache", "GuildState"]


@dataclass(slots=True)
class GuildState:
    """A guild the bot is in.

    Attributes:
        id: the guild's snowflake, as a string.
        name: the guild's name.
        channels: the guild's channels by id (string), each the channel object Discord sent,
            with ``guild_id`` filled in.
        unavailable: ``True`` during a Discord outage of this guild.
    """

    id: str
    name: str
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    unavailable: bool = False


class GatewayCache:
    """The bot user, its guilds and their channels, and whether the start-up is complete."""

    def __init__(self) -> None:
        self.user: dict[str, Any] | None = None
        self.guilds: dict[str, GuildState] = {}
        self.ready = False
        self._pending: set[str] = set()
        self._saw_ready = False

    def apply(self, name: str, data: Any) -> None:
        """Update the cache from one dispatch; unknown names and shapes are ignored."""
        if not isinstance(data, dict):
            return
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, data)
        self.ready = self._saw_ready and not self._pending

    def guild_available(self, guild_id: str) -> bool:
        """Return whether READY was seen and ``guild_id`` arrived and is not in an outage."""
        state = self.guilds.get(guild_id)
        return self._saw_ready and state is not None and not state.unavailable

    def _on_ready(self, data: dict[str, Any]) -> None:
        user = data.get("user")
        self.user = user if isinstance(user, dict) else self.user
        listed = {str(g["id"]) for g in data.get("guilds") or [] if isinstance(g, dict)}
        # A new session lists every guild again; ones it leaves out are gone.
        for gone in set(self.guilds) - listed:
            del self.guilds[gone]
        self._pending = set(listed)
        self._saw_ready = True

    def _on_guild_create(self, data: dict[str, Any]) -> None:
        guild_id = str(data.get("id", ""))
        if not guild_id:
            return
        if data.get("unavailable") is True:
            # An outage: Discord will send GUILD_CREATE again once the guild is back.
            state = self.guilds.get(guild_id)
            if state is not None:
                state.unavailable = True
            return
        channels: dict[str, dict[str, Any]] = {}
        for channel in data.get("channels") or []:
            if isinstance(channel, dict) and "id" in channel:
                channels[str(channel["id"])] = {**channel, "guild_id": guild_id}
        # Also how a guild comes back after an outage: the whole guild again, available.
        self.guilds[guild_id] = GuildState(guild_id, str(data.get("name", "")), channels)
        self._pending.discard(guild_id)

    def _on_guild_update(self, data: dict[str, Any]) -> None:
        state = self.guilds.get(str(data.get("id", "")))
        if state is not None and isinstance(data.get("name"), str):
            state.name = data["name"]

    def _on_guild_delete(self, data: dict[str, Any]) -> None:
        guild_id = str(data.get("id", ""))
        if data.get("unavailable") is True:
            state = self.guilds.get(guild_id)
            if state is not None:
                state.unavailable = True
            return
        # No ``unavailable`` key: the bot was removed from the guild.
        self.guilds.pop(guild_id, None)
        self._pending.discard(guild_id)

    def _on_channel_upsert(self, data: dict[str, Any]) -> None:
        state = self.guilds.get(str(data.get("guild_id", "")))
        if state is not None and "id" in data:
            state.channels[str(data["id"])] = data

    def _on_channel_delete(self, data: dict[str, Any]) -> None:
        state = self.guilds.get(str(data.get("guild_id", "")))
        if state is not None:
            state.channels.pop(str(data.get("id", "")), None)


_HANDLERS = {
    "READY": GatewayCache._on_ready,
    "GUILD_CREATE": GatewayCache._on_guild_create,
    "GUILD_UPDATE": GatewayCache._on_guild_update,
    "GUILD_DELETE": GatewayCache._on_guild_delete,
    "CHANNEL_CREATE": GatewayCache._on_channel_upsert,
    "CHANNEL_UPDATE": GatewayCache._on_channel_upsert,
    "CHANNEL_DELETE": GatewayCache._on_channel_delete,
}
