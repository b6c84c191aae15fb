"""Every endpoint the emulator serves, with its rate-limit bucket and top-level resource.

Layer: the emulator's REST side. Order matters only where a literal segment and a parameter
compete (``/messages/pins`` before ``/messages/{message_id}``).
"""

from __future__ import annotations

from . import channels, commands, guilds, invites, messages, pins, users
from .context import Route

__all__ = ["CREATE_GUILD", "ROUTES"]

ROUTES: tuple[Route, ...] = (
    Route("GET", "/users/@me", users.get_current_user, "user_me"),
    Route("GET", "/users/@me/guilds", users.get_my_guilds, "my_guilds"),
    Route("DELETE", "/users/@me/guilds/{guild_id}", users.leave_guild, "leave_guild"),
    Route("GET", "/oauth2/applications/@me", users.get_application, "application_me"),
    Route("GET", "/applications/@me", users.get_application, "application_me"),
    Route(
        "GET",
        "/applications/{application_id}/commands",
        commands.list_commands,
        "application_commands",
    ),
    Route(
        "PUT",
        "/applications/{application_id}/commands",
        commands.overwrite_commands,
        "application_commands",
    ),
    Route("GET", "/gateway", users.get_gateway, auth=False),
    Route("GET", "/gateway/bot", users.get_gateway_bot, "gateway_bot"),
    Route("GET", "/guilds/{guild_id}", guilds.get_guild, "guild_get", "guild_id"),
    Route(
        "GET",
        "/guilds/{guild_id}/members/{user_id}",
        guilds.get_member,
        "guild_member",
        "guild_id",
    ),
    Route(
        "GET", "/guilds/{guild_id}/channels", channels.list_channels, "guild_channels", "guild_id"
    ),
    Route(
        "POST",
        "/guilds/{guild_id}/channels",
        channels.create_channel,
        "guild_channel_create",
        "guild_id",
    ),
    Route("GET", "/channels/{channel_id}", channels.get_channel, "channel_get", "channel_id"),
    Route(
        "PATCH",
        "/channels/{channel_id}",
        channels.edit_channel,
        "channel_edit",
        "channel_id",
        select=channels.edit_channel_limits,
    ),
    Route(
        "DELETE", "/channels/{channel_id}", channels.delete_channel, "channel_delete", "channel_id"
    ),
    Route(
        "POST",
        "/channels/{channel_id}/invites",
        invites.create_invite,
        "invite_create",
        "channel_id",
    ),
    Route("POST", "/channels/{channel_id}/typing", channels.trigger_typing, "typing", "channel_id"),
    Route("GET", "/channels/{channel_id}/messages/pins", pins.list_pins, "pins_list", "channel_id"),
    Route(
        "PUT",
        "/channels/{channel_id}/messages/pins/{message_id}",
        pins.pin_message,
        "pin",
        "channel_id",
    ),
    Route(
        "DELETE",
        "/channels/{channel_id}/messages/pins/{message_id}",
        pins.unpin_message,
        "pin",
        "channel_id",
    ),
    Route("GET", "/channels/{channel_id}/pins", pins.list_pins_legacy, "pins_list", "channel_id"),
    Route("PUT", "/channels/{channel_id}/pins/{message_id}", pins.pin_message, "pin", "channel_id"),
    Route(
        "DELETE",
        "/channels/{channel_id}/pins/{message_id}",
        pins.unpin_message,
        "pin",
        "channel_id",
    ),
    Route(
        "POST",
        "/channels/{channel_id}/messages/bulk-delete",
        messages.bulk_delete,
        "bulk_delete",
        "channel_id",
    ),
    Route(
        "GET",
        "/channels/{channel_id}/messages",
        messages.list_messages,
        "message_list",
        "channel_id",
    ),
    Route(
        "POST",
        "/channels/{channel_id}/messages",
        messages.create_message,
        "message_create",
        "channel_id",
    ),
    Route(
        "GET",
        "/channels/{channel_id}/messages/{message_id}",
        messages.get_message,
        "message_get",
        "channel_id",
    ),
    Route(
        "PATCH",
        "/channels/{channel_id}/messages/{message_id}",
        messages.edit_message,
        "message_edit",
        "channel_id",
    ),
    Route(
        "DELETE",
        "/channels/{channel_id}/messages/{message_id}",
        messages.delete_message,
        "message_delete",
        "channel_id",
        select=messages.delete_limits,
    ),
)

# Served only with ``Emulator(allow_guild_create=True)``; otherwise ``POST /guilds`` is an
# unknown route, as on Discord since 2025-07-28.
CREATE_GUILD = Route("POST", "/guilds", guilds.create_guild, "guild_channel_create")
