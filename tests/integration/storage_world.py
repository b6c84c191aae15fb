"""One bot in one guild of the local Discord, and storage engines on it as processes would
run them (optionally fed by a real gateway): the world of the storage integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from discobase.gateway import GatewayClient, Intents
from discobase.gateway.events import DispatchEvent, SessionEvent
from discobase.http import HTTPClient
from discobase.storage import StorageEngine, TableSpec
from tests.conftest import TIME_SCALE
from tests.helpers import identify_window

SCHEMA: dict[str, Any] = {
    "title": "User",
    "type": "object",
    "properties": {
        "name": {"title": "Name", "type": "string"},
        "email": {"title": "Email", "type": "string"},
        "age": {"title": "Age", "type": "integer", "default": 0},
    },
    "required": ["name", "email"],
}
SPEC = TableSpec(
    name="user",
    schema=SCHEMA,
    fields={"name": False, "email": False, "age": True},
    indexes={"name": False, "email": True},
)


def user(i: int, **extra: Any) -> dict[str, Any]:
    return {"name": f"user{i % 7}", "email": f"u{i}@example.com", "age": i, **extra}


class World:
    """One bot in one guild of a fresh emulator."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.bot = emu.create_bot("db")
        self.guild_id = int(emu.create_guild("db", bots=[self.bot]))

    @asynccontextmanager
    async def node(
        self, *, gateway: bool = False, opened: bool = True, **tuning: Any
    ) -> AsyncIterator[StorageEngine]:
        """An engine as one process would run it (optionally fed by a real gateway)."""
        async with HTTPClient(self.bot.token, api_url=self.emu.url, time_scale=TIME_SCALE) as http:
            engine = StorageEngine(
                http,
                guild_id=self.guild_id,
                bot_id=int(self.bot.id),
                time_scale=TIME_SCALE,
                **tuning,
            )
            client: GatewayClient | None = None
            task: asyncio.Task[None] | None = None
            if gateway:
                await identify_window()  # a second node would meet op 9 and its long wait
                info = await http.fetch_gateway_bot()
                client = GatewayClient(
                    self.bot.token,
                    url=info["url"],
                    intents=Intents.GUILDS | Intents.GUILD_MESSAGES,
                    session_start_limit=info["session_start_limit"],
                    time_scale=TIME_SCALE,
                )
                ready = asyncio.Event()

                async def listen(event: Any) -> None:
                    if isinstance(event, DispatchEvent):
                        await engine.on_event(event.name, event.data)
                    elif isinstance(event, SessionEvent):
                        if ready.is_set() and not event.resumed:
                            await engine.catch_up()

                client.add_listener(listen)
                task = asyncio.create_task(client.run())
                await asyncio.wait_for(client.wait_ready(), 30)
                ready.set()
            if opened:
                await engine.open()
            try:
                yield engine
            finally:
                await engine.close()
                if client is not None and task is not None:
                    await client.close()
                    await asyncio.wait_for(task, 30)

    def channel_messages(self, channel_id: int) -> list[Any]:
        channel = self.emu.state.channels[str(channel_id)]
        return [self.emu.state.messages[i] for i in channel.message_ids]


async def gather(futures: list[asyncio.Future[None]]) -> None:
    await asyncio.wait_for(asyncio.gather(*futures), 60)
