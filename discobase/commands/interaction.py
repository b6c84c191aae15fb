"""Reading an interaction's payload (commands layer: pure, no I/O).

What kind of interaction it is, the options given (subcommands flattened), the option an
autocomplete is for, and the member who sent it. The payload is Discord's interaction object
as ``INTERACTION_CREATE`` carries it; its token is a secret and nothing here returns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "APPLICATION_COMMAND",
    "AUTOCOMPLETE",
    "COMPONENT",
    "PREFIX",
    "focused",
    "member_id",
    "member_permissions",
    "options",
]

APPLICATION_COMMAND, COMPONENT, AUTOCOMPLETE = 2, 3, 4
#: The start of every ``custom_id`` of the database's buttons (render.py makes them).
PREFIX = "discobase:"


def options(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``{name: value}`` of a command's options (subcommands flattened)."""
    found: dict[str, Any] = {}

    def walk(options: Any) -> None:
        for option in options or []:
            if isinstance(option, dict):
                if "value" in option:
                    found[str(option.get("name"))] = option["value"]
                walk(option.get("options"))

    walk((data.get("data") or {}).get("options"))
    return found


def focused(data: Mapping[str, Any]) -> str:
    """Return the name of the option an autocomplete interaction is for (``""``: none)."""

    def walk(options: Any) -> str | None:
        for option in options or []:
            if isinstance(option, dict):
                if option.get("focused"):
                    return str(option.get("name"))
                inner = walk(option.get("options"))
                if inner is not None:
                    return inner
        return None

    return walk((data.get("data") or {}).get("options")) or ""


def member_id(data: Mapping[str, Any]) -> str:
    """Return the id of the member who sent the interaction (``""`` when it names none)."""
    return str(((data.get("member") or {}).get("user") or {}).get("id", ""))


def member_permissions(data: Mapping[str, Any]) -> int:
    """Return the member's permission bits in the channel, as the payload gives them (0: none)."""
    member = data.get("member")
    try:
        return int((member or {}).get("permissions", 0))
    except (TypeError, ValueError):
        return 0
