"""Messages and pins (http layer).

Routes of ``routes.py``'s "Messages" section. Message edits and deletes carry the message's
age as a route variant, since Discord counts young, old and ancient messages apart.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from discobase.http import routes
from discobase.http.endpoints.base import Endpoints
from discobase.http.files import File

__all__ = ["MessageEndpoints"]


class MessageEndpoints(Endpoints):
    """Messages and pins."""

    async def create_message(
        self,
        channel_id: int | str,
        *,
        content: str | None = None,
        files: Sequence[File] = (),
        nonce: str | None = None,
        flags: int = 0,
        allowed_mentions: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Any:
        """Post a message and return it.

        The body always carries ``nonce`` with ``enforce_nonce``, so a retry after a lost
        response returns the message already stored instead of writing it twice.

        Args:
            channel_id: the channel.
            content: the text (at most 2000 characters).
            files: attachments.
            nonce: a unique id for this write (at most 25 characters); generated if omitted.
            flags: message flags.
            allowed_mentions: defaults to mentioning nobody.
            **fields: other body fields (``embeds``, ``attachments``, ...).
        """
        body: dict[str, Any] = dict(fields)
        if content is not None:
            body["content"] = content
        if flags:
            body["flags"] = flags
        body["allowed_mentions"] = (
            allowed_mentions if allowed_mentions is not None else {"parse": []}
        )
        body["nonce"] = nonce if nonce is not None else str(secrets.randbits(63))
        body["enforce_nonce"] = True
        route = routes.CREATE_MESSAGE.compile(channel_id=channel_id)
        return await self.request(route, json=body, files=list(files) or None)

    async def fetch_messages(
        self,
        channel_id: int | str,
        *,
        before: int | str | None = None,
        after: int | str | None = None,
        around: int | str | None = None,
        limit: int = 100,
    ) -> Any:
        """Return up to ``limit`` (1-100) messages, newest first, even with ``after``."""
        query = {"before": before, "after": after, "around": around, "limit": limit}
        route = routes.LIST_MESSAGES.compile(channel_id=channel_id)
        return await self.request(route, query=query)

    async def fetch_message(self, channel_id: int | str, message_id: int | str) -> Any:
        """Return one message."""
        route = routes.GET_MESSAGE.compile(channel_id=channel_id, message_id=message_id)
        return await self.request(route)

    async def edit_message(
        self,
        channel_id: int | str,
        message_id: int | str,
        *,
        files: Sequence[File] = (),
        **fields: Any,
    ) -> Any:
        """Change a message's fields (``content``, ``attachments``, ...) and return it."""
        variant = routes.message_edit_variant(message_id, self._discord_now_ms())
        route = routes.UPDATE_MESSAGE.compile(variant, channel_id=channel_id, message_id=message_id)
        return await self.request(route, json=fields, files=list(files) or None)

    async def delete_message(
        self, channel_id: int | str, message_id: int | str, *, reason: str | None = None
    ) -> None:
        """Delete a message."""
        variant = routes.message_delete_variant(message_id, self._discord_now_ms())
        route = routes.DELETE_MESSAGE.compile(variant, channel_id=channel_id, message_id=message_id)
        await self.request(route, reason=reason)

    async def bulk_delete_messages(
        self,
        channel_id: int | str,
        message_ids: Sequence[int | str],
        *,
        reason: str | None = None,
    ) -> None:
        """Delete 2 to 100 messages under 14 days old at once."""
        route = routes.BULK_DELETE_MESSAGES.compile(channel_id=channel_id)
        body = {"messages": [str(m) for m in message_ids]}
        await self.request(route, json=body, reason=reason)

    async def pin_message(
        self, channel_id: int | str, message_id: int | str, *, reason: str | None = None
    ) -> None:
        """Pin a message."""
        route = routes.CREATE_PIN.compile(channel_id=channel_id, message_id=message_id)
        await self.request(route, reason=reason)

    async def unpin_message(
        self, channel_id: int | str, message_id: int | str, *, reason: str | None = None
    ) -> None:
        """Unpin a message."""
        route = routes.DELETE_PIN.compile(channel_id=channel_id, message_id=message_id)
        await self.request(route, reason=reason)

    async def fetch_pins(
        self, channel_id: int | str, *, before: str | None = None, limit: int = 50
    ) -> Any:
        """Return a page of pins: ``{"items": [{"pinned_at", "message"}], "has_more"}``."""
        route = routes.LIST_PINS.compile(channel_id=channel_id)
        return await self.request(route, query={"before": before, "limit": limit})
