"""Pins on the current ``/messages/pins`` endpoints (and the deprecated ``/pins`` ones).

Layer: the emulator's REST side. At most 250 pins per channel (30003); pinning needs
PIN_MESSAGES and posts a type-6 system message.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import ApiError, form_error
from ..permissions import PIN_MESSAGES, READ_MESSAGE_HISTORY
from ..render import iso
from .access import channel_for, message_in
from .context import Context, Reply
from .fields import query_int

__all__ = ["list_pins", "list_pins_legacy", "pin_message", "unpin_message"]

MAX_PINS = 250


async def list_pins(ctx: Context) -> Reply:
    """``GET /channels/{id}/messages/pins?before=ISO8601&limit=1-50``, newest pin first."""
    channel = channel_for(ctx, ctx.params["channel_id"])
    limit = query_int(ctx, "limit", 50, 1, 50)
    raw_before = ctx.query.get("before")
    # Compared as datetimes at the microsecond precision of the timestamps we hand out, so a
    # page's last ``pinned_at`` passed back as ``before`` is excluded exactly (a float compare
    # against the unrounded pin time would let it through about half the time).
    before: datetime | None = None
    if raw_before is not None:
        try:
            before = datetime.fromisoformat(raw_before.replace("Z", "+00:00"))
        except ValueError:
            raise form_error("before", "DATE_TYPE_PARSE", "Could not parse date.") from None
        if before.tzinfo is None:
            before = before.replace(tzinfo=UTC)
    if not ctx.state.permissions_in(channel, ctx.bot.id) & READ_MESSAGE_HISTORY:
        return Reply(200, {"items": [], "has_more": False})
    pins = [
        p
        for p in reversed(channel.pins)
        if before is None or datetime.fromisoformat(iso(p[0])) < before
    ]
    items = [
        {
            "pinned_at": iso(at),
            "message": ctx.render.message(ctx.state.messages[mid], ctx.bot),
        }
        for at, mid in pins[:limit]
    ]
    return Reply(200, {"items": items, "has_more": len(pins) > limit})


async def list_pins_legacy(ctx: Context) -> Reply:
    """``GET /channels/{id}/pins`` (deprecated): the 50 newest pinned messages."""
    channel = channel_for(ctx, ctx.params["channel_id"])
    if not ctx.state.permissions_in(channel, ctx.bot.id) & READ_MESSAGE_HISTORY:
        return Reply(200, [])
    newest = list(reversed(channel.pins))[:50]
    return Reply(200, [ctx.render.message(ctx.state.messages[mid], ctx.bot) for _, mid in newest])


async def pin_message(ctx: Context) -> Reply:
    """``PUT /channels/{id}/messages/pins/{message_id}``: 204."""
    channel = channel_for(ctx, ctx.params["channel_id"], PIN_MESSAGES)
    message = message_in(ctx, channel, ctx.params["message_id"])
    if message.type not in (0, 19):
        raise ApiError(400, 50021, "Cannot execute action on a system message")
    if message.pinned:
        return Reply(204)
    if len(channel.pins) >= MAX_PINS:
        raise ApiError(400, 30003, f"Maximum number of pins reached ({MAX_PINS})")
    ctx.state.pin(channel, message, ctx.bot.id)
    return Reply(204)


async def unpin_message(ctx: Context) -> Reply:
    """``DELETE /channels/{id}/messages/pins/{message_id}``: 204."""
    channel = channel_for(ctx, ctx.params["channel_id"], PIN_MESSAGES)
    message = message_in(ctx, channel, ctx.params["message_id"])
    if message.pinned:
        ctx.state.unpin(channel, message)
    return Reply(204)
