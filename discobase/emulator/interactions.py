"""Interactions: slash commands, button clicks and autocomplete, as a server member makes them.

Layer: the emulator. Knows the state, the clock and the event bus; knows nothing of HTTP (the
REST handlers in ``rest/interactions.py`` and ``rest/commands.py`` call in here) nor of the
client packages.

What Discord does, and so what this module does (docs: interactions/receiving-and-responding,
application-commands, message-components):

- A member invokes a command, clicks a component or types into an autocomplete option; the
  app receives ``INTERACTION_CREATE`` over the gateway (no intent gates it) carrying an id, a
  token, ``member`` with its ``permissions`` in the channel and ``app_permissions``.
- The app must answer with ``POST /interactions/{id}/{token}/callback`` within 3 seconds; a
  later callback gets 404 10062 "Unknown interaction" and the member sees "The application
  did not respond". A second callback gets 400 40060 "Interaction has already been
  acknowledged".
- The token stays valid for 15 minutes for the webhook routes (follow-ups, editing or
  deleting the original response); after that they answer 401 50027 "Invalid Webhook Token".
- Flag 64 (EPHEMERAL) makes a response visible to the invoking member only: it is not a
  message of the channel, so no MESSAGE_CREATE is sent and history reads never return it.

Commands are kept in memory only (not in ``data_dir``), like the global commands of
``rest/commands.py``; so are interactions. What a member does (invoke a command, click,
type into an autocomplete option) is ``members.py``, the emulator's Python API for it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import EmulatorEvent
from .models import Message
from .state import State

__all__ = [
    "DEADLINE",
    "EPHEMERAL",
    "LOADING",
    "TOKEN_LIFETIME",
    "Interaction",
    "InteractionError",
    "InteractionResult",
    "InteractionStore",
    "components_of",
    "render_message",
]

#: Discord seconds an app has for its first callback.
DEADLINE = 3.0
#: Discord seconds an interaction token stays valid for follow-ups and edits.
TOKEN_LIFETIME = 15 * 60.0
EPHEMERAL = 1 << 6
LOADING = 1 << 7

PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
PONG, REPLY, DEFER, DEFER_UPDATE, UPDATE, AUTOCOMPLETE_RESULT, MODAL = 1, 4, 5, 6, 7, 8, 9

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)
BUTTON, STRING_SELECT = 2, 3
ACTION_ROW = 1
CHAT_INPUT_COMMAND_MESSAGE = 20
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class InteractionError(ValueError):
    """What a Discord client would not let a member send (an unknown command, a missing
    required option, a button that is not there, a command the member may not use)."""


@dataclass(slots=True)
class Interaction:
    """One interaction and everything the app answered to it.

    Attributes:
        id: The interaction's snowflake.
        token: Its token (secret; never shown in a repr).
        type: 2 command, 3 component, 4 autocomplete, 5 modal submit.
        bot_id: The app's bot user.
        application_id: The app.
        guild_id: Where it happened.
        channel_id: The channel it happened in.
        user_id: The member who made it.
        created: Discord time it was created.
        payload: The INTERACTION_CREATE payload.
        callback: The first callback's body, once the app answered.
        original_id: The original response message's id (None before one exists); for a
            component, the message the component is on once the app updates it.
        followup_ids: Follow-up message ids, in order.
        source_message_id: For a component, the message whose component was used.
        edits: How many times the app edited the original response.
    """

    id: str
    token: str = field(repr=False)
    type: int
    bot_id: str
    application_id: str
    guild_id: str
    channel_id: str
    user_id: str
    created: float
    payload: dict[str, Any] = field(repr=False)
    callback: dict[str, Any] | None = None
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    source_message_id: int | None = None
    edits: int = 0
    _waiters: list[asyncio.Future[None]] = field(default_factory=list, repr=False)

    def changed(self) -> None:
        """Wake everyone waiting for this interaction to change."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_change(self, timeout: float) -> bool:
        """Wait at most ``timeout`` real seconds for a change; return whether one came."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False
        return True


@dataclass(slots=True)
class InteractionResult:
    """What the app answered to an interaction, as the member would see it.

    Attributes:
        interaction: The INTERACTION_CREATE payload the app received.
        responded: Whether the app called back within 3 seconds.
        response_type: The callback's type (4 reply, 5 deferred, 6 deferred update, 7 update,
            8 autocomplete result, 9 modal), None without one.
        message: The original response message (or the updated message of a click), as
            the member sees it now; None when there is none.
        followups: The follow-up messages, oldest first.
        choices: An autocomplete result's choices.
        modal: A modal's ``data``.
        error: What the member's client shows when the app failed ("The application did
            not respond"), else None.
    """

    interaction: dict[str, Any]
    responded: bool
    response_type: int | None
    message: dict[str, Any] | None
    followups: list[dict[str, Any]]
    choices: list[dict[str, Any]] | None = None
    modal: dict[str, Any] | None = None
    error: str | None = None

    @property
    def content(self) -> str | None:
        """Return the message's text (None without a message)."""
        return None if self.message is None else self.message.get("content")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """Return the message's embeds ([] without a message)."""
        return [] if self.message is None else list(self.message.get("embeds") or [])

    @property
    def ephemeral(self) -> bool:
        """Return whether the message is visible to the invoking member only."""
        return self.message is not None and bool(self.message.get("flags", 0) & EPHEMERAL)

    @property
    def deferred(self) -> bool:
        """Return whether the message still shows "thinking..." (a deferral never followed up)."""
        return self.message is not None and bool(self.message.get("flags", 0) & LOADING)

    def buttons(self) -> list[dict[str, Any]]:
        """Return every button of the message (action rows' children of type 2)."""
        return list(components_of(self.message, BUTTON))

    def text(self) -> str:
        """Return the message as one text: content, then each embed's title, description,
        fields and footer, then the buttons' labels, for assertions and docs."""
        if self.message is None:
            return ""
        return render_message(self.message)


