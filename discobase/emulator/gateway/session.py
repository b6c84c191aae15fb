"""Gateway sessions and their replay buffers (emulator layer, gateway side).

Layer: the emulator's gateway. Pure bookkeeping with times passed in: no sockets, no asyncio.
A session outlives its connections: it keeps numbering and buffering the dispatches meant for
its bot while no connection is attached, so that a RESUME can replay them.

Theory: Discord numbers a session's dispatches 1, 2, 3, ... (READY is 1). RESUME names the
last ``s`` the client saw; every buffered dispatch after it is replayed in order, then RESUMED.
READY and RESUMED are numbered but not buffered (replaying them would restart a client's
ready logic), so a resume is valid when ``floor <= seq <= last seq``, where ``floor`` is the
last number that can no longer be replayed. A detached session expires after a time to live;
a client closing with 1000 or 1001 ends it at once.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .faults import Held

__all__ = ["Session", "SessionRegistry"]


@dataclass(eq=False)
class Session:
    """One bot's gateway session: identity, intents, sequence numbers, replay buffer."""

    session_id: str
    bot_id: str
    intents: int
    shard: tuple[int, int]
    replay_limit: int
    seq: int = 0
    floor: int = 0
    detached_at: float | None = None
    buffer: deque[dict[str, Any]] = field(default_factory=deque)
    # Dispatches a reorder fault holds back; they are numbered only when they go out.
    held: list[Held] = field(default_factory=list)
    # Guilds this session was told are down (GUILD_DELETE ``unavailable: true``).
    unavailable: set[str] = field(default_factory=set)

    def next_payload(self, name: str, data: Any, *, replay: bool = True) -> dict[str, Any]:
        """Number a dispatch and, if ``replay``, keep it for a later RESUME."""
        self.seq += 1
        payload = {"op": 0, "t": name, "s": self.seq, "d": data}
        if replay:
            self.buffer.append(payload)
            while len(self.buffer) > self.replay_limit:
                self.floor = self.buffer.popleft()["s"]
        elif not self.buffer:
            # Nothing buffered after an unreplayable dispatch: resuming from before it is
            # impossible, resuming from it is fine.
            self.floor = self.seq
        return payload

    def can_resume_from(self, seq: int | None) -> bool:
        """Return whether every dispatch after ``seq`` is still buffered."""
        return seq is not None and self.floor <= seq <= self.seq

    def replay_after(self, seq: int) -> Iterator[dict[str, Any]]:
        """Yield the buffered dispatches numbered after ``seq``, oldest first."""
        return (payload for payload in self.buffer if payload["s"] > seq)


class SessionRegistry:
    """Every live session by id, with expiry of the detached ones."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def __contains__(self, session: object) -> bool:
        return isinstance(session, Session) and self._sessions.get(session.session_id) is session

    def create(
        self, bot_id: str, intents: int, shard: tuple[int, int], replay_limit: int
    ) -> Session:
        """Open a new session with a fresh random id."""
        session = Session(
            session_id=secrets.token_hex(16),
            bot_id=bot_id,
            intents=intents,
            shard=shard,
            replay_limit=replay_limit,
        )
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str, now: float, ttl: float) -> Session | None:
        """Return a live session, or None if it is unknown, ended or expired."""
        self.expire(now, ttl)
        return self._sessions.get(session_id)

    def end(self, session: Session) -> None:
        """Forget a session: it can no longer be resumed and receives nothing."""
        self._sessions.pop(session.session_id, None)

    def expire(self, now: float, ttl: float) -> None:
        """End every session that has stayed detached for longer than ``ttl``."""
        for session in list(self._sessions.values()):
            if session.detached_at is not None and now - session.detached_at > ttl:
                self.end(session)

    def clear(self) -> None:
        """Forget every session."""
        self._sessions.clear()
