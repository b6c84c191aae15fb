"""Messages: create (JSON or multipart), list, get, edit, delete and bulk delete.

Layer: the emulator's REST side. Validation follows the facts sheet, section 2: 2000 code
points, the 50006 empty message, nonces (``enforce_nonce`` returns the existing message), at
most 10 files, the per-file and per-request sizes, newest-first pages even with ``after``.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any

from ..errors import ApiError, form_error, missing_permissions, unknown
from ..images import dimensions
from ..models import Attachment, Channel, Message
from ..permissions import (
    ATTACH_FILES,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_TTS_MESSAGES,
)
from ..snowflakes import snowflake_time
from .access import channel_for, message_in, require
from .context import Context, Reply, Upload
from .fields import (
    MAX_COMPONENTS,
    is_snowflake,
    list_field,
    message_content,
    message_embeds,
    query_int,
    query_snowflake,
    truthy,
)

__all__ = [
    "bulk_delete",
    "create_message",
    "delete_limits",
    "delete_message",
    "edit_message",
    "get_message",
    "list_messages",
]

MAX_FILES = 10
MAX_NONCE = 25
MAX_MENTION_IDS = 100
MAX_STICKERS = 3
TWO_WEEKS = 14 * 86_400.0
MESSAGE_TYPES_WITH_TEXT = {0, 2, 5, 10, 11, 13}  # text, voice, announcement, threads, stage
CREATE_FLAGS = (1 << 2) | (1 << 12) | (1 << 13) | (1 << 15)
SUPPRESS_EMBEDS = 1 << 2
IS_COMPONENTS_V2 = 1 << 15
IS_SPOILER = 1 << 3
EDITABLE_TYPES = {0, 19}
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def _nonce(body: dict[str, Any]) -> Any:
    nonce = body.get("nonce")
    if nonce is None:
        return None
    if isinstance(nonce, bool) or not isinstance(nonce, int | str):
        raise form_error("nonce", "BASE_TYPE_CHOICES", "Nonce must be an integer or a string.")
    if isinstance(nonce, str) and len(nonce) > MAX_NONCE:
        raise form_error("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    if isinstance(nonce, int) and not -(2**63) <= nonce < 2**63:
        raise form_error("nonce", "NUMBER_TYPE_MAX", "Nonce must fit in 64 bits.")
    return nonce


def _mentions(ctx: Context, channel: Channel, content: str, body: dict[str, Any]) -> dict[str, Any]:
    allowed = body.get("allowed_mentions")
    parse = ["users", "roles", "everyone"]
    users: list[str] = []
    roles: list[str] = []
    if allowed is not None:
        if not isinstance(allowed, dict):
            raise form_error("allowed_mentions", "DICT_TYPE_CONVERT", "Only dictionaries.")
        parse = _mention_list(allowed, "parse")
        users = [str(u) for u in _mention_list(allowed, "users")]
        roles = [str(r) for r in _mention_list(allowed, "roles")]
        for kind in parse:
            if kind not in ("users", "roles", "everyone"):
                raise form_error(["allowed_mentions", "parse"], "BASE_TYPE_CHOICES", "Unknown.")
        for kind, listed in (("users", users), ("roles", roles)):
            if kind in parse and listed:
                raise form_error(
                    ["allowed_mentions", kind],
                    "SET_TYPE_ALREADY_CONTAINS_VALUE",
                    f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                )
    guild = ctx.state.guilds[channel.guild_id]
    found_users = [
        u
        for u in dict.fromkeys(_USER_MENTION.findall(content))
        if u in guild.members and ("users" in parse or u in users)
    ]
    found_roles = [
        r
        for r in dict.fromkeys(_ROLE_MENTION.findall(content))
        if r in guild.roles and ("roles" in parse or r in roles)
    ]
    everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
    return {"mentions": found_users, "mention_roles": found_roles, "mention_everyone": everyone}


def _mention_list(allowed: dict[str, Any], key: str) -> list[Any]:
    """Return one list of ``allowed_mentions``; ``users`` and ``roles`` hold at most 100 ids
    (facts 2.3; spec MessageAllowedMentionsRequest), and errors are named under the object."""
    value = allowed.get(key)
    if value is None:
        return []
    path: list[str | int] = ["allowed_mentions", key]
    if not isinstance(value, list):
        raise form_error(path, "BASE_TYPE_LIST", "Must be a list.")
    if key != "parse" and len(value) > MAX_MENTION_IDS:
        raise form_error(
            path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_MENTION_IDS} or fewer in length."
        )
    return value


def _attachment_specs(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    specs = body.get("attachments")
    if specs is None:
        return None
    if not isinstance(specs, list):
        raise form_error("attachments", "BASE_TYPE_LIST", "Must be a list.")
    if len(specs) > MAX_FILES:
        raise ApiError(400, 30015, "Maximum number of attachments in a message reached (10)")
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or "id" not in spec:
            raise form_error(["attachments", i, "id"], "BASE_TYPE_REQUIRED", "Required")
    return specs


def _new_attachments(
    ctx: Context, uploads: list[Upload], specs: list[dict[str, Any]] | None
) -> list[tuple[Attachment, bytes]]:
    """Turn uploaded parts into attachments, applying the metadata of ``attachments[]``."""
    by_index = {}
    for spec in specs or []:
        raw = str(spec["id"])
        if raw.isdigit() and int(raw) < 1 << 22:  # an upload index, not a snowflake
            by_index[int(raw)] = spec
    out = []
    for upload in uploads:
        spec = by_index.get(upload.index, {})
        filename = str(spec.get("filename") or upload.filename)
        description = spec.get("description")
        if description is not None and len(str(description)) > 1024:
            raise form_error(
                ["attachments", upload.index, "description"],
                "BASE_TYPE_MAX_LENGTH",
                "Must be 1024 or fewer in length.",
            )
        content_type = upload.content_type
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(filename)[0] or content_type
        flags = IS_SPOILER if spec.get("is_spoiler") else 0
        if flags:
            filename = filename if filename.startswith("SPOILER_") else f"SPOILER_{filename}"
        attachment = Attachment(
            id=ctx.state.new_id(),
            filename=_safe_filename(filename),
            size=len(upload.data),
            content_type=content_type,
            description=None if description is None else str(description),
            title=spec.get("title"),
            flags=flags,
        )
        size = dimensions(upload.data)
        if size is not None:
            attachment.width, attachment.height = size
        out.append((attachment, upload.data))
    return out


def _safe_filename(name: str) -> str:
    # Discord replaces characters that cannot appear in a CDN path.
    cleaned = re.sub(r"[^\w.\-]", "_", name.replace(" ", "_"))
    return cleaned or "unknown"


async def create_message(ctx: Context) -> Reply:
    """``POST /channels/{channel_id}/messages``: 200 and the message."""
    channel = channel_for(ctx, ctx.params["channel_id"], SEND_MESSAGES)
    if channel.type not in MESSAGE_TYPES_WITH_TEXT:
        raise ApiError(400, 50008, "Cannot send messages in a non-text channel")
    body, uploads = await ctx.payload()
    if not isinstance(body, dict):
        raise form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    content = message_content(body)
    embeds = message_embeds(body)
    nonce = _nonce(body)
    flags = body.get("flags") or 0
    if not isinstance(flags, int) or flags & ~CREATE_FLAGS:
        raise form_error("flags", "MESSAGE_FLAGS_INVALID", "Invalid message flags.")
    components = list_field(body, "components", MAX_COMPONENTS)
    stickers = list_field(body, "sticker_ids", MAX_STICKERS)
    specs = _attachment_specs(body)
    if len(uploads) > MAX_FILES:
        raise ApiError(400, 30015, "Maximum number of attachments in a message reached (10)")
    if flags & IS_COMPONENTS_V2 and (content or embeds):
        raise form_error("content", "MESSAGE_CONTENT_NOT_ALLOWED", "Components V2 only.")
    if not (content or embeds or uploads or components or stickers or body.get("poll")):
        raise ApiError(400, 50006, "Cannot send an empty message")
    if uploads:
        require(ctx, channel, ATTACH_FILES)
    reference = _reference(ctx, channel, body.get("message_reference"))
    if truthy(body.get("enforce_nonce")) and nonce is not None:
        earlier = ctx.state.nonce_message_id(ctx.bot.id, str(nonce))
        if earlier is not None:
            existing = ctx.state.messages.get(earlier)
            if existing is None:
                # Deleted since: Discord does not recreate it (staff, discord-api-docs #6647).
                raise unknown("message")
            payload = ctx.render.message(existing)
            payload["nonce"] = nonce
            return Reply(200, payload)
    tts = truthy(body.get("tts")) and bool(
        ctx.state.permissions_in(channel, ctx.bot.id) & SEND_TTS_MESSAGES
    )
    message = ctx.state.create_message(
        channel,
        ctx.bot.id,
        files=_new_attachments(ctx, uploads, specs),
        nonce=nonce,
        content=content,
        embeds=embeds,
        components=list(components),
        flags=flags,
        tts=tts,
        type=19 if reference is not None else 0,
        message_reference=reference,
        **_mentions(ctx, channel, content, body),
    )
    if nonce is not None:
        ctx.state.remember_nonce(ctx.bot.id, str(nonce), message)
    payload = ctx.render.message(message)
    if nonce is not None:
        payload["nonce"] = nonce
    return Reply(200, payload)


def _reference(ctx: Context, channel: Channel, ref: Any) -> dict[str, Any] | None:
    if ref is None:
        return None
    if not isinstance(ref, dict) or ref.get("message_id") is None:
        raise form_error("message_reference", "BASE_TYPE_REQUIRED", "message_id is required.")
    require(ctx, channel, READ_MESSAGE_HISTORY)
    target = ctx.state.messages.get(
        int(str(ref["message_id"])) if str(ref["message_id"]).isdigit() else -1
    )
    if target is None or target.channel_id != channel.id:
        if ref.get("fail_if_not_exists", True) is False:
            return None
        raise form_error(
            ["message_reference", "message_id"],
            "REPLIES_UNKNOWN_MESSAGE",
            "Unknown message",
        )
    return {
        "type": 0,
        "channel_id": channel.id,
        "message_id": str(target.id),
        "guild_id": channel.guild_id,
    }


async def list_messages(ctx: Context) -> Reply:
    """``GET /channels/{channel_id}/messages``: newest first, also with ``after``."""
    channel = channel_for(ctx, ctx.params["channel_id"])
    limit = query_int(ctx, "limit", 50, 1, 100)
    around = query_snowflake(ctx, "around")
    before = query_snowflake(ctx, "before")
    after = query_snowflake(ctx, "after")
    cursors = {"around": around, "before": before, "after": after}
    given = [name for name, value in cursors.items() if value is not None]
    if len(given) > 1:
        # The docs say the three are mutually exclusive; what Discord answers to several is
        # unconfirmed. Refusing them (rather than picking one) is this emulator's choice, so
        # that a client relying on either Discord behaviour fails here first.
        raise form_error(
            [],
            "QUERY_PARAMETERS_MUTUALLY_EXCLUSIVE",
            f"Only one of around, before and after may be given, not {' and '.join(given)}.",
        )
    if not ctx.state.permissions_in(channel, ctx.bot.id) & READ_MESSAGE_HISTORY:
        return Reply(200, [])  # Discord answers an empty list, not an error
    page = ctx.state.list_messages(channel, before=before, after=after, around=around, limit=limit)
    return Reply(200, [ctx.render.message(m, ctx.bot) for m in page])


async def get_message(ctx: Context) -> Reply:
    """``GET /channels/{channel_id}/messages/{message_id}``."""
    channel = channel_for(ctx, ctx.params["channel_id"], READ_MESSAGE_HISTORY)
    message = message_in(ctx, channel, ctx.params["message_id"])
    return Reply(200, ctx.render.message(message, ctx.bot))


async def edit_message(ctx: Context) -> Reply:
    """``PATCH /channels/{channel_id}/messages/{message_id}``: author only.

    With MANAGE_MESSAGES a bot may change only the ``flags`` (SUPPRESS_EMBEDS) of others'
    messages; any other field of someone else's message is 50005.
    """
    channel = channel_for(ctx, ctx.params["channel_id"])
    message = message_in(ctx, channel, ctx.params["message_id"])
    body, uploads = await ctx.payload()
    if not isinstance(body, dict):
        raise form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    if message.author_id != ctx.bot.id:
        only_flags = not uploads and set(body) <= {"flags"}
        perms = ctx.state.permissions_in(channel, ctx.bot.id)
        if not (only_flags and perms & MANAGE_MESSAGES):
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
    if message.type not in EDITABLE_TYPES:
        raise ApiError(400, 50021, "Cannot execute action on a system message")
    changes: dict[str, Any] = {}
    if "content" in body:
        changes["content"] = message_content(body)
        changes.update(_mentions(ctx, channel, changes["content"], body))
    if "embeds" in body or "embed" in body:
        changes["embeds"] = message_embeds(body)
    if "components" in body:
        changes["components"] = list_field(body, "components", MAX_COMPONENTS)
    if body.get("flags") is not None:
        flags = body["flags"]
        if not isinstance(flags, int):
            raise form_error("flags", "NUMBER_TYPE_COERCE", "Flags must be an integer.")
        # Only SUPPRESS_EMBEDS toggles; IS_COMPONENTS_V2 can only be set; others are ignored.
        new = (message.flags & ~SUPPRESS_EMBEDS) | (flags & SUPPRESS_EMBEDS)
        changes["flags"] = new | (flags & IS_COMPONENTS_V2)
    specs = _attachment_specs(body)
    if uploads:
        require(ctx, channel, ATTACH_FILES)
    if specs is not None or uploads:
        changes["attachments"] = _edited_attachments(ctx, message, uploads, specs)
    content = changes.get("content", message.content)
    embeds = changes.get("embeds", message.embeds)
    files = changes.get("attachments", message.attachments)
    if not (content or embeds or files or changes.get("components", message.components)):
        raise ApiError(400, 50006, "Cannot send an empty message")
    changes["edited_timestamp"] = ctx.state.clock.now()
    ctx.state.edit_message(message, changes)
    return Reply(200, ctx.render.message(message, ctx.bot))


def _edited_attachments(
    ctx: Context,
    message: Message,
    uploads: list[Upload],
    specs: list[dict[str, Any]] | None,
) -> list[Attachment]:
    current = {a.id: a for a in message.attachments}
    if specs is None:
        kept = list(message.attachments)
    else:
        kept = []
        for spec in specs:
            existing = current.get(str(spec["id"]))
            if existing is None:
                continue  # an upload index (handled below) or an unknown id (ignored)
            if "description" in spec:
                existing.description = spec["description"]
            if "is_spoiler" in spec:
                existing.flags = (existing.flags & ~IS_SPOILER) | (
                    IS_SPOILER if spec["is_spoiler"] else 0
                )
            kept.append(existing)
    added = _new_attachments(ctx, uploads, specs)
    if len(kept) + len(added) > MAX_FILES:
        raise ApiError(400, 30015, "Maximum number of attachments in a message reached (10)")
    for attachment, data in added:
        ctx.state.store_file(attachment, data)
        kept.append(attachment)
    return kept


async def delete_limits(ctx: Context) -> list[str]:
    """Choose the delete bucket by the message's age (facts 1.5; issue #8330)."""
    message = ctx.state.messages.get(int(ctx.params["message_id"]))
    config = ctx.limits
    if message is None:
        return []  # a 404 falls into the young-message bucket
    age = ctx.state.clock.now() - snowflake_time(message.id)
    if age < config.young_delete_age:
        return []
    if age > TWO_WEEKS:
        return ["message_delete_old"]
    return ["message_delete"]


