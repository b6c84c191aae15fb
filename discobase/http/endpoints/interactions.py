"""Answers to interactions: callbacks, original responses and follow-ups (http layer).

Routes of ``routes.py``'s "Interactions" section. An interaction token is a secret: it is part
of these routes' paths, so errors name a route's template, never its filled path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from discobase.http import routes
from discobase.http.endpoints.base import Endpoints

__all__ = ["InteractionEndpoints"]


class InteractionEndpoints(Endpoints):
    """Interaction callbacks, original responses and follow-up messages."""

    async def create_interaction_response(
        self,
        interaction_id: int | str,
        interaction_token: str,
        type: int,
        data: Mapping[str, Any] | None = None,
        *,
        with_response: bool = False,
    ) -> Any:
        """Answer an interaction (once, within 3 seconds of its creation).

        Not counted toward the global limit. A message's ``allowed_mentions`` defaults to
        mentioning nobody.

        Args:
            interaction_id: the interaction's id.
            interaction_token: its token (never shown in an error or a log line).
            type: the callback type (4 reply, 5 deferred reply, 6 deferred update, 7 update
                the component's message, 8 autocomplete choices, 9 modal).
            data: the callback's ``data``.
            with_response: ask for the ``InteractionCallbackResponse`` (else ``None``).
        """
        body: dict[str, Any] = {"type": type}
        if data is not None:
            body["data"] = _with_no_mentions(data) if type in (4, 7) else dict(data)
        route = routes.CREATE_INTERACTION_RESPONSE.compile(
            interaction_id=interaction_id, interaction_token=interaction_token
        )
        query = {"with_response": True} if with_response else None
        return await self.request(route, json=body, query=query)

    async def create_followup_message(
        self, application_id: int | str, interaction_token: str, **fields: Any
    ) -> Any:
        """Send a follow-up message to an interaction (for 15 minutes) and return it."""
        route = routes.CREATE_FOLLOWUP_MESSAGE.compile(
            webhook_id=application_id, webhook_token=interaction_token
        )
        return await self.request(route, json=_with_no_mentions(fields))

    async def fetch_original_interaction_response(
        self, application_id: int | str, interaction_token: str
    ) -> Any:
        """Return an interaction's original response message."""
        route = routes.GET_ORIGINAL_INTERACTION_RESPONSE.compile(
            webhook_id=application_id, webhook_token=interaction_token
        )
        return await self.request(route)

    async def edit_original_interaction_response(
        self, application_id: int | str, interaction_token: str, **fields: Any
    ) -> Any:
        """Change an interaction's original response (a deferral's answer) and return it."""
        route = routes.EDIT_ORIGINAL_INTERACTION_RESPONSE.compile(
            webhook_id=application_id, webhook_token=interaction_token
        )
        return await self.request(route, json=_with_no_mentions(fields))

    async def delete_original_interaction_response(
        self, application_id: int | str, interaction_token: str
    ) -> None:
        """Delete an interaction's original response."""
        route = routes.DELETE_ORIGINAL_INTERACTION_RESPONSE.compile(
            webhook_id=application_id, webhook_token=interaction_token
        )
        await self.request(route)

    async def edit_followup_message(
        self,
        application_id: int | str,
        interaction_token: str,
        message_id: int | str,
        **fields: Any,
    ) -> Any:
        """Change a follow-up message and return it."""
        route = routes.EDIT_FOLLOWUP_MESSAGE.compile(
            webhook_id=application_id, webhook_token=interaction_token, message_id=message_id
        )
        return await self.request(route, json=_with_no_mentions(fields))

    async def delete_followup_message(
        self, application_id: int | str, interaction_token: str, message_id: int | str
    ) -> None:
        """Delete a follow-up message."""
        route = routes.DELETE_FOLLOWUP_MESSAGE.compile(
            webhook_id=application_id, webhook_token=interaction_token, message_id=message_id
        )
        await self.request(route)


def _with_no_mentions(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return a message body that mentions nobody unless it says otherwise."""
    body = dict(fields)
    body.setdefault("allowed_mentions", {"parse": []})
    return body
