"""Errors of the gateway client (gateway layer: knows nothing of aiohttp, HTTP or storage).

Only failures that reconnecting cannot cure reach the caller; every other disconnect is
handled inside the client. A token never appears in a message or a repr:

```text
DiscobaseError                        discobase.errors
├── UsageError
│   └── GatewayClientClosed           the client was closed (or never run) while waited on
└── GatewayError                      the gateway connection failed for good
    ├── GatewayClosed                 Discord closed with a code that forbids reconnecting
    │                                 (4004, 4010-4014): ``code``, ``may_reconnect``
    ├── HandshakeTimeout              HELLO or READY did not come in time (recovered
    │                                 internally by reconnecting; kept as ``last_error``)
    └── IdentifyBudgetExhausted       identifying again would take the daily session-start
                                      budget below its floor; the client stops instead
```
"""

from __future__ import annotations

from discobase.errors import DiscobaseError, UsageError
from discobase.gateway.enums import CloseCode

__all__ = [
    "GatewayClientClosed",
    "GatewayClosed",
    "GatewayError",
    "HandshakeTimeout",
    "IdentifyBudgetExhausted",
]


class GatewayClientClosed(UsageError):
    """The gateway client is closed; ``wait_ready`` cannot succeed any more."""


class GatewayError(DiscobaseError):
    """The gateway connection failed in a way reconnecting cannot cure."""


class GatewayClosed(GatewayError):
    """Discord closed the connection with a code that forbids reconnecting.

    Attributes:
        code: the WebSocket close code (``None`` when the socket closed without one).
        reason: Discord's close reason text, if any.
        may_reconnect: whether Discord allows connecting again after this code.
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        self.may_reconnect = not CloseCode.fatal(code)
        try:
            name = CloseCode(code).name if code is not None else "NO_CLOSE_FRAME"
        except ValueError:
            name = "UNKNOWN"
        text = f"gateway closed with {code} ({name})"
        super().__init__(f"{text}: {reason}" if reason else text)


class HandshakeTimeout(GatewayError):
    """HELLO, READY or RESUMED did not arrive in time.

    Attributes:
        waiting_for: ``"HELLO"`` or ``"READY"``.
    """

    def __init__(self, waiting_for: str) -> None:
        self.waiting_for = waiting_for
        super().__init__(f"gateway handshake timed out waiting for {waiting_for}")


class IdentifyBudgetExhausted(GatewayError):
    """Identifying again would take the daily session-start budget below its floor.

    Discord resets a bot's token when the budget runs out, so the client refuses first.

    Attributes:
        remaining: identifies left in the current budget window.
        floor: the number the client keeps in reserve.
        reset_in: seconds (real time) until Discord refills the budget.
    """

    def __init__(self, remaining: int, floor: int, reset_in: float) -> None:
        self.remaining = remaining
        self.floor = floor
        self.reset_in = reset_in
        super().__init__(
            f"refusing to identify: {remaining} session starts left, floor is {floor}; "
            f"the budget resets in {reset_in:.0f} s"
        )
