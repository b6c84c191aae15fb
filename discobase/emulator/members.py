"""What a server member does: join a guild, invoke a slash command, click, autocomplete.

Layer: the emulator. ``InteractionsMixin`` is that part of ``Emulator``'s Python API; it
checks what the member's Discord client would refuse to send (an unknown command, a missing
or mistyped option, a disabled button, a command the member may not see), then makes the
interaction through ``interactions.InteractionStore`` and waits for the app's answer. Knows
the state and the store; nothing of HTTP or of the client packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .interactions import (
    APPLICATION_COMMAND,
    ATTACHMENT,
    AUTOCOMPLETE,
    BOOLEAN,
    BUTTON,
    CHANNEL,
    INTEGER,
    MENTIONABLE,
    MESSAGE_COMPONENT,
    NUMBER,
    ROLE,
    STRING,
    STRING_SELECT,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    USER,
    InteractionError,
    InteractionResult,
    InteractionStore,
    components_of,
)
from .state import State

__all__ = ["InteractionsMixin"]


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
    """The members and interactions part of ``Emulator``'s Python API.

    Attributes:
        state: The emulator's state.
        interactions: The interactions and guild commands.
    """

    state: State
    interactions: InteractionStore

    def forget_interactions(self) -> None:
        """Forget every interaction and guild command (``reset_data`` calls this)."""
        self.interactions.clear()

    def create_member(self, guild_id: str | int, name: str = "member", permissions: int = 0) -> str:
        """Add a (human) member to a guild with its own role holding ``permissions``.

        Returns:
            The member's user id (use it in ``invoke_command``, ``click``, ``autocomplete``).
        """
        guild = self.state.guilds.get(str(guild_id))
        if guild is None:
            raise KeyError(f"no guild {guild_id}")
        return self.state.add_human(guild, name, int(permissions))

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
        state = self.state
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
        state = self.state
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
        gid = str(guild_id)
        app = self._bot_for(gid, bot, name.strip().lstrip("/").split()[0] if name else None)
        user, channel = self._where(gid, member, None if channel_id is None else str(channel_id))
        store = self.interactions
        command, path = _resolve_command(store, app.application_id, gid, name)
        required = command.get("default_member_permissions")
        if required is not None and not override_permissions:
            guild = self.state.guilds[gid]
            held = self.state.permissions_in(self.state.channels[channel], user)
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
            (c for c in components_of(source_payload, BUTTON) if c.get("custom_id") == custom_id),
            None,
        ) or next(
            (
                c
                for c in components_of(source_payload, STRING_SELECT)
                if c.get("custom_id") == custom_id
            ),
            None,
        )
        if component is None:
            raise InteractionError(f"the message has no component {custom_id!r}")
        if component.get("disabled"):
            raise InteractionError(f"the component {custom_id!r} is disabled")
        channel = self.state.channels.get(found.channel_id)
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