def render_message(message: Mapping[str, Any]) -> str:
    """Render a message as plain text: content, embeds (title, description, fields,
    footer) and buttons (``[label]``, ``[label (disabled)]``)."""
    lines: list[str] = []
    if message.get("content"):
        lines.append(str(message["content"]))
    for embed in message.get("embeds") or []:
        if embed.get("title"):
            lines.append(f"**{embed['title']}**")
        if embed.get("description"):
            lines.append(str(embed["description"]))
        for item in embed.get("fields") or []:
            lines.append(f"{item.get('name', '')}: {item.get('value', '')}")
        footer = embed.get("footer") or {}
        if footer.get("text"):
            lines.append(f"-- {footer['text']}")
    labels = []
    for button in components_of(message, BUTTON):
        label = str(button.get("label") or button.get("emoji", {}).get("name") or "?")
        labels.append(f"[{label}{' (disabled)' if button.get('disabled') else ''}]")
    if labels:
        lines.append(" ".join(labels))
    return "\n".join(lines)


def components_of(message: Mapping[str, Any] | None, kind: int) -> Any:
    """Yield the components of type ``kind`` of a message payload (rows and their children)."""
    if message is None:
        return
    for row in message.get("components") or []:
        if not isinstance(row, dict):
            continue
        if row.get("type") == kind:
            yield row
        for child in row.get("components") or []:
            if isinstance(child, dict) and child.get("type") == kind:
                yield child


