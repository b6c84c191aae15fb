"""Answer one interaction in time: reply, defer, update, follow up (commands layer).

Discord gives an app 3 seconds for its first answer to an interaction and 15 minutes for
everything after it (docs: interactions/receiving-and-responding). A :class:`Responder`
turns that into calls a handler cannot get wrong: ``send`` answers with a message the first
time and edits the deferred answer afterwards, ``update`` changes the message a button was on,
and :meth:`Responder.guard` defers on the handler's behalf when it has not answered after 1.5
Discord seconds, so slow work (a write waits for Discord) never loses the interaction.

Layer: above the public API; uses the database's HTTP client (its rate limiter) and nothing
of storage or the gateway. The interaction token is a secret: it is never logged or shown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from discobase.http import HTTPClient
from discobase.http.errors import HTTPException

__all__ = [
    "DEFER_AFTER",
    "EPHEMERAL",
    "Responder",
]

_log = logging.getLogger("discobase.commands")

EPHEMERAL = 1 << 6
#: Discord seconds a handler may run before it is deferred for it (Discord allows 3).
DEFER_AFTER = 1.5

REPLY, DEFER, DEFER_UPDATE, UPDATE, CHOICES = 4, 5, 6, 7, 8
COMPONENT = 3


class Responder:
    """The answers to one interaction.

    Args:
        http: The database's HTTP client.
        interaction: The INTERACTION_CREATE payload.
        time_scale: Real seconds per Discord second (for the deferral deadline).
        ephemeral: Whether answers are shown to the invoking member only.
    """

    def __init__(
        self,
        http: HTTPClient,
        interaction: Mapping[str, Any],
        *,
        time_scale: float = 1.0,
        ephemeral: bool = True,
    ) -> None:
        self._http = http
        self.id = str(interaction["id"])
        self._token = str(interaction["token"])
        self.application_id = str(interaction["application_id"])
        self.type = int(interaction["type"])
        self.time_scale = time_scale
        self.ephemeral = ephemeral
        # "new" -> "deferred" | "deferred_update" | "answered"
        self.state = "new"
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<Responder interaction={self.id} state={self.state}>"

    @property
    def answered(self) -> bool:
        """Return whether Discord got a first answer (a reply or a deferral)."""
        return self.state != "new"

    async def _callback(self, kind: int, data: Mapping[str, Any] | None = None) -> None:
        await self._http.create_interaction_response(self.id, self._token, kind, data)

    async def defer(self, *, update: bool = False) -> None:
        """Acknowledge now and answer later ("thinking..."; for a click: nothing shown).

        Args:
            update: For a component, the later answer replaces the clicked message.
        """
        async with self._lock:
            if self.state != "new":
                return
            if update and self.type == COMPONENT:
                await self._callback(DEFER_UPDATE)
                self.state = "deferred_update"
            else:
                await self._callback(DEFER, {"flags": EPHEMERAL} if self.ephemeral else {})
                self.state = "deferred"

    async def send(self, message: Mapping[str, Any]) -> None:
        """Answer with ``message``, or replace a deferral's "thinking" with it.

        After an answer, a further ``send`` posts a follow-up message.
        """
        async with self._lock:
            body = dict(message)
            if self.state == "new":
                if self.ephemeral:
                    body["flags"] = int(body.get("flags", 0)) | EPHEMERAL
                await self._callback(REPLY, body)
                self.state = "answered"
            elif self.state in ("deferred", "deferred_update"):
                await self._http.edit_original_interaction_response(
                    self.application_id, self._token, **body
                )
                self.state = "answered"
            else:
                if self.ephemeral:
                    body["flags"] = int(body.get("flags", 0)) | EPHEMERAL
                await self._http.create_followup_message(self.application_id, self._token, **body)

    async def update(self, message: Mapping[str, Any]) -> None:
        """Replace the message whose component was clicked with ``message``."""
        async with self._lock:
            if self.state == "new":
                await self._callback(UPDATE, message)
                self.state = "answered"
                return
            await self._http.edit_original_interaction_response(
                self.application_id, self._token, **dict(message)
            )
            self.state = "answered"

    async def choices(self, choices: list[dict[str, Any]]) -> None:
        """Answer an autocomplete with at most 25 choices."""
        async with self._lock:
            if self.state == "new":
                await self._callback(CHOICES, {"choices": choices[:25]})
                self.state = "answered"

    async def guard(self, work: Callable[[], Awaitable[None]], *, update: bool = False) -> None:
        """Run ``work``, deferring for it if it takes longer than ``DEFER_AFTER``.

        Args:
            work: The handler; it answers through this responder.
            update: Defer as an update of the clicked message (components).
        """
        task = asyncio.ensure_future(work())
        try:
            await asyncio.wait_for(asyncio.shield(task), DEFER_AFTER * self.time_scale)
        except TimeoutError:
            if not self.answered:
                try:
                    await self.defer(update=update)
                except HTTPException as exc:
                    _log.warning("deferring interaction %s failed: %s", self.id, exc)
            await task
