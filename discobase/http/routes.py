"""Every REST endpoint discobase calls, as typed constants (http layer: pure data, no I/O).

A :class:`Route` is a method plus Discord's path template; ``route.compile(**params)`` fills
the template and yields a :class:`CompiledRoute` that also knows its rate-limit identity:

- ``key``: method + template + variant, e.g. ``"DELETE /channels/{channel_id}/messages/
  {message_id}:young"``. Discord's bucket hash is learned per key, never per concrete path.
- ``majors``: the values of the top-level resource (channel, guild, webhook id and token);
  Discord counts one bucket separately for each.

Variants split routes whose limits depend on the request itself (message age, channel renames);
the helpers at the bottom compute them. This module must not know about the limiter or aiohttp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = [
    "BULK_DELETE_MESSAGES",
    "BULK_OVERWRITE_GLOBAL_APPLICATION_COMMANDS",
    "BULK_OVERWRITE_GUILD_APPLICATION_COMMANDS",
    "CREATE_FOLLOWUP_MESSAGE",
    "CREATE_GUILD_APPLICATION_COMMAND",
    "CREATE_INTERACTION_RESPONSE",
    "DELETE_FOLLOWUP_MESSAGE",
    "DELETE_GUILD_APPLICATION_COMMAND",
    "DELETE_ORIGINAL_INTERACTION_RESPONSE",
    "EDIT_FOLLOWUP_MESSAGE",
    "EDIT_ORIGINAL_INTERACTION_RESPONSE",
    "GET_ORIGINAL_INTERACTION_RESPONSE",
    "LIST_GLOBAL_APPLICATION_COMMANDS",
    "LIST_GUILD_APPLICATION_COMMANDS",
    "CREATE_GUILD",
    "CREATE_GUILD_CHANNEL",
    "CREATE_MESSAGE",
    "CREATE_PIN",
    "DELETE_CHANNEL",
    "DELETE_MESSAGE",
    "DELETE_PIN",
    "DISCORD_EPOCH_MS",
    "GET_BOT_GATEWAY",
    "GET_CHANNEL",
    "GET_GUILD",
    "GET_GUILD_MEMBER",
    "GET_MESSAGE",
    "GET_MY_APPLICATION",
    "GET_MY_USER",
    "LEAVE_GUILD",
    "LIST_GUILD_CHANNELS",
    "LIST_MESSAGES",
    "LIST_MY_GUILDS",
    "LIST_PINS",
    "MAJOR_PARAMETERS",
    "UPDATE_CHANNEL",
    "UPDATE_MESSAGE",
    "CompiledRoute",
    "Route",
    "channel_edit_variant",
    "message_delete_variant",
    "message_edit_variant",
    "snowflake_time_ms",
]

#: The top-level resources: each value gets its own copy of a bucket.
MAJOR_PARAMETERS = ("channel_id", "guild_id", "webhook_id", "webhook_token")

DISCORD_EPOCH_MS = 1_420_070_400_000


@dataclass(frozen=True, slots=True)
class Route:
    """An endpoint: an HTTP method and Discord's path template.

    Attributes:
        method: ``GET``, ``POST``, ``PATCH``, ``PUT`` or ``DELETE``.
        template: the path under ``/api/v10`` with ``{name}`` placeholders.
        idempotent: whether a retry after a lost response cannot do the work twice. Only POSTs
            are not, unless their body makes them so (``nonce`` + ``enforce_nonce``).
        global_exempt: the route does not count toward the 50-per-second global limit
            (interaction callbacks).
        majors: further path parameters that are top-level resources of this route only
            (an interaction's id and token key the callback's limits, as a webhook's id and
            token key the webhook routes).
    """

    method: str
    template: str
    idempotent: bool | None = None
    global_exempt: bool = False
    majors: tuple[str, ...] = ()

    def compile(self, variant: str = "", **params: Any) -> CompiledRoute:
        """Fill the template and compute the rate-limit identity.

        Args:
            variant: a sub-key for requests the server limits separately (see the helpers).
            **params: a value for every placeholder of the template.

        Returns:
            The concrete request.

        Raises:
            KeyError: a placeholder has no value (a programming error).
        """
        text = {name: str(value) for name, value in params.items()}
        path = self.template.format_map({k: quote(v, safe="") for k, v in text.items()})
        names = MAJOR_PARAMETERS + self.majors
        majors = tuple((name, text[name]) for name in names if name in text)
        return CompiledRoute(route=self, path=path, variant=variant, majors=majors)

    @property
    def is_idempotent(self) -> bool:
        """Whether retrying this route after a lost response is safe by default."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method != "POST"

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A concrete request of a :class:`Route`, with its rate-limit identity.

    Attributes:
        route: the endpoint.
        path: the filled path (ids URL-quoted).
        variant: the sub-key, ``""`` for none.
        majors: ``(name, value)`` of each top-level resource in the path.
    """

    route: Route
    path: str
    variant: str = ""
    majors: tuple[tuple[str, str], ...] = field(default=())

    @property
    def method(self) -> str:
        """The HTTP method."""
        return self.route.method

    @property
    def key(self) -> str:
        """The rate-limit route key: method, template and variant."""
        base = f"{self.route.method} {self.route.template}"
        return f"{base}:{self.variant}" if self.variant else base

    def __repr__(self) -> str:
        # The dataclass repr would show the path and majors: an interaction token is a secret.
        return f"<CompiledRoute {self.key}>"

    def __str__(self) -> str:
        """Describe the request without ids or secrets (used in errors and logs)."""
        return self.key


# Users, applications, gateway
GET_MY_USER = Route("GET", "/users/@me")
GET_MY_APPLICATION = Route("GET", "/applications/@me")
GET_BOT_GATEWAY = Route("GET", "/gateway/bot")
LIST_MY_GUILDS = Route("GET", "/users/@me/guilds")
LEAVE_GUILD = Route("DELETE", "/users/@me/guilds/{guild_id}")

# Guilds and channels
CREATE_GUILD = Route("POST", "/guilds")
GET_GUILD = Route("GET", "/guilds/{guild_id}")
GET_GUILD_MEMBER = Route("GET", "/guilds/{guild_id}/members/{user_id}")
LIST_GUILD_CHANNELS = Route("GET", "/guilds/{guild_id}/channels")
CREATE_GUILD_CHANNEL = Route("POST", "/guilds/{guild_id}/channels")
GET_CHANNEL = Route("GET", "/channels/{channel_id}")
UPDATE_CHANNEL = Route("PATCH", "/channels/{channel_id}")
DELETE_CHANNEL = Route("DELETE", "/channels/{channel_id}")

# Messages
LIST_MESSAGES = Route("GET", "/channels/{channel_id}/messages")
CREATE_MESSAGE = Route("POST", "/channels/{channel_id}/messages")
GET_MESSAGE = Route("GET", "/channels/{channel_id}/messages/{message_id}")
UPDATE_MESSAGE = Route("PATCH", "/channels/{channel_id}/messages/{message_id}")
DELETE_MESSAGE = Route("DELETE", "/channels/{channel_id}/messages/{message_id}")
# Deleting ids that are already gone is harmless, so a retry cannot hurt.
BULK_DELETE_MESSAGES = Route("POST", "/channels/{channel_id}/messages/bulk-delete", idempotent=True)
LIST_PINS = Route("GET", "/channels/{channel_id}/messages/pins")
CREATE_PIN = Route("PUT", "/channels/{channel_id}/messages/pins/{message_id}")
DELETE_PIN = Route("DELETE", "/channels/{channel_id}/messages/pins/{message_id}")

# Application commands (the bot's own application; guild commands are per guild)
LIST_GLOBAL_APPLICATION_COMMANDS = Route("GET", "/applications/{application_id}/commands")
BULK_OVERWRITE_GLOBAL_APPLICATION_COMMANDS = Route("PUT", "/applications/{application_id}/commands")
LIST_GUILD_APPLICATION_COMMANDS = Route(
    "GET", "/applications/{application_id}/guilds/{guild_id}/commands"
)
BULK_OVERWRITE_GUILD_APPLICATION_COMMANDS = Route(
    "PUT", "/applications/{application_id}/guilds/{guild_id}/commands"
)
CREATE_GUILD_APPLICATION_COMMAND = Route(
    "POST", "/applications/{application_id}/guilds/{guild_id}/commands"
)
DELETE_GUILD_APPLICATION_COMMAND = Route(
    "DELETE", "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}"
)

# Interactions. None counts toward the global limit (facts 1.3); the callback is keyed by the
# interaction, the follow-up routes by the webhook's id and token (the application's id and
# the interaction's token), as Discord keys webhooks. A callback is answered once: a retry
# after a lost response would get 40060, so it is not idempotent.
CREATE_INTERACTION_RESPONSE = Route(
    "POST",
    "/interactions/{interaction_id}/{interaction_token}/callback",
    global_exempt=True,
    majors=("interaction_id", "interaction_token"),
)
CREATE_FOLLOWUP_MESSAGE = Route(
    "POST", "/webhooks/{webhook_id}/{webhook_token}", global_exempt=True
)
GET_ORIGINAL_INTERACTION_RESPONSE = Route(
    "GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", global_exempt=True
)
EDIT_ORIGINAL_INTERACTION_RESPONSE = Route(
    "PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", global_exempt=True
)
DELETE_ORIGINAL_INTERACTION_RESPONSE = Route(
    "DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", global_exempt=True
)
EDIT_FOLLOWUP_MESSAGE = Route(
    "PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", global_exempt=True
)
DELETE_FOLLOWUP_MESSAGE = Route(
    "DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", global_exempt=True
)


def snowflake_time_ms(snowflake: int | str) -> int:
    """Return the Unix time in milliseconds at which a snowflake was made."""
    return (int(snowflake) >> 22) + DISCORD_EPOCH_MS


def message_delete_variant(message_id: int | str, now_ms: float | None = None) -> str:
    """Return the DELETE-message variant for a message's age.

    Discord answers deletes of messages under 10 s, under 14 days and older from three
    different buckets; keying them apart keeps the learned hash stable.

    Args:
        message_id: the message's snowflake.
        now_ms: Discord's current Unix time in ms (default: the local wall clock).
    """
    age = _age_ms(message_id, now_ms)
    if age < 10_000:
        return "young"
    if age >= 14 * 86_400_000:
        return "ancient"
    return ""


def message_edit_variant(message_id: int | str, now_ms: float | None = None) -> str:
    """Return the PATCH-message variant: ``"old"`` past 1 hour (its own quota, code 30046)."""
    return "old" if _age_ms(message_id, now_ms) >= 3_600_000 else ""


def channel_edit_variant(fields: dict[str, Any]) -> str:
    """Return the PATCH-channel variant: renames and topic changes have a tiny sub-limit."""
    return "name" if "name" in fields or "topic" in fields else ""


def _age_ms(message_id: int | str, now_ms: float | None) -> float:
    now = time.time() * 1000 if now_ms is None else now_ms
    return now - snowflake_time_ms(message_id)