class InteractionStore:
    """The interactions and guild commands of one emulator.

    Args:
        state: The emulator's state (channels, messages, the global commands, the bus).
    """

    def __init__(self, state: State) -> None:
        self.state = state
        self.by_id: dict[str, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}
        # (application id, guild id) -> command name -> command.
        self.guild_commands: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        # Ephemeral messages: not in any channel, seen by one member only.
        self.ephemeral: dict[int, Message] = {}
        # Message id -> the interaction it answers (for the message's interaction_metadata).
        self.answering: dict[int, Interaction] = {}
        self.counts: dict[str, int] = {"created": 0, "callbacks": 0, "late": 0, "unanswered": 0}
        # "application id:guild id" (or ":global") -> Discord times of command creations.
        self.command_creates: dict[str, list[float]] = {}

    def clear(self) -> None:
        """Forget every interaction, guild command and count (``Emulator.reset_data``)."""
        for table in (
            self.by_id,
            self._by_token,
            self.guild_commands,
            self.ephemeral,
            self.answering,
            self.command_creates,
        ):
            table.clear()
        self.counts = dict.fromkeys(self.counts, 0)

    # -- lookup ------------------------------------------------------------------------

    def find(self, interaction_id: str, token: str) -> Interaction | None:
        """Return the interaction whose id and token both match, or None."""
        found = self.by_id.get(interaction_id)
        if found is None or not secrets.compare_digest(found.token, token):
            return None
        return found

    def by_token(self, application_id: str, token: str) -> Interaction | None:
        """Return the interaction of ``application_id`` with this token, or None."""
        found = self._by_token.get(token)
        if found is None or found.application_id != application_id:
            return None
        return found

    def message(self, message_id: int) -> Message | None:
        """Return an interaction message: an ephemeral one, or one of a channel."""
        return self.ephemeral.get(message_id) or self.state.messages.get(message_id)

    def commands_for(self, application_id: str, guild_id: str) -> dict[str, dict[str, Any]]:
        """Return the commands a member of ``guild_id`` sees: global, then the guild's own."""
        found = dict(self.state.commands.get(application_id, {}))
        found.update(self.guild_commands.get((application_id, guild_id), {}))
        return found

    # -- messages ----------------------------------------------------------------------

    def message_payload(self, message: Message) -> dict[str, Any]:
        """Return an interaction message as the API shows it (webhook and interaction ids)."""
        payload = self.state.render.message(message)
        interaction = self.answering.get(message.id)
        if interaction is not None:
            payload["webhook_id"] = interaction.application_id
            payload["application_id"] = interaction.application_id
            payload["interaction_metadata"] = self._metadata(interaction)
        return payload

    def _metadata(self, interaction: Interaction) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "id": interaction.id,
            "type": interaction.type,
            "user": self.state.render.user(interaction.user_id),
            "authorizing_integration_owners": {"0": interaction.guild_id},
        }
        if interaction.original_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_id)
        if interaction.type == MESSAGE_COMPONENT and interaction.source_message_id is not None:
            metadata["interacted_message_id"] = str(interaction.source_message_id)
        return metadata

    def post(self, interaction: Interaction, fields: dict[str, Any], *, kind: int) -> Message:
        """Create a message answering ``interaction`` (ephemeral ones outside the channel)."""
        state = self.state
        flags = int(fields.get("flags", 0))
        if flags & EPHEMERAL:
            message = Message(
                id=state.snowflakes.next(),
                channel_id=interaction.channel_id,
                author_id=interaction.bot_id,
                timestamp=state.clock.now(),
                type=kind,
                **fields,
            )
            self.ephemeral[message.id] = message
            self.answering[message.id] = interaction
            return message
        channel = state.channels[interaction.channel_id]
        # Registered before the message exists would be better, but the id comes from
        # create_message; MESSAGE_CREATE therefore lacks webhook_id (a known simplification).
        message = state.create_message(channel, interaction.bot_id, type=kind, **fields)
        self.answering[message.id] = interaction
        return message

    def edit(self, message: Message, changes: dict[str, Any]) -> None:
        """Apply changes to an interaction message (MESSAGE_UPDATE for a channel's)."""
        changes = {**changes, "edited_timestamp": self.state.clock.now()}
        if message.id in self.ephemeral:
            for name, value in changes.items():
                setattr(message, name, value)
            return
        self.state.edit_message(message, changes)

    def delete(self, message: Message) -> None:
        """Delete an interaction message."""
        if self.ephemeral.pop(message.id, None) is not None:
            return
        self.state.delete_message(message)

    # -- creating interactions ---------------------------------------------------------

    def create(
        self,
        *,
        kind: int,
        bot_id: str,
        guild_id: str,
        channel_id: str,
        user_id: str,
        data: dict[str, Any],
        message: Message | None = None,
    ) -> Interaction:
        """Make an interaction and send INTERACTION_CREATE to the app's gateway sessions."""
        state = self.state
        bot = state.bots[bot_id]
        guild = state.guilds[guild_id]
        channel = state.channels[channel_id]
        interaction_id = state.new_id()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        member = state.render.member(guild, user_id, with_user=True)
        member["permissions"] = str(state.permissions_in(channel, user_id))
        payload: dict[str, Any] = {
            "id": interaction_id,
            "application_id": bot.application_id,
            "type": kind,
            "data": data,
            "guild": {"id": guild_id, "locale": "en-US", "features": []},
            "guild_id": guild_id,
            "channel": state.render.channel(channel),
            "channel_id": channel_id,
            "member": member,
            "token": token,
            "version": 1,
            "app_permissions": str(state.permissions_in(channel, bot_id)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if message is not None:
            payload["message"] = self.message_payload(message)
        interaction = Interaction(
            id=interaction_id,
            token=token,
            type=kind,
            bot_id=bot_id,
            application_id=bot.application_id,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            created=state.clock.now(),
            payload=payload,
            source_message_id=None if message is None else message.id,
        )
        self.by_id[interaction_id] = interaction
        self._by_token[token] = interaction
        self.counts["created"] += 1
        # Only this app sees it, whatever its intents. guild_id is left out of the bus event
        # on purpose: the gateway treats a targeted event with a guild as the bot's own join.
        state.events.publish(EmulatorEvent("INTERACTION_CREATE", payload, None, 0, bot_id))
        return interaction

    async def outcome(
        self, interaction: Interaction, *, settle: bool, timeout: float | None
    ) -> InteractionResult:
        """Wait for the app's callback (3 Discord seconds) and, when ``settle``, for a
        deferral to be followed up; return what the member sees."""
        clock = self.state.clock
        loop = asyncio.get_running_loop()
        deadline = loop.time() + clock.to_real(DEADLINE)
        while interaction.callback is None:
            left = deadline - loop.time()
            if left <= 0 or not await interaction.wait_change(left):
                break
        if interaction.callback is None:
            self.counts["unanswered"] += 1
            return self.result(interaction, error="The application did not respond")
        kind = interaction.callback.get("type")
        if settle and kind in (DEFER, DEFER_UPDATE):
            limit = clock.to_real(TOKEN_LIFETIME)
            if timeout is not None:
                limit = min(limit, timeout)
            end = loop.time() + limit
            while not self._settled(interaction):
                left = end - loop.time()
                if left <= 0 or not await interaction.wait_change(left):
                    break
        return self.result(interaction)

    def _settled(self, interaction: Interaction) -> bool:
        return bool(interaction.followup_ids) or interaction.edits > 0

    def result(self, interaction: Interaction, error: str | None = None) -> InteractionResult:
        """Return what the member sees of ``interaction`` now."""
        callback = interaction.callback or {}
        kind = callback.get("type")
        data = callback.get("data") or {}
        shown: Message | None = None
        if interaction.original_id is not None:
            shown = self.message(interaction.original_id)
        followups = [self.message(i) for i in interaction.followup_ids]
        return InteractionResult(
            interaction=interaction.payload,
            responded=interaction.callback is not None,
            response_type=kind,
            message=None if shown is None else self.message_payload(shown),
            followups=[self.message_payload(m) for m in followups if m is not None],
            choices=list(data.get("choices") or []) if kind == AUTOCOMPLETE_RESULT else None,
            modal=dict(data) if kind == MODAL else None,
            error=error,
        )
