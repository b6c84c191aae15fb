"""The emulator's state without a server: paging, snowflakes, the clock, bulk rules.

Layer: integration tests of the emulator's pure parts (an injected clock; no sockets).
"""

from __future__ import annotations

import pytest

from discobase.emulator import Clock, EventBus
from discobase.emulator.models import Channel
from discobase.emulator.snowflakes import DISCORD_EPOCH_MS, SnowflakeFactory, snowflake_time
from discobase.emulator.state import State, iso


class FakeTime:
    """A wall clock and a monotonic clock that move only when told."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 50.0

    def tick(self, real_seconds: float) -> None:
        self.wall += real_seconds
        self.mono += real_seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def state(fake: FakeTime) -> State:
    clock = Clock(0.01, wall=lambda: fake.wall, monotonic=lambda: fake.mono)
    return State(clock, EventBus())


def test_clock_runs_scaled_and_advances(fake: FakeTime) -> None:
    clock = Clock(0.01, wall=lambda: fake.wall, monotonic=lambda: fake.mono)
    start = clock.now()
    fake.tick(0.05)
    assert clock.now() - start == pytest.approx(5.0)
    clock.advance(86_400)
    assert clock.elapsed() == pytest.approx(86_405.0)
    assert clock.to_real(5.0) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        Clock(0)


def test_snowflakes_encode_time_and_strictly_increase() -> None:
    now = 1_800_000_000.0
    factory = SnowflakeFactory(lambda: now)
    ids = [factory.next() for _ in range(5000)]
    assert all(b > a for a, b in zip(ids, ids[1:], strict=False))
    assert (ids[0] >> 22) + DISCORD_EPOCH_MS == int(now * 1000)
    assert snowflake_time(ids[0]) == pytest.approx(now)
    behind = SnowflakeFactory(lambda: now - 1000, last=ids[-1])
    assert behind.next() > ids[-1]


def _channel(state: State, count: int) -> tuple[Channel, list[int]]:
    guild = state.create_guild("paging")
    channel = state.channels[guild.channel_ids[0]]
    ids = [state.create_message(channel, guild.owner_id, content=str(i)).id for i in range(count)]
    return channel, ids


def test_pages_are_newest_first_in_every_direction(state: State) -> None:
    channel, ids = _channel(state, 10)

    def page(**kwargs: int) -> list[int]:
        return [m.id for m in state.list_messages(channel, **kwargs)]

    assert page(limit=3) == ids[::-1][:3]
    assert page(before=ids[5], limit=3) == [ids[4], ids[3], ids[2]]
    assert page(after=ids[5], limit=3) == [ids[8], ids[7], ids[6]]
    assert page(after=0, limit=2) == [ids[1], ids[0]]
    assert page(around=ids[5], limit=5) == [ids[7], ids[6], ids[5], ids[4], ids[3]]
    assert page(around=ids[0], limit=3) == [ids[2], ids[1], ids[0]]
    assert page(around=ids[9], limit=4) == [ids[9], ids[8], ids[7], ids[6]]
    assert page(after=ids[9]) == []


def test_deleting_keeps_pages_consistent(state: State) -> None:
    channel, ids = _channel(state, 6)
    state.delete_message(state.messages[ids[2]])
    state.bulk_delete(channel, [ids[0], ids[4], 12345])
    assert [m.id for m in state.list_messages(channel)] == [ids[5], ids[3], ids[1]]
    assert channel.last_message_id == str(ids[5])


def test_guild_create_payload_has_the_join_fields(state: State) -> None:
    bot = state.create_bot("joined")
    guild = state.create_guild("payload", [bot])
    payload = state.guild_create_payload(guild.id, bot.id)
    for key in ("joined_at", "member_count", "members", "channels", "roles", "threads"):
        assert key in payload
    assert {m["user"]["id"] for m in payload["members"]} == {guild.owner_id, bot.id}
    assert state.guilds_for_bot(bot.id) == [guild]


def test_session_start_limit_counts_a_day_of_identifies(state: State, fake: FakeTime) -> None:
    bot = state.create_bot("identify")
    state.record_identify(bot)
    state.record_identify(bot)
    limit = state.session_start_limit(bot)
    assert limit["total"] == 1000 and limit["remaining"] == 998
    assert limit["max_concurrency"] == 1
    fake.tick(864.01)  # a Discord day at time_scale 0.01
    assert state.session_start_limit(bot)["remaining"] == 1000


def test_timestamps_are_iso_8601_utc() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000000+00:00"


async def test_reset_data_forgets_guild_commands_and_interactions() -> None:
    from discobase.emulator import Emulator

    async with Emulator(time_scale=0.01) as emu:
        bot = emu.create_bot("db")
        guild_id = emu.create_guild("g", bots=[bot])
        emu.interactions.guild_commands[(bot.application_id, guild_id)] = {"x": {"name": "x"}}
        emu.reset_data()
        assert emu.interactions.guild_commands == {}
