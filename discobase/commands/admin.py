"""``AdminCommands``: administer a database from Discord with slash commands.

Layer: above the public API (``Database``, ``Table``, the operators) and the HTTP client;
knows nothing of storage or of the gateway protocol. Interactions arrive through
``Database.add_listener`` as raw ``INTERACTION_CREATE`` dispatches and are answered through
the database's own HTTP client, so every write takes the same path as ``save()`` (the same
validation, storage and rate limiter).

Safety, in order: commands exist only in the database's own guild and only once registered;
``default_member_permissions`` hides them from members without Manage Server (by default);
each interaction's ``member.permissions`` is checked again before anything is read or written;
``/clear`` asks the same member to confirm with a button; answers that show records are
ephemeral unless ``public`` is chosen; every failure is answered with a readable message.

This module holds registration, listening and the answer to every failure. Beside it:
``handlers.py`` (what each command and button does), ``views.py`` (paged answers and pending
confirmations), ``autocomplete.py``, ``checks.py`` (permissions, table and field lookups, the
``Refused`` they raise), ``interaction.py`` (reading the payload), ``render.py`` (embeds),
``responder.py`` (answering in time) and ``definitions.py`` (the commands as registered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from discobase.commands import interaction
from discobase.commands.checks import Refused
from discobase.commands.definitions import COMMAND_NAMES, MANAGE_GUILD, definitions
from discobase.commands.handlers import CommandHandlers
from discobase.commands.interaction import APPLICATION_COMMAND, AUTOCOMPLETE, COMPONENT
from discobase.commands.render import error_embed, message
from discobase.commands.responder import Responder
from discobase.errors import DiscobaseError, NotConnected
from discobase.http.errors import HTTPException

if TYPE_CHECKING:
    from discobase.database import Database

__all__ = ["AdminCommands"]

_log = logging.getLogger("discobase.commands")

ALREADY_ACKNOWLEDGED, UNKNOWN_INTERACTION = 40060, 10062


class AdminCommands(CommandHandlers):
    """Slash commands that read and change a database, for the admins of its server.

    Create it before or after login; it listens from then on, and answers only once the
    commands are registered (``await commands.register()``), as guild commands of the
    database's own guild, never globally. ``await commands.remove()`` takes them away again.

    Args:
        db: The database.
        read_permissions: Permission bits a member needs for ``/find``, ``/table``,
            ``/column``, ``/tablestats`` and ``/schema`` (default Manage Server; 0 lets
            every member read).
        write_permissions: Bits needed for ``/insert``, ``/update``, ``/delete`` and
            ``/clear`` (default Manage Server).

    Example::

        db = discobase.Database("My db")
        admin = AdminCommands(db)
        async with db.conn(token):
            await admin.register()
            ...
    """

    def __init__(
        self,
        db: Database,
        *,
        read_permissions: int = MANAGE_GUILD,
        write_permissions: int = MANAGE_GUILD,
    ) -> None:
        super().__init__(db, read_permissions=read_permissions, write_permissions=write_permissions)
        self.registered = False
        self._application_id: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._remove_listener: Callable[[], None] | None = db.add_listener(self._on_dispatch)

    def __repr__(self) -> str:
        return f"<AdminCommands db={self.db.name!r} registered={self.registered}>"

    # ------------------------------------------------------------------ registration

    async def _application(self) -> str:
        if self._application_id is None:
            application = await self.db.http.fetch_current_application()
            self._application_id = str(application["id"])
        return self._application_id

    def _guild(self) -> int:
        guild_id = self.db.guild_id
        if guild_id is None or not self.db.is_ready:
            raise NotConnected("register the commands once the database is ready")
        return guild_id

    async def register(self) -> list[dict[str, Any]]:
        """Register the commands in the database's guild (replacing the app's guild commands).

        Returns:
            The commands as Discord stored them.

        Raises:
            NotConnected: the database is not ready.
            HTTPException: Discord refused.
        """
        guild_id = self._guild()
        application_id = await self._application()
        commands = definitions(self.read_permissions, self.write_permissions)
        stored: list[dict[str, Any]] = await self.db.http.bulk_overwrite_guild_application_commands(
            application_id, guild_id, commands
        )
        self.registered = True
        _log.info("registered %d slash commands in guild %d", len(stored), guild_id)
        return stored

    async def remove(self) -> None:
        """Remove every command of the app from the database's guild and stop answering."""
        guild_id = self._guild()
        application_id = await self._application()
        await self.db.http.bulk_overwrite_guild_application_commands(application_id, guild_id, [])
        self.registered = False
        _log.info("removed the slash commands from guild %d", guild_id)

    def close(self) -> None:
        """Stop listening (the commands stay registered; see ``remove``)."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self.registered = False

    async def wait_idle(self) -> None:
        """Wait until every interaction received so far is answered (for tests and shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    # ------------------------------------------------------------------ dispatch

    def _on_dispatch(self, name: str, data: Any) -> None:
        if name != "INTERACTION_CREATE" or not self.registered or not isinstance(data, dict):
            return
        if not self._is_ours(data):
            return
        task = asyncio.get_running_loop().create_task(self._handle(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _is_ours(self, data: Mapping[str, Any]) -> bool:
        if str(data.get("guild_id")) != str(self.db.guild_id):
            return False
        if self._application_id is not None and str(data.get("application_id")) != str(
            self._application_id
        ):
            return False
        kind = data.get("type")
        inner = data.get("data") or {}
        if kind in (APPLICATION_COMMAND, AUTOCOMPLETE):
            return inner.get("name") in COMMAND_NAMES
        if kind == COMPONENT:
            return str(inner.get("custom_id", "")).startswith(interaction.PREFIX)
        return False

    async def _handle(self, data: dict[str, Any]) -> None:
        try:
            http = self.db.http
        except NotConnected:
            return
        options = interaction.options(data)
        responder = Responder(
            http,
            data,
            time_scale=self.db.time_scale,
            ephemeral=not options.get("public", False),
        )
        try:
            if data["type"] == AUTOCOMPLETE:
                await responder.choices(self._autocomplete(data, options))
                return
            if data["type"] == COMPONENT:
                await responder.guard(lambda: self._component(responder, data), update=True)
                return
            await responder.guard(lambda: self._command(responder, data, options))
        except Refused as refusal:
            await self._answer_error(responder, refusal.title, refusal.detail)
        except HTTPException as exc:
            if exc.code == ALREADY_ACKNOWLEDGED:
                # Another process of the bot answered first; it does the work (every write
                # defers before it starts, so only the process that acknowledged writes).
                _log.debug("interaction %s was answered by another process", responder.id)
            elif exc.code == UNKNOWN_INTERACTION:
                _log.warning(
                    "interaction %s reached the bot too late to answer (%s); the member saw "
                    "'The application did not respond'",
                    responder.id,
                    exc,
                )
            else:
                _log.exception("slash command failed")
                await self._answer_error(responder, "Something went wrong", f"Discord: {exc}")
        except Exception as exc:
            _log.exception("slash command failed")
            detail = (
                f"{type(exc).__name__}: {exc}"
                if isinstance(exc, DiscobaseError)
                else ("An unexpected error happened; the bot's log has the details.")
            )
            await self._answer_error(responder, "Something went wrong", detail)

    async def _answer_error(self, responder: Responder, title: str, detail: str) -> None:
        if responder.type == AUTOCOMPLETE:
            return
        responder.ephemeral = True
        try:
            await responder.send(message(error_embed(title, detail)))
        except Exception as exc:  # noqa: BLE001 - nothing is left to tell the member
            _log.warning("could not answer interaction %s: %s", responder.id, exc)
