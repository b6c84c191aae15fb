"""Finding the catalog's channel by what it holds (storage layer: REST reads through the HTTP
client; the catalog's contents are ``catalog.py``'s).

Members can rename channels. A channel renamed *to* the catalog's name must not pass for an
empty database, and a catalog renamed away must not be replaced by a second one beside it, so
the catalog is the channel whose history holds this bot's catalog entries: first among the
channels of the name, then (one read each, only when none of them holds it) among the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from typing import Any

from discobase import _permissions as perms
from discobase.errors import StorageCorrupted, StorageDamaged
from discobase.http import HTTPClient
from discobase.http.errors import HTTPException
from discobase.storage import codec
from discobase.storage.access import Access
from discobase.storage.reader import PAGE

__all__ = ["find_catalog_channel", "find_table_channel"]

# Catalog entry kinds: a channel holding one of these (by this bot) is the catalog.
_CATALOG_KINDS = frozenset({"db", "table", "snapref"})
# The topic a catalog channel is made with.
_CATALOG_TOPIC = "discobase catalog: do not post here"


async def find_catalog_channel(
    http: HTTPClient,
    access: Access,
    name: str,
    tables: Collection[str],
    report_damage: Callable[[str], None],
) -> tuple[int, list[dict[str, Any]]]:
    """Return the catalog's channel (created if there is none) and its first page of history.

    Learns the bot's permissions on the way (``access``) and checks them before each read.

    Raises:
        MissingPermissions: the bot may not read the catalog (or create it).
        StorageDamaged: no catalog, but channels hold this bot's entries.
        HTTPException: Discord refused a request.
    """
    guild_id, bot_id = access.guild_id, access.bot_id
    # Three requests at once: the channels (with their overwrites), and the guild's roles and
    # owner and the bot's own roles, from which its permissions follow.
    channels, guild, member = await asyncio.gather(
        http.fetch_guild_channels(guild_id),
        http.fetch_guild(guild_id),
        http.fetch_guild_member(guild_id, bot_id),
    )
    access.learn(channels, guild, member)
    orphans: list[int] = []
    for channel_id in access.text_channels(name, named=True):
        access.require(access.needs(channel_id, perms.CATALOG_NEEDS, "the catalog"))
        page = await _first_page(http, channel_id)
        kinds = _kinds(page, bot_id)
        if kinds & _CATALOG_KINDS:
            return channel_id, page
        if kinds:
            # A table's log named like the catalog (a table named discobase): its data, left
            # without a catalog, must stop the start as any other table's does, not be
            # taken for the catalog that _create would otherwise settle on.
            orphans.append(channel_id)
    # No channel of the name holds the catalog: it may have been renamed.
    for channel_id in access.text_channels(name, named=False):
        if any(access.needs(channel_id, perms.CATALOG_NEEDS, "").values()):
            continue  # the bot cannot read it, so it wrote nothing there
        page = await _first_page(http, channel_id)
        kinds = _kinds(page, bot_id)
        if kinds & _CATALOG_KINDS:
            renamed = access.channels[channel_id].get("name")
            report_damage(
                f"the catalog channel ({channel_id}) was renamed to #{renamed}; discobase "
                f"found it by its entries and uses it (rename it back to #{name} to keep it "
                "easy to find)"
            )
            return channel_id, page
        if kinds:
            orphans.append(channel_id)
    if orphans:
        where = ", ".join(f"#{access.channels[c].get('name')} ({c})" for c in orphans)
        raise StorageDamaged(
            f"the catalog channel of guild {guild_id} is gone (deleted?), but channels "
            f"{where} hold this bot's discobase entries. discobase stopped rather than start "
            "an empty database beside them; restore the catalog or move those channels' data "
            "out first",
            channel_id=orphans[0],
        )
    return await _create(http, access, name, tables), []


async def _first_page(http: HTTPClient, channel_id: int) -> list[dict[str, Any]]:
    page = await http.fetch_messages(channel_id, after=0, limit=PAGE)
    return [m for m in page or () if isinstance(m, dict) and "id" in m]


def _kinds(page: list[dict[str, Any]], bot_id: int) -> set[str]:
    """Return the kinds of this bot's discobase entries among ``page``."""
    kinds = set()
    for message in page:
        with contextlib.suppress(StorageCorrupted):
            header = codec.parse_header(message, bot_id)
            if header is not None:
                kinds.add(header.kind)
    return kinds


async def _create(http: HTTPClient, access: Access, name: str, tables: Collection[str]) -> int:
    # No catalog: every table is new too, and each needs a channel.
    need = perms.CATALOG_NEEDS | perms.MANAGE_CHANNELS
    if tables:
        need |= perms.TABLE_NEEDS
    access.require(access.server_needs(need, f"#{name} (the catalog)", tables))
    created = await http.create_guild_channel(
        access.guild_id,
        name=name,
        topic=_CATALOG_TOPIC,
        permission_overwrites=access.read_only_overwrites(),
    )
    mine = int(created["id"])
    # Two processes may create it at once: both settle on the smaller id, among the channels
    # made so: a member's channel of the name, or a table named like the catalog (empty, so
    # not counted as data above), is none of them and must not become the catalog.
    access.learn_channels(await http.fetch_guild_channels(access.guild_id))
    named = [
        channel_id
        for channel_id in access.text_channels(name, named=True)
        if channel_id == mine or access.channels[channel_id].get("topic") == _CATALOG_TOPIC
    ]
    winner = min(named)
    if winner != mine:
        with contextlib.suppress(HTTPException):
            await http.delete_channel(mine)
        # Made by another process, perhaps with overwrites of its own.
        access.require(access.needs(winner, perms.CATALOG_NEEDS, "the catalog"))
    return winner


async def find_table_channel(
    http: HTTPClient, access: Access, name: str, taken: Collection[int], bot_id: int
) -> int | None:
    """Return a channel that holds table ``name``'s entries though the catalog lacks it.

    A member who deletes a table's catalog entry while no process has the table open (so
    nobody writes it again) would otherwise make the next open start the table empty in a new
    channel beside its data. Candidates are the text channels named like the table or with
    its topic (``discobase table NAME``), except those in ``taken``; the one whose first page
    holds this bot's log entries or snapshots is it.
    """
    topic = f"discobase table {name}"
    for channel_id, channel in sorted(access.channels.items()):
        if channel_id in taken or channel.get("type") != 0:
            continue
        if channel.get("name") != name and channel.get("topic") != topic:
            continue
        if any(access.needs(channel_id, perms.CATALOG_NEEDS, "").values()):
            continue
        if _kinds(await _first_page(http, channel_id), bot_id) & {"log", "snap"}:
            return channel_id
    return None
