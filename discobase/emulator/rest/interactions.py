"""Answering interactions: the callback and the interaction webhook (follow-ups, @original).

Layer: the emulator's REST side. These routes take no ``Authorization`` header (the
interaction token is the credential) and do not count toward the bot's global limit (facts
1.3). ``discobase/emulator/interactions.py`` keeps the interactions; this module validates
what the app sends, the way Discord answers it:

- ``POST /interactions/{interaction_id}/{interaction_token}/callback``: once, within 3
  seconds (later: 404 10062 Unknown interaction; twice: 400 40060), with a type the
  interaction allows (a command: 4, 5, 9; a component: 4-7, 9; autocomplete: 8; a modal
  submit: 4-7). 204, or 200 and an ``InteractionCallbackResponse`` with ``with_response``.
- ``POST /webhooks/{application_id}/{interaction_token}``: a follow-up message (200).
- ``GET``/``PATCH``/``DELETE .../messages/@original`` and ``.../messages/{message_id}``.
  The token works for 15 minutes (then 401 50027 Invalid Webhook Token); an unknown token is
  404 10015 Unknown Webhook. The path parameters are named as in Discord's spec
  (``webhook_id``, ``webhook_token``): the application's id is the webhook's.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError, form_error
from ..interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHAT_INPUT_COMMAND_MESSAGE,
    DEADLINE,
    DEFER,
    DEFER_UPDATE,
    EPHEMERAL,
    LOADING,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    PONG,
    REPLY,
    TOKEN_LIFETIME,
    UPDATE,
    Interaction,
)
from ..models import Message
from .context import Context, Reply
from .fields import list_field, message_content, message_embeds, truthy

__all__ = [
    "create_callback",
    "create_followup",
    "delete_webhook_message",
    "edit_webhook_message",
    "get_webhook_message",
]

SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
RESPONSE_FLAGS = EPHEMERAL | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
MAX_CHOICES = 25
MAX_ROWS = 5
MAX_ROW_ITEMS = 5

ALLOWED = {
    APPLICATION_COMMAND: (REPLY, DEFER, MODAL),
    MESSAGE_COMPONENT: (REPLY, DEFER, DEFER_UPDATE, UPDATE, MODAL),
    AUTOCOMPLETE: (AUTOCOMPLETE_RESULT,),
    MODAL_SUBMIT: (REPLY, DEFER, DEFER_UPDATE, UPDATE),
}


def unknown_interaction() -> ApiError:
    """Return 404 10062, Discord's answer to a late or unknown callback."""
    return ApiError(404, 10062, "Unknown interaction")


def _unknown_webhook() -> ApiError:
    return ApiError(404, 10015, "Unknown Webhook")


def _numbered(components: list[Any]) -> list[Any]:
    """Return a copy where every component has its numeric ``id`` (Discord numbers those
    left out 1, 2, ... in order, depth first, skipping ids already taken)."""
    import copy

    copied = copy.deepcopy(components)
    taken: set[int] = set()
    order: list[dict[str, Any]] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if not isinstance(item, dict):
                continue
            order.append(item)
            if isinstance(item.get("id"), int):
                taken.add(item["id"])
            walk(item.get("components") or [])

    walk(copied)
    next_id = 1
    for item in order:
        if not isinstance(item.get("id"), int):
            while next_id in taken:
                next_id += 1
            item["id"] = next_id
            taken.add(next_id)
    return copied


