"""Every endpoint the emulator serves, with its rate-limit bucket and top-level resource.

Layer: the emulator's REST side. Order matters only where a literal segment and a parameter
compete (``/messages/pins`` before ``/messages/{message_id}``).
"""

from __future__ import annotations

from . import channels, commands, guilds, interactions, invites, messages, pins, users
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
    Route(
        "POST",
        "/applications/{application_id}/commands",
        commands.create_command,
        "application_commands",
    ),
    Route(
        "GET",
        "/applications/{application_id}/commands/{command_id}",
        commands.get_command,
        "application_commands",
    ),
    Route(
        "PATCH",
        "/applications/{application_id}/commands/{command_id}",
        commands.edit_command,
        "application_commands",
    ),
    Route(
        "DELETE",
        "/applications/{application_id}/commands/{command_id}",
        commands.delete_command,
        "application_commands",
    ),
    *(
        Route(
            method,
            "/applications/{application_id}/guilds/{guild_id}/commands" + tail,
            handler,
            "application_commands",
            "guild_id",
        )
        for method, tail, handler in (
            ("GET", "", commands.list_commands),
            ("PUT", "", commands.overwrite_commands),
            ("POST", "", commands.create_command),
            ("GET", "/{command_id}", commands.get_command),
            ("PATCH", "/{command_id}", commands.edit_command),
            ("DELETE", "/{command_id}", commands.delete_command),
        )
    ),
    Route(
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
        interactions.create_callback,
        auth=False,
        global_limit=False,
    ),
    *(
        Route(
            method,
            "/webhooks/{webhook_id}/{webhook_token}" + tail,
            handler,
            auth=False,
            global_limit=False,
        )
        for method, tail, handler in (
            ("POST", "", interactions.create_followup),
            ("GET", "/messages/@original", interactions.get_webhook_message),
            ("PATCH", "/messages/@original", interactions.edit_webhook_message),
            ("DELETE", "/messages/@original", interactions.delete_webhook_message),
            ("GET", "/messages/{message_id}", interactions.get_webhook_message),
            ("PATCH", "/messages/{message_id}", interactions.edit_webhook_message),
            ("DELETE", "/messages/{message_id}", interactions.delete_webhook_message),
        )
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
