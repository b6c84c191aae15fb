"""This process's own entries: how their gateway echoes are told apart (storage layer: pure).

A writer registers each message's nonce while the create is in flight and its id once
Discord answered; the echo of either through the gateway is skipped, since the writer
applies its own entries itself. A REST read never skips them (see ``store.py``): an entry
whose answer was late or lost is stored all the same.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OwnWrites"]

# Own entry ids remembered so their gateway echoes are skipped.
_IDS_MAX = 20_000


class OwnWrites:
    """The nonces in flight and the message ids of this process's entries."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.nonces: set[str] = set()

    def remember(self, message_id: int) -> None:
        """Note one of our entries, acknowledged as ``message_id``."""
        ids = self.ids
        ids.add(message_id)
        if len(ids) > _IDS_MAX:
            # Without a gateway, echoes never come to remove them; forgetting old ones costs
            # at most applying one of our own entries a second time, which is harmless.
            keep = sorted(ids)[-_IDS_MAX // 2 :]
            ids.clear()
            ids.update(keep)

    def is_echo(self, message: dict[str, Any]) -> bool:
        """Tell whether a dispatched message is one of ours (forgetting it if it was)."""
        message_id = int(message["id"])
        if message_id in self.ids:
            self.ids.discard(message_id)
            return True
        nonce = message.get("nonce")
        return nonce is not None and str(nonce) in self.nonces
