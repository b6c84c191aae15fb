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
``rest/commands.py``; so are interactions.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import EmulatorEvent
from .models import Member, Message, Role

if TYPE_CHECKING:
    from .server import Emulator

__all__ = [
    "DEADLINE",
    "EPHEMERAL",
    "LOADING",
    "TOKEN_LIFETIME",
    "Interaction",
    "InteractionError",
    "InteractionResult",
    "InteractionStore",
    "InteractionsMixin",
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
        return list(_components_of(self.message, BUTTON))

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
    for button in _components_of(message, BUTTON):
        label = str(button.get("label") or button.get("emoji", {}).get("name") or "?")
        labels.append(f"[{label}{' (disabled)' if button.get('disabled') else ''}]")
    if labels:
        lines.append(" ".join(labels))
    return "\n".join(lines)


def _components_of(message: Mapping[str, Any] | None, kind: int) -> Any:
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
        emu: The emulator.
    """

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
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
        return self.ephemeral.get(message_id) or self.emu.state.messages.get(message_id)

    def commands_for(self, application_id: str, guild_id: str) -> dict[str, dict[str, Any]]:
        """Return the commands a member of ``guild_id`` sees: global, then the guild's own."""
        found = dict(self.emu.state.commands.get(application_id, {}))
        found.update(self.guild_commands.get((application_id, guild_id), {}))
        return found

    # -- messages ----------------------------------------------------------------------

    def message_payload(self, message: Message) -> dict[str, Any]:
        """Return an interaction message as the API shows it (webhook and interaction ids)."""
        state = self.emu.state
        payload = state.render.message(message)
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
            "user": self.emu.state.render.user(interaction.user_id),
            "authorizing_integration_owners": {"0": interaction.guild_id},
        }
        if interaction.original_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_id)
        if interaction.type == MESSAGE_COMPONENT and interaction.source_message_id is not None:
            metadata["interacted_message_id"] = str(interaction.source_message_id)
        return metadata

    def post(self, interaction: Interaction, fields: dict[str, Any], *, kind: int) -> Message:
        """Create a message answering ``interaction`` (ephemeral ones outside the channel)."""
        state = self.emu.state
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
        changes = {**changes, "edited_timestamp": self.emu.state.clock.now()}
        if message.id in self.ephemeral:
            for name, value in changes.items():
                setattr(message, name, value)
            return
        self.emu.state.edit_message(message, changes)

    def delete(self, message: Message) -> None:
        """Delete an interaction message."""
        if self.ephemeral.pop(message.id, None) is not None:
            return
        self.emu.state.delete_message(message)

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
        emu = self.emu
        state = emu.state
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
        clock = self.emu.clock
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


def _resolve_command(
    store: InteractionStore, application_id: str, guild_id: str, name: str
) -> tuple[dict[str, Any], list[str]]:
    parts = name.strip().lstrip("/").split()
    if not parts:
        raise InteractionError("a command name is needed")
    command = store.commands_for(application_id, guild_id).get(parts[0])
    if command is None or command.get("type", 1) != 1:
        raise InteractionError(f"no slash command /{parts[0]} in this guild")
    return command, parts[1:]


def _option_value(option: dict[str, Any], value: Any, *, partial: bool) -> Any:
    """Check a typed value as the Discord client does before sending it."""
    kind = option.get("type")
    name = option.get("name")
    if partial:  # autocomplete sends what is typed so far, as typed
        return value if isinstance(value, str) else str(value)
    if kind == STRING:
        if not isinstance(value, str):
            raise InteractionError(f"option {name!r} takes text, not {value!r}")
        low, high = option.get("min_length", 0), option.get("max_length", 6000)
        if not low <= len(value) <= high:
            raise InteractionError(f"option {name!r} takes {low} to {high} characters")
    elif kind == INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InteractionError(f"option {name!r} takes a whole number, not {value!r}")
    elif kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InteractionError(f"option {name!r} takes a number, not {value!r}")
    elif kind == BOOLEAN:
        if not isinstance(value, bool):
            raise InteractionError(f"option {name!r} takes True or False, not {value!r}")
    elif kind in (USER, CHANNEL, ROLE, MENTIONABLE, ATTACHMENT):
        value = str(value)
    if kind in (INTEGER, NUMBER):
        low, high = option.get("min_value"), option.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InteractionError(f"option {name!r} is out of range")
    choices = option.get("choices")
    if choices and value not in [c.get("value") for c in choices]:
        raise InteractionError(f"option {name!r} must be one of its choices")
    return value


