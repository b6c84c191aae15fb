"""The emulator keeps its state in ``data_dir`` (sqlite3) and serves it again after a restart.

Layer: integration tests (real sockets, a temporary directory).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from discobase.emulator import Emulator


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    async with Emulator(time_scale=0.01, data_dir=tmp_path) as emu:
        bot = emu.create_bot("keeper")
        guild_id = emu.create_guild("kept", bots=[bot])
        headers = {"Authorization": f"Bot {bot.token}"}
        base = emu.url + "/api/v10"
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(
                f"{base}/guilds/{guild_id}/channels", json={"name": "table"}
            ) as reply:
                channel_id = (await reply.json())["id"]
            ids = []
            for text in ("one", "two"):
                async with session.post(
                    f"{base}/channels/{channel_id}/messages", json={"content": text}
                ) as reply:
                    ids.append((await reply.json())["id"])
            form = aiohttp.FormData()
            form.add_field("payload_json", '{"content": "file"}', content_type="application/json")
            form.add_field("files[0]", b"\x00bytes", filename="blob.bin")
            async with session.post(f"{base}/channels/{channel_id}/messages", data=form) as reply:
                ids.append((await reply.json())["id"])
            async with session.delete(f"{base}/channels/{channel_id}/messages/{ids[0]}") as reply:
                assert reply.status == 204
    token = bot.token

    async with Emulator(time_scale=0.01, data_dir=tmp_path) as emu:
        again = emu.state.bot_by_token(token)
        assert again is not None and again.id == bot.id
        base = emu.url + "/api/v10"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {token}"}) as session:
            async with session.get(f"{base}/channels/{channel_id}/messages") as reply:
                page = await reply.json()
            assert [m["id"] for m in page] == [ids[2], ids[1]]
            async with session.get(f"{base}/channels/{channel_id}") as reply:
                assert (await reply.json())["last_message_id"] == ids[2]
            url = page[0]["attachments"][0]["url"]
            assert url.startswith(emu.url)
            async with session.get(url) as reply:
                assert await reply.read() == b"\x00bytes"
            async with session.post(
                f"{base}/channels/{channel_id}/messages", json={"content": "three"}
            ) as reply:
                newer = (await reply.json())["id"]
            assert int(newer) > int(ids[2])
            async with session.get("/".join([base, "users", "@me", "guilds"])) as reply:
                assert [g["id"] for g in await reply.json()] == [guild_id]