def _components(body: dict[str, Any], flags: int) -> list[Any]:
    rows = list_field(body, "components")
    if flags & IS_COMPONENTS_V2:
        return _numbered(rows)
    if len(rows) > MAX_ROWS:
        raise form_error("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or row.get("type") != 1:
            raise form_error(["components", i, "type"], "BASE_TYPE_CHOICES", "Must be 1.")
        children = row.get("components")
        if not isinstance(children, list) or not 1 <= len(children) <= MAX_ROW_ITEMS:
            raise form_error(
                ["components", i, "components"],
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            )
        seen: set[str] = set()
        for j, child in enumerate(children):
            path: list[str | int] = ["components", i, "components", j]
            if not isinstance(child, dict) or child.get("type") not in (2, 3, 5, 6, 7, 8):
                raise form_error([*path, "type"], "BASE_TYPE_CHOICES", "Invalid component.")
            custom_id = child.get("custom_id")
            if child.get("type") == 2 and child.get("style") == 5:
                if not child.get("url"):
                    raise form_error([*path, "url"], "BASE_TYPE_REQUIRED", "Required.")
                continue
            if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
                raise form_error(
                    [*path, "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be 1 to 100 long."
                )
            if custom_id in seen:
                raise form_error(
                    [*path, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED", "Duplicated."
                )
            seen.add(custom_id)
            label = child.get("label")
            if label is not None and (not isinstance(label, str) or len(label) > 80):
                raise form_error([*path, "label"], "BASE_TYPE_MAX_LENGTH", "At most 80.")
    return _numbered(rows)


def _message_fields(data: Any, *, create: bool) -> dict[str, Any]:
    """Validate the message part of a callback or webhook body; return Message fields."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise form_error("data", "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    fields: dict[str, Any] = {}
    flags = data.get("flags") or 0
    if not isinstance(flags, int) or flags & ~RESPONSE_FLAGS:
        raise form_error("flags", "MESSAGE_FLAGS_INVALID", "Invalid message flags.")
    if create or "content" in data:
        fields["content"] = message_content(data)
    if create or "embeds" in data or "embed" in data:
        fields["embeds"] = message_embeds(data)
    if create or "components" in data:
        fields["components"] = _components(data, flags)
    if create:
        fields["flags"] = flags
    elif data.get("flags") is not None:
        fields["flags"] = flags & ~EPHEMERAL  # visibility is fixed when the message is made
    return fields


def _not_empty(fields: dict[str, Any]) -> None:
    if not (fields.get("content") or fields.get("embeds") or fields.get("components")):
        raise ApiError(400, 50006, "Cannot send an empty message")


def _choices(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        raise form_error("data", "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise form_error(["data", "choices"], "BASE_TYPE_REQUIRED", "This field is required")
    if len(choices) > MAX_CHOICES:
        raise form_error(
            ["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
        )
    for i, choice in enumerate(choices):
        path: list[str | int] = ["data", "choices", i]
        if not isinstance(choice, dict):
            raise form_error(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        name = choice.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise form_error(
                [*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        value = choice.get("value")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise form_error([*path, "value"], "BASE_TYPE_REQUIRED", "This field is required")
        if isinstance(value, str) and len(value) > 100:
            raise form_error([*path, "value"], "BASE_TYPE_MAX_LENGTH", "At most 100.")
    return choices


def _modal(data: Any) -> None:
    if not isinstance(data, dict):
        raise form_error("data", "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    for key in ("custom_id", "title", "components"):
        if not data.get(key):
            raise form_error(["data", key], "BASE_TYPE_REQUIRED", "This field is required")


async def create_callback(ctx: Context) -> Reply:
    """``POST /interactions/{interaction_id}/{interaction_token}/callback``."""
    store = ctx.interactions
    interaction = store.find(ctx.params["interaction_id"], ctx.params["interaction_token"])
    if interaction is None:
        raise unknown_interaction()
    if interaction.callback is not None:
        raise ApiError(400, 40060, "Interaction has already been acknowledged.")
    if ctx.state.clock.now() - interaction.created > DEADLINE:
        store.counts["late"] += 1
        raise unknown_interaction()
    body = await ctx.json()
    if not isinstance(body, dict):
        raise form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
    kind = body.get("type")
    allowed = ALLOWED.get(interaction.type, ())
    if kind == PONG or kind not in allowed:
        raise form_error(
            "type",
            "BASE_TYPE_CHOICES",
            f"Value must be one of {{{', '.join(str(a) for a in allowed)}}}.",
        )
    data = body.get("data")
    message: Message | None = None
    if kind == REPLY:
        fields = _message_fields(data, create=True)
        _not_empty(fields)
        shape = CHAT_INPUT_COMMAND_MESSAGE if interaction.type == APPLICATION_COMMAND else 0
        message = store.post(interaction, fields, kind=shape)
        interaction.original_id = message.id
    elif kind == DEFER:
        flags = (data.get("flags") if isinstance(data, dict) else None) or 0
        if not isinstance(flags, int):
            raise form_error(["data", "flags"], "NUMBER_TYPE_COERCE", "Must be an integer.")
        shape = CHAT_INPUT_COMMAND_MESSAGE if interaction.type == APPLICATION_COMMAND else 0
        fields = {
            "content": "",
            "embeds": [],
            "components": [],
            "flags": LOADING | (flags & EPHEMERAL),
        }
        message = store.post(interaction, fields, kind=shape)
        interaction.original_id = message.id
    elif kind in (UPDATE, DEFER_UPDATE):
        source = interaction.source_message_id
        message = None if source is None else store.message(source)
        if message is None:
            raise ApiError(404, 10008, "Unknown Message")
        if kind == UPDATE:
            fields = _message_fields(data, create=False)
            store.edit(message, fields)
        interaction.original_id = message.id
    elif kind == AUTOCOMPLETE_RESULT:
        _choices(data)
    elif kind == MODAL:
        _modal(data)
    interaction.callback = body
    store.counts["callbacks"] += 1
    interaction.changed()
    if not truthy(ctx.query.get("with_response", "false")):
        return Reply(204)
    response: dict[str, Any] = {
        "interaction": {
            "id": interaction.id,
            "type": interaction.type,
            "activity_instance_id": None,
            "channel_id": interaction.channel_id,
            "guild_id": interaction.guild_id,
        }
    }
    if message is not None:
        response["interaction"].update(
            {
                "response_message_id": str(message.id),
                "response_message_loading": bool(message.flags & LOADING),
                "response_message_ephemeral": bool(message.flags & EPHEMERAL),
            }
        )
        if kind in (REPLY, UPDATE):  # the spec's resources: a message made or updated
            response["resource"] = {"type": kind, "message": store.message_payload(message)}
    return Reply(200, response)


def _webhook_interaction(ctx: Context) -> Interaction:
    store = ctx.interactions
    interaction = store.by_token(ctx.params["webhook_id"], ctx.params["webhook_token"])
    if interaction is None or interaction.callback is None:
        raise _unknown_webhook()
    if ctx.state.clock.now() - interaction.created > TOKEN_LIFETIME:
        raise ApiError(401, 50027, "Invalid Webhook Token")
    return interaction


def _target(ctx: Context, interaction: Interaction) -> Message:
    store = ctx.interactions
    raw = ctx.params.get("message_id", "@original")
    if raw == "@original":
        wanted = interaction.original_id
    else:
        wanted = int(raw)
        if wanted not in interaction.followup_ids and wanted != interaction.original_id:
            wanted = None
    message = None if wanted is None else store.message(wanted)
    if message is None:
        raise ApiError(404, 10008, "Unknown Message")
    return message


async def create_followup(ctx: Context) -> Reply:
    """``POST /webhooks/{webhook_id}/{webhook_token}``: a follow-up message (200)."""
    interaction = _webhook_interaction(ctx)
    body = await ctx.json()
    fields = _message_fields(body, create=True)
    _not_empty(fields)
    store = ctx.interactions
    message = store.post(interaction, fields, kind=0)
    interaction.followup_ids.append(message.id)
    interaction.changed()
    return Reply(200, store.message_payload(message))


async def get_webhook_message(ctx: Context) -> Reply:
    """``GET .../messages/@original`` or ``.../messages/{message_id}``."""
    interaction = _webhook_interaction(ctx)
    return Reply(200, ctx.interactions.message_payload(_target(ctx, interaction)))


async def edit_webhook_message(ctx: Context) -> Reply:
    """``PATCH .../messages/@original`` or ``.../messages/{message_id}``: 200 and the message.

    Editing a deferred response's "thinking" message replaces it with the answer.
    """
    interaction = _webhook_interaction(ctx)
    message = _target(ctx, interaction)
    body = await ctx.json()
    fields = _message_fields(body, create=False)
    requested = fields.pop("flags", None)
    base = message.flags if requested is None else requested
    # The edit replaces a deferral's "thinking"; visibility stays what it was.
    fields["flags"] = (base & ~(LOADING | EPHEMERAL)) | (message.flags & EPHEMERAL)
    after = {
        "content": fields.get("content", message.content),
        "embeds": fields.get("embeds", message.embeds),
        "components": fields.get("components", message.components),
    }
    _not_empty(after)
    store = ctx.interactions
    store.edit(message, fields)
    if message.id == interaction.original_id:
        interaction.edits += 1
    interaction.changed()
    return Reply(200, store.message_payload(message))


async def delete_webhook_message(ctx: Context) -> Reply:
    """``DELETE .../messages/@original`` or ``.../messages/{message_id}``: 204."""
    interaction = _webhook_interaction(ctx)
    message = _target(ctx, interaction)
    ctx.interactions.delete(message)
    if message.id == interaction.original_id:
        interaction.edits += 1
    interaction.changed()
    return Reply(204)
