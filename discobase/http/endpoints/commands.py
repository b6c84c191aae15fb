"""Application commands, global and per guild (http layer).

Routes of ``routes.py``'s "Application commands" section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from discobase.http import routes
from discobase.http.endpoints.base import Endpoints

__all__ = ["ApplicationCommandEndpoints"]


class ApplicationCommandEndpoints(Endpoints):
    """The application's slash commands."""

    async def fetch_global_application_commands(self, application_id: int | str) -> Any:
        """Return the application's global commands."""
        route = routes.LIST_GLOBAL_APPLICATION_COMMANDS.compile(application_id=application_id)
        return await self.request(route)

    async def bulk_overwrite_global_application_commands(
        self, application_id: int | str, commands: Sequence[Mapping[str, Any]]
    ) -> Any:
        """Replace every global command of the application; return the stored list."""
        route = routes.BULK_OVERWRITE_GLOBAL_APPLICATION_COMMANDS.compile(
            application_id=application_id
        )
        return await self.request(route, json=[dict(c) for c in commands])

    async def fetch_guild_application_commands(
        self, application_id: int | str, guild_id: int | str
    ) -> Any:
        """Return the application's commands in one guild."""
        route = routes.LIST_GUILD_APPLICATION_COMMANDS.compile(
            application_id=application_id, guild_id=guild_id
        )
        return await self.request(route)

    async def bulk_overwrite_guild_application_commands(
        self,
        application_id: int | str,
        guild_id: int | str,
        commands: Sequence[Mapping[str, Any]],
    ) -> Any:
        """Replace every command of the application in one guild; return the stored list.

        An empty list removes them all. A PUT replaces the whole set, so a retry is safe.
        """
        route = routes.BULK_OVERWRITE_GUILD_APPLICATION_COMMANDS.compile(
            application_id=application_id, guild_id=guild_id
        )
        return await self.request(route, json=[dict(c) for c in commands])

    async def create_guild_application_command(
        self, application_id: int | str, guild_id: int | str, command: Mapping[str, Any]
    ) -> Any:
        """Create (or replace, by name) one command in a guild and return it."""
        route = routes.CREATE_GUILD_APPLICATION_COMMAND.compile(
            application_id=application_id, guild_id=guild_id
        )
        return await self.request(route, json=dict(command))

    async def delete_guild_application_command(
        self, application_id: int | str, guild_id: int | str, command_id: int | str
    ) -> None:
        """Delete one command of a guild."""
        route = routes.DELETE_GUILD_APPLICATION_COMMAND.compile(
            application_id=application_id, guild_id=guild_id, command_id=command_id
        )
        await self.request(route)
