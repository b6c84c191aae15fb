"""The error answers of the emulated Discord API, as exceptions the handlers raise.

Layer: the emulator's REST side. These are *server* answers, not the client's typed errors
(those live in ``discobase.errors`` and ``discobase.http.errors``, which this package must not
import).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "field_error",
    "form_error",
    "message_for",
    "missing_access",
    "missing_permissions",
    "unknown",
]


class ApiError(Exception):
    """An error response: HTTP ``status`` and Discord's JSON ``{code, message, errors?}``."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """Return the JSON body Discord sends."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


_UNKNOWN = {
    "channel": (10003, "Unknown Channel"),
    "guild": (10004, "Unknown Guild"),
    "member": (10007, "Unknown Member"),
    "message": (10008, "Unknown Message"),
    "user": (10013, "Unknown User"),
    "attachment": (10049, "Unknown Attachment"),
}


def unknown(kind: str) -> ApiError:
    """Return the 404 for an unknown resource of ``kind`` (channel, guild, member, message, ...)."""
    code, message = _UNKNOWN[kind]
    return ApiError(404, code, message)


# The ``message`` Discord sends with a JSON code, for injected errors that name only the code.
_MESSAGES = {
    **dict(_UNKNOWN.values()),
    # Staff-verified wording (discord-api-docs PR #8290).
    20028: "The write action you are performing on the channel has hit the write rate limit.",
    # Not published; worded like 20028, with the server in place of the channel.
    20029: "The write action you are performing on the server has hit the write rate limit.",
    40333: "internal network error",  # Cloudflare's block (discord-api-docs #6473)
    50001: "Missing Access",
    50013: "Missing Permissions",
}


def message_for(code: int) -> str | None:
    """Return the message Discord sends with JSON ``code``, when the emulator knows it."""
    return _MESSAGES.get(code)


def missing_access() -> ApiError:
    """Return 403 50001 (the bot cannot see the resource)."""
    return ApiError(403, 50001, "Missing Access")


def missing_permissions() -> ApiError:
    """Return 403 50013 (the bot sees it but lacks a permission)."""
    return ApiError(403, 50013, "Missing Permissions")


def field_error(code: str, message: str) -> dict[str, Any]:
    """Return one leaf of Discord's nested ``errors``: ``{"_errors": [{code, message}]}``."""
    return {"_errors": [{"code": code, "message": message}]}


def form_error(path: list[str | int] | str, code: str, message: str) -> ApiError:
    """Return 400 50035 "Invalid Form Body" with the leaf at ``path`` in the nested errors.

    Args:
        path: Keys from the body's root; list indexes become string keys (``"0"``).
        code: The leaf code, e.g. ``BASE_TYPE_MAX_LENGTH``.
        message: The leaf message.
    """
    keys = [path] if isinstance(path, str) else path
    errors: dict[str, Any] = field_error(code, message)
    for key in reversed(keys):
        errors = {str(key): errors}
    return ApiError(400, 50035, "Invalid Form Body", errors)
