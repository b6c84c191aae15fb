"""Permission arithmetic (pure): guild level, then channel overwrites in Discord's order.

Also checked against the emulator's own implementation, written separately, so that the client
and the server cannot share one misunderstanding unnoticed.
"""

from __future__ import annotations

import random

import pytest

from discobase import _permissions as perms
from discobase.database import PERMISSIONS

GUILD, OWNER, BOT = "100", "200", "300"
ROLE_A, ROLE_B, OTHER = "11", "12", "13"


def roles(everyone: int = 0, a: int = 0, b: int = 0, other: int = 0) -> list[dict[str, str]]:
    return [
        {"id": GUILD, "permissions": str(everyone)},
        {"id": ROLE_A, "permissions": str(a)},
        {"id": ROLE_B, "permissions": str(b)},
        {"id": OTHER, "permissions": str(other)},
    ]


def base(**bits: int) -> int:
    return perms.guild_permissions(
        guild_id=GUILD,
        owner_id=OWNER,
        user_id=BOT,
        roles=roles(**bits),
        member_roles=[ROLE_A, ROLE_B],
    )


def in_channel(base_bits: int, *overwrites: dict[str, object]) -> int:
    return perms.channel_permissions(
        base_bits,
        guild_id=GUILD,
        user_id=BOT,
        member_roles=[ROLE_A, ROLE_B],
        overwrites=overwrites,
    )


def ow(target: str, kind: int, allow: int = 0, deny: int = 0) -> dict[str, object]:
    return {"id": target, "type": kind, "allow": str(allow), "deny": str(deny)}


def test_invite_value_is_the_documented_integer() -> None:
    assert PERMISSIONS == perms.INVITE == 2251799813794832
    assert perms.TABLE_NEEDS & perms.PIN_MESSAGES  # bit 51, split from Manage Messages


def test_guild_level_is_everyone_or_the_members_roles() -> None:
    assert base(everyone=perms.VIEW_CHANNEL, a=perms.SEND_MESSAGES, other=perms.ATTACH_FILES) == (
        perms.VIEW_CHANNEL | perms.SEND_MESSAGES
    )


def test_owner_and_administrator_hold_everything() -> None:
    owner = perms.guild_permissions(
        guild_id=GUILD, owner_id=BOT, user_id=BOT, roles=roles(), member_roles=[]
    )
    assert owner == perms.ALL
    admin = base(b=perms.ADMINISTRATOR)
    assert admin == perms.ALL
    assert in_channel(admin, ow(BOT, 1, deny=perms.ALL)) == perms.ALL


def test_overwrites_apply_everyone_then_roles_combined_then_member() -> None:
    start = perms.TABLE_NEEDS
    # @everyone denies, one of the bot's roles allows back.
    assert (
        in_channel(
            start, ow(GUILD, 0, deny=perms.SEND_MESSAGES), ow(ROLE_A, 0, allow=perms.SEND_MESSAGES)
        )
        == start
    )
    # Role overwrites combine: an allow on one role beats a deny on another.
    assert (
        in_channel(
            start, ow(ROLE_A, 0, deny=perms.PIN_MESSAGES), ow(ROLE_B, 0, allow=perms.PIN_MESSAGES)
        )
        == start
    )
    # The member's own overwrite is last.
    assert (
        in_channel(
            start, ow(ROLE_A, 0, allow=perms.ATTACH_FILES), ow(BOT, 1, deny=perms.ATTACH_FILES)
        )
        == start & ~perms.ATTACH_FILES
    )
    # A role the bot does not have, or a member overwrite for someone else, changes nothing.
    assert in_channel(start, ow(OTHER, 0, deny=perms.ALL), ow(OWNER, 1, deny=perms.ALL)) == start


def test_names_are_discords_in_bit_order() -> None:
    assert perms.names(perms.PIN_MESSAGES | perms.SEND_MESSAGES | (1 << 40)) == [
        "Send Messages",
        "1 << 40",
        "Pin Messages",
    ]


@pytest.mark.parametrize("seed", range(20))
def test_agrees_with_the_emulators_implementation(seed: int) -> None:
    from discobase.emulator.permissions import channel_permissions as emulator_channel

    rng = random.Random(seed)

    def bits() -> int:
        return (
            rng.getrandbits(52) & ~perms.ADMINISTRATOR
            if rng.random() < 0.9
            else (rng.getrandbits(52))
        )

    everyone, role_a, role_b = bits(), bits(), bits()
    overwrites = [
        ow(target, kind, bits(), bits())
        for target, kind in [(GUILD, 0), (ROLE_A, 0), (ROLE_B, 0), (OTHER, 0), (BOT, 1)]
        if rng.random() < 0.6
    ]
    mine = base(everyone=everyone, a=role_a, b=role_b)
    guild_level = everyone | role_a | role_b
    theirs = emulator_channel(
        base=guild_level,
        everyone_id=GUILD,
        role_ids=[ROLE_A, ROLE_B],
        member_id=BOT,
        overwrites=overwrites,
    )
    ours = in_channel(mine, *overwrites)
    if guild_level & perms.ADMINISTRATOR:
        assert ours == perms.ALL  # the emulator's ALL has fewer bits; both mean "everything"
    else:
        assert ours == theirs