def _options(
    declared: list[dict[str, Any]],
    given: Mapping[str, Any],
    *,
    focused: str | None = None,
) -> list[dict[str, Any]]:
    by_name = {o.get("name"): o for o in declared}
    for name in given:
        if name not in by_name:
            raise InteractionError(f"the command has no option {name!r}")
    out: list[dict[str, Any]] = []
    for option in declared:
        name = str(option.get("name"))
        if name not in given:
            if option.get("required") and focused is None:
                raise InteractionError(f"option {name!r} is required")
            continue
        is_focused = name == focused
        value = _option_value(option, given[name], partial=focused is not None)
        item: dict[str, Any] = {"name": name, "type": option.get("type"), "value": value}
        if is_focused:
            if not option.get("autocomplete"):
                raise InteractionError(f"option {name!r} has no autocomplete")
            item["focused"] = True
        out.append(item)
    if focused is not None and focused not in given:
        raise InteractionError(f"the focused option {focused!r} must be given")
    return out


class InteractionsMixin:
    """The members and interactions part of ``Emulator``'s Python API."""

    @property
    def interactions(self) -> InteractionStore:
        """Return the interactions and guild commands (made on first use)."""
        store = self.__dict__.get("_interaction_store")
        if store is None:
            store = self.__dict__["_interaction_store"] = InteractionStore(self._emu())
        return store

    def forget_interactions(self) -> None:
        """Forget every interaction and guild command (``reset_data`` calls this)."""
        self.__dict__.pop("_interaction_store", None)

    def _emu(self) -> Emulator:
        return self  # type: ignore[return-value]

    def create_member(self, guild_id: str | int, name: str = "member", permissions: int = 0) -> str:
        """Add a (human) member to a guild with its own role holding ``permissions``.

        Returns:
            The member's user id (use it in ``invoke_command``, ``click``, ``autocomplete``).
        """
        emu = self._emu()
        state = emu.state
        guild = state.guilds.get(str(guild_id))
        if guild is None:
            raise KeyError(f"no guild {guild_id}")
        user_id = state.new_id()
        state.humans[user_id] = name
        role_id = state.new_id()
        guild.roles[role_id] = Role(role_id, f"{name}'s role", int(permissions), len(guild.roles))
        guild.members[user_id] = Member(user_id, [role_id], state.clock.now())
        state._save("human", user_id, name)
        state._save("guild", guild.id, guild)
        return user_id

    def guild_commands(self, guild_id: str | int, bot: Any = None) -> list[dict[str, Any]]:
        """Return the commands registered in a guild (of one bot's app, or of every app)."""
        store = self.interactions
        return [
            command
            for (app, guild), commands in store.guild_commands.items()
            if guild == str(guild_id) and (bot is None or app == bot.application_id)
            for command in commands.values()
        ]

    def _bot_for(self, guild_id: str, bot: Any, name: str | None = None) -> Any:
        state = self._emu().state
        if bot is not None:
            return bot
        guild = state.guilds.get(guild_id)
        if guild is None:
            raise InteractionError(f"no guild {guild_id}")
        apps = [state.bots[m] for m in guild.members if m in state.bots]
        if name is not None:
            store = self.interactions
            apps = [b for b in apps if name in store.commands_for(b.application_id, guild_id)]
        if len(apps) != 1:
            raise InteractionError(f"{len(apps)} apps in guild {guild_id} match; pass bot=")
        return apps[0]

    def _where(self, guild_id: str, user_id: str | None, channel_id: str | None) -> tuple[str, str]:
        state = self._emu().state
        guild = state.guilds.get(guild_id)
        if guild is None:
            raise InteractionError(f"no guild {guild_id}")
        user = guild.owner_id if user_id is None else str(user_id)
        if user not in guild.members:
            raise InteractionError(f"user {user} is not a member of guild {guild_id}")
        if channel_id is None:
            channel_id = next(c for c in guild.channel_ids if state.channels[c].type == 0)
        if str(channel_id) not in guild.channel_ids:
            raise InteractionError(f"channel {channel_id} is not in guild {guild_id}")
        return user, str(channel_id)

    async def invoke_command(
        self,
        guild_id: str | int,
        member: str | None,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        channel_id: str | int | None = None,
        bot: Any = None,
        override_permissions: bool = False,
        settle: bool = True,
        timeout: float | None = None,
    ) -> InteractionResult:
        """Invoke a slash command as a member and return what the app answered.

        The member's client shows only the commands it may use: a command whose
        ``default_member_permissions`` the member lacks is refused here, unless
        ``override_permissions`` (as when the server's Integrations settings allow it).

        Args:
            guild_id: The guild.
            member: The member's user id (``create_member``); None for the guild's owner.
            name: The command's name, with a subcommand after a space (``"table show"``).
            options: Option name -> value, typed as the client sends them.
            channel_id: Where it is typed (default: the guild's first text channel).
            bot: The app (default: the only one with that command in the guild).
            override_permissions: Skip the client's ``default_member_permissions`` check.
            settle: After a deferral, wait for the original response or a follow-up.
            timeout: Real seconds to wait for a deferred answer at most (default: the
                token's 15 minutes, scaled).

        Raises:
            InteractionError: What the Discord client would not send.
        """
        emu = self._emu()
        gid = str(guild_id)
        app = self._bot_for(gid, bot, name.strip().lstrip("/").split()[0] if name else None)
        user, channel = self._where(gid, member, None if channel_id is None else str(channel_id))
        store = self.interactions
        command, path = _resolve_command(store, app.application_id, gid, name)
        required = command.get("default_member_permissions")
        if required is not None and not override_permissions:
            guild = emu.state.guilds[gid]
            held = emu.state.permissions_in(emu.state.channels[channel], user)
            if held & int(required) != int(required) and user != guild.owner_id:
                raise InteractionError(
                    f"/{command['name']} is not shown to this member: it needs permissions "
                    f"{required} (default_member_permissions)"
                )
        data = self._command_data(command, path, options or {}, gid, focused=None)
        interaction = store.create(
            kind=APPLICATION_COMMAND,
            bot_id=app.id,
            guild_id=gid,
            channel_id=channel,
            user_id=user,
            data=data,
        )
        return await store.outcome(interaction, settle=settle, timeout=timeout)

    def _command_data(
        self,
        command: dict[str, Any],
        path: list[str],
        options: Mapping[str, Any],
        guild_id: str,
        *,
        focused: str | None,
    ) -> dict[str, Any]:
        declared = list(command.get("options") or [])
        nested: list[tuple[str, int]] = []
        for part in path:
            sub = next(
                (
                    o
                    for o in declared
                    if o.get("name") == part and o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)
                ),
                None,
            )
            if sub is None:
                raise InteractionError(f"/{command['name']} has no subcommand {part!r}")
            nested.append((part, int(sub["type"])))
            declared = list(sub.get("options") or [])
        if any(o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in declared):
            raise InteractionError(f"/{command['name']} needs a subcommand")
        built = _options(declared, options, focused=focused)
        for part, kind in reversed(nested):
            built = [{"name": part, "type": kind, "options": built}]
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": command.get("type", 1),
        }
        if built:
            data["options"] = built
        if command.get("guild_id"):
            data["guild_id"] = guild_id
        return data

    async def autocomplete(
        self,
        guild_id: str | int,
        member: str | None,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        channel_id: str | int | None = None,
        bot: Any = None,
    ) -> list[dict[str, Any]] | None:
        """Type into an autocomplete option; return the app's choices (None: no answer).

        Args:
            guild_id, member, name, channel_id, bot: As for ``invoke_command``.
            options: What is typed so far in each option (strings, as typed).
            focused: The option being typed into (it must have ``autocomplete``).
        """
        result = await self.autocomplete_result(
            guild_id, member, name, options, focused, channel_id=channel_id, bot=bot
        )
        return result.choices

    async def autocomplete_result(
        self,
        guild_id: str | int,
        member: str | None,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        channel_id: str | int | None = None,
        bot: Any = None,
    ) -> InteractionResult:
        """Like ``autocomplete``, returning the whole result (responded, payload, ...)."""
        gid = str(guild_id)
        app = self._bot_for(gid, bot, name.strip().lstrip("/").split()[0] if name else None)
        user, channel = self._where(gid, member, None if channel_id is None else str(channel_id))
        store = self.interactions
        command, path = _resolve_command(store, app.application_id, gid, name)
        data = self._command_data(command, path, options, gid, focused=focused)
        interaction = store.create(
            kind=AUTOCOMPLETE,
            bot_id=app.id,
            guild_id=gid,
            channel_id=channel,
            user_id=user,
            data=data,
        )
        return await store.outcome(interaction, settle=False, timeout=None)

    async def click(
        self,
        message: InteractionResult | Mapping[str, Any],
        custom_id: str,
        member: str | None = None,
        *,
        values: list[str] | None = None,
        settle: bool = True,
        timeout: float | None = None,
    ) -> InteractionResult:
        """Click a button (or pick ``values`` in a select menu) of an app's message.

        Args:
            message: The message (a result of ``invoke_command``/``click`` or its
                ``message``, or a follow-up's payload).
            custom_id: The component's ``custom_id``.
            member: Who clicks (default: the member an ephemeral message was shown to,
                else the guild's owner).
            values: For a select menu, the values picked.
            settle: After a deferral, wait for the app's edit or follow-up.
            timeout: As for ``invoke_command``.

        Raises:
            InteractionError: no such message, component, or a disabled one; an ephemeral
                message clicked by another member.
        """
        payload = message.message if isinstance(message, InteractionResult) else message
        if payload is None:
            raise InteractionError("that interaction has no message to click")
        store = self.interactions
        found = store.message(int(payload["id"]))
        if found is None:
            raise InteractionError("the message no longer exists")
        owner = store.answering.get(found.id)
        source_payload = store.message_payload(found)
        component = next(
            (c for c in _components_of(source_payload, BUTTON) if c.get("custom_id") == custom_id),
            None,
        ) or next(
            (
                c
                for c in _components_of(source_payload, STRING_SELECT)
                if c.get("custom_id") == custom_id
            ),
            None,
        )
        if component is None:
            raise InteractionError(f"the message has no component {custom_id!r}")
        if component.get("disabled"):
            raise InteractionError(f"the component {custom_id!r} is disabled")
        channel = self._emu().state.channels.get(found.channel_id)
        if channel is None:
            raise InteractionError("the message's channel no longer exists")
        gid = channel.guild_id
        ephemeral = found.id in store.ephemeral
        if member is None:
            member = owner.user_id if owner is not None and ephemeral else None
        user, channel_id = self._where(gid, member, channel.id)
        if ephemeral and owner is not None and user != owner.user_id:
            raise InteractionError("an ephemeral message is seen by its member only")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] == STRING_SELECT:
            data["values"] = list(values or [])
        interaction = store.create(
            kind=MESSAGE_COMPONENT,
            bot_id=found.author_id,
            guild_id=gid,
            channel_id=channel_id,
            user_id=user,
            data=data,
            message=found,
        )
        return await store.outcome(interaction, settle=settle, timeout=timeout)