async def delete_message(ctx: Context) -> Reply:
    """``DELETE /channels/{channel_id}/messages/{message_id}``: 204."""
    channel = channel_for(ctx, ctx.params["channel_id"])
    message = message_in(ctx, channel, ctx.params["message_id"])
    if message.author_id != ctx.bot.id:
        require(ctx, channel, MANAGE_MESSAGES)
    ctx.state.delete_message(message)
    return Reply(204)


async def bulk_delete(ctx: Context) -> Reply:
    """``POST /channels/{channel_id}/messages/bulk-delete``: 2-100 ids, none older than 14 days."""
    channel = channel_for(ctx, ctx.params["channel_id"])
    if not ctx.state.permissions_in(channel, ctx.bot.id) & MANAGE_MESSAGES:
        raise missing_permissions()
    body = await ctx.json()
    ids = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(ids, list):
        raise form_error("messages", "BASE_TYPE_REQUIRED", "This field is required")
    if len(ids) < 2:
        raise form_error("messages", "BASE_TYPE_MIN_LENGTH", "Must be 2 or more in length.")
    if len(ids) > 100:
        raise form_error("messages", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    parsed = []
    for i, raw in enumerate(ids):
        text = str(raw)
        if isinstance(raw, bool) or not is_snowflake(text):
            raise form_error(
                ["messages", i], "NUMBER_TYPE_COERCE", f'Value "{text}" is not snowflake.'
            )
        parsed.append(int(text))
    if len(set(parsed)) != len(parsed):
        raise form_error("messages", "BASE_TYPE_DUPLICATES", "Message ids must be unique.")
    horizon = ctx.state.clock.now() - TWO_WEEKS
    if any(snowflake_time(i) < horizon for i in parsed):
        raise ApiError(400, 50034, "You can only bulk delete messages that are under 14 days old.")
    ctx.state.bulk_delete(channel, parsed)
    return Reply(204)
