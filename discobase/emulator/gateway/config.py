"""Tunable numbers of the local gateway (emulator layer, gateway side).

Layer: the emulator's gateway. Plain values in Discord units (milliseconds and seconds as
Discord states them); the server multiplies every time by the emulator's time scale. Knows
nothing of clocks or sockets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GatewayConfig"]


@dataclass
class GatewayConfig:
    """What the gateway enforces; change fields on ``emu.gateway.config`` before connecting.

    Attributes:
        heartbeat_interval_ms: HELLO's interval in Discord milliseconds (sent scaled).
        heartbeat_timeout_factor: A connection with no heartbeat for this many intervals is
            closed (Discord is lenient; 2 intervals leaves room for a loaded test machine).
        requested_heartbeat_timeout_factor: After the server asks for a heartbeat (op 1), the
            client must answer within this many intervals.
        missed_heartbeat_close_code: The close code for a missed heartbeat. Discord's code is
            not documented; its docs tell the client to resume afterwards, so the default is
            4000 (reconnectable, session kept).
        session_ttl: Seconds a detached session stays resumable ("a few minutes").
        replay_limit: Dispatches buffered per session for RESUME.
        send_limit: Payloads a client may send per ``send_window`` seconds per connection.
        send_window: The send limit's window in seconds.
        identify_window: Seconds in which ``max_concurrency`` identifies are allowed per bot.
        close_timeout: Real seconds to wait for the client's close frame after ours.
        reorder_max_hold: Seconds a dispatch held back by a reorder fault waits at most when
            fewer than its window of later dispatches come (so it arrives even on a quiet
            session).
    """

    heartbeat_interval_ms: float = 45_000
    heartbeat_timeout_factor: float = 2.0
    requested_heartbeat_timeout_factor: float = 1.0
    missed_heartbeat_close_code: int = 4000
    session_ttl: float = 180.0
    replay_limit: int = 5_000
    send_limit: int = 120
    send_window: float = 60.0
    identify_window: float = 5.0
    close_timeout: float = 2.0
    reorder_max_hold: float = 5.0
