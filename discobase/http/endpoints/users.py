"""The bot's own user and application, its guild list and the gateway URL (http layer).

Routes of ``routes.py``'s "Users, applications, gateway" section.
"""

from __future__ import annotations

from typing import Any

from discobase.http import routes
from discobase.http.endpoints.base import Endpoints

__all__ = ["UserEndpoints"]


class UserEndpoints(Endpoints):
    """The bot's user, application and guilds, and where its gateway is."""

    async def fetch_current_user(self) -> Any:
        """Return the bot's user object."""
        return await self.request(routes.GET_MY_USER.compile())

    async def fetch_current_application(self) -> Any:
        """Return the bot's application object."""
        return await self.request(routes.GET_MY_APPLICATION.compile())

    async def fetch_gateway_bot(self) -> Any:
        """Return the gateway URL, recommended shards and the identify budget."""
        return await self.request(routes.GET_BOT_GATEWAY.compile())

    async def fetch_my_guilds(self) -> list[Any]:
        """Return every guild the bot is in (all pages, ascending by id)."""
        guilds: list[Any] = []
        after: str | None = None
        while True:
            page = await self.request(
                routes.LIST_MY_GUILDS.compile(), query={"limit": 200, "after": after}
            )
            if not isinstance(page, list):
                return guilds
            guilds.extend(page)
            if len(page) < 200:
                return guilds
            after = str(max(int(g["id"]) for g in page))

    async def leave_guild(self, guild_id: int | str) -> None:
        """Leave a guild."""
        await self.request(routes.LEAVE_GUILD.compile(guild_id=guild_id))
