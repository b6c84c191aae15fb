"""What each slash command and button does (commands layer).

One method per command, ``_cmd_<name>``, called with the interaction, the table it names and
its options once the member's permission is checked; ``_component`` answers the buttons
(pages, ``/clear``'s confirmation) and ``_autocomplete`` the options being typed. Reads go
through the tables in memory, writes through the same ``Table`` API as code (validation,
storage, the rate limiter). A :class:`~discobase.commands.checks.Refused` raised here is
answered to the member; how interactions arrive and how failures are answered is
``admin.py``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from discobase.commands import interaction
from discobase.commands.autocomplete import choices
from discobase.commands.checks import (
    Refused,
    parsed_input,
    require_permission,
    table_binding,
    table_field,
)
from discobase.commands.definitions import MANAGE_GUILD, WRITES
from discobase.commands.render import (
    BLUE,
    GREEN,
    clear_prompt,
    message,
    parse_json_object,
    shorten,
    type_name,
)
from discobase.commands.responder import Responder
from discobase.commands.views import Views
from discobase.errors import DiscobaseError, RecordNotFound

if TYPE_CHECKING:
    from discobase.database import Database
    from discobase.table import Table, TableBinding

__all__ = ["CommandHandlers"]


class CommandHandlers:
    """The commands' and buttons' behaviour, for one database.

    Args:
        db: The database.
        read_permissions: Permission bits a member needs to read.
        write_permissions: Bits needed to write.
    """

    def __init__(
        self,
        db: Database,
        *,
        read_permissions: int = MANAGE_GUILD,
        write_permissions: int = MANAGE_GUILD,
    ) -> None:
        self.db = db
        self.read_permissions = int(read_permissions)
        self.write_permissions = int(write_permissions)
        self._views = Views(db)

    def _check_permission(self, data: Mapping[str, Any], write: bool) -> None:
        needed = self.write_permissions if write else self.read_permissions
        require_permission(data, needed, write=write)

    # ------------------------------------------------------------------ commands

    async def _command(
        self, responder: Responder, data: dict[str, Any], options: dict[str, Any]
    ) -> None:
        name = data["data"]["name"]
        write = name in WRITES
        self._check_permission(data, write)
        binding = table_binding(self.db.tables, options.get("table"))
        if write:
            responder.ephemeral = True
        handler = getattr(self, f"_cmd_{name}")
        await handler(responder, data, binding, options)

    async def _cmd_find(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        query: dict[str, Any] = {"table": binding.name}
        if options.get("field") is not None:
            field = table_field(binding, options["field"])
            if options.get("value") is None:
                raise Refused("Value needed", f"Give a value to compare {field} with.")
            query.update(
                field=field,
                operator=options.get("operator") or "eq",
                value=str(options["value"]),
            )
        elif options.get("value") is not None or options.get("operator") is not None:
            raise Refused("Field needed", "Choose the field the value is compared with.")
        await responder.send(self._views.records_page(self._views.new("records", query), 0))

    async def _cmd_table(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        view = self._views.new("records", {"table": binding.name})
        await responder.send(self._views.records_page(view, 0))

    async def _cmd_column(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        field = table_field(binding, options.get("field"))
        view = self._views.new("column", {"table": binding.name, "field": field})
        await responder.send(self._views.column_page(view, 0))

    async def _cmd_tablestats(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        model = binding.model
        count = model.count()
        indexes = ", ".join(
            f"{f} (unique)" if unique else f for f, unique in binding.indexes.items()
        )
        embed = {
            "title": f"Table {binding.name}",
            "color": BLUE,
            "fields": [
                {"name": "Records", "value": str(int(count)), "inline": True},
                {"name": "Fields", "value": str(len(binding.fields)), "inline": True},
                {"name": "Indexes", "value": indexes or "none", "inline": True},
                {"name": "Class", "value": f"`{model.__name__}`", "inline": True},
            ],
        }
        await responder.send(message(embed))

    async def _cmd_schema(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        fields = []
        for name, info in list(binding.fields.items())[:25]:
            parts = [f"`{type_name(info.annotation)}`"]
            if info.is_required():
                parts.append("required")
            elif info.default_factory is not None:
                parts.append("default: made by a factory")
            else:
                parts.append(f"default: `{shorten(repr(info.default), 200)}`")
            if name in binding.indexes:
                parts.append("unique index" if binding.indexes[name] else "index")
            fields.append({"name": name, "value": " · ".join(parts)})
        embed = {
            "title": f"Schema of {binding.name}",
            "color": BLUE,
            "description": f"{len(binding.fields)} field(s); every record also has an `id`.",
            "fields": fields,
        }
        await responder.send(message(embed))

    async def _cmd_insert(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        values = parsed_input(lambda: parse_json_object(str(options.get("values", "")), "values"))
        model = binding.model
        try:
            record = model.model_validate(values)
        except ValidationError as exc:
            raise Refused("Invalid record", _validation_text(exc)) from None
        await responder.defer()
        try:
            await record.save()
        except DiscobaseError as exc:
            raise Refused("Not saved", str(exc)) from None
        await responder.send(message(_done(f"Inserted into {binding.name}", record.id, record)))

    async def _record(self, binding: TableBinding, raw: Any) -> Table:
        try:
            return await binding.model.get(str(raw or "").strip())
        except RecordNotFound:
            raise Refused(
                "No such record", f"{binding.name} has no record with id {raw!r}."
            ) from None
        except DiscobaseError as exc:
            raise Refused("Cannot read the record", str(exc)) from None

    async def _cmd_update(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        changes = parsed_input(
            lambda: parse_json_object(str(options.get("changes", "")), "changes")
        )
        if not changes:
            raise Refused("Nothing to change", "Give at least one field to change.")
        for name in changes:
            table_field(binding, name)
        # A fresh copy of the stored record: each value is validated as an assignment in code
        # is (the table validates assignments), and nothing is written unless all fit.
        record = await self._record(binding, options.get("id"))
        try:
            for name, value in changes.items():
                setattr(record, name, value)
        except ValidationError as exc:
            raise Refused("Invalid change", _validation_text(exc)) from None
        await responder.defer()
        try:
            await record.update()
        except DiscobaseError as exc:
            raise Refused("Not updated", str(exc)) from None
        await responder.send(message(_done(f"Updated in {binding.name}", record.id, record)))

    async def _cmd_delete(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        raw = str(options.get("id") or "").strip()
        try:
            wanted = int(raw)
        except ValueError:
            raise Refused("No such record", f"{raw!r} is not a record id.") from None
        await responder.defer()
        try:
            await binding.model.delete_id(wanted)
        except RecordNotFound:
            raise Refused(
                "No such record", f"{binding.name} has no record with id {raw}."
            ) from None
        except DiscobaseError as exc:
            raise Refused("Not deleted", str(exc)) from None
        embed = {
            "title": f"Deleted from {binding.name}",
            "description": f"Record {wanted} is deleted.",
            "color": GREEN,
        }
        await responder.send(message(embed))

    async def _cmd_clear(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        count = int(binding.model.count())
        if not count:
            embed = {
                "title": f"{binding.name} is empty",
                "description": "Nothing to delete.",
                "color": BLUE,
            }
            await responder.send(message(embed))
            return
        user = interaction.member_id(data)
        key = self._views.new("clear", {"table": binding.name, "user": user})
        await responder.send(clear_prompt(key, binding.name, count))

    # ------------------------------------------------------------------ buttons

    async def _component(self, responder: Responder, data: dict[str, Any]) -> None:
        custom_id = str((data.get("data") or {}).get("custom_id", ""))
        parts = custom_id[len(interaction.PREFIX) :].split(":")
        if len(parts) != 3:
            raise Refused("Unknown button", "This button is not one of the database's.")
        kind, key, arg = parts
        view = self._views.get(key)
        if view is None:
            raise Refused("Expired", "These results expired: run the command again.")
        if kind == "page":
            self._check_permission(data, write=False)
            try:
                page = int(arg)
            except ValueError:
                raise Refused(
                    "Unknown button", "This button is not one of the database's."
                ) from None
            views = self._views
            render = views.records_page if view["kind"] == "records" else views.column_page
            await responder.update(render(key, page))
            return
        if kind == "clear":
            self._check_permission(data, write=True)
            if interaction.member_id(data) != view["user"]:
                raise Refused("Not yours", "Only the member who ran /clear can confirm it.")
            self._views.pop(key)
            if arg != "yes":
                embed = {"title": "Cancelled", "description": "Nothing was deleted.", "color": BLUE}
                await responder.update(message(embed))
                return
            binding = table_binding(self.db.tables, view["table"])
            await responder.defer(update=True)
            deleted = await self._delete_all(binding)
            embed = {
                "title": f"{binding.name} cleared",
                "description": f"Deleted {deleted} record(s) of {binding.name}.",
                "color": GREEN,
            }
            await responder.update(message(embed))
            return
        raise Refused("Unknown button", "This button is not one of the database's.")

    async def _delete_all(self, binding: TableBinding) -> int:
        store = binding.require_store()
        ids = list(store.records())
        if not ids:
            return 0
        model = binding.model
        # One atomic batch: readers see every record gone or none, through the same writes
        # delete_id() makes (unreadable records included).
        async with self.db.batch():
            tasks = [model.delete_id(i) for i in ids]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures and not isinstance(failures[0], RecordNotFound):
            raise Refused("Not cleared", f"{type(failures[0]).__name__}: {failures[0]}")
        return len(ids) - len(failures)

    # ------------------------------------------------------------------ autocomplete

    def _autocomplete(
        self, data: Mapping[str, Any], options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        focused = interaction.focused(data)
        try:
            self._check_permission(data, write=False)
        except Refused:
            return []
        return choices(self.db.tables, focused, options)


def _validation_text(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors()[:10]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "record"
        lines.append(f"• {where}: {error.get('msg', 'invalid')}")
    return "\n".join(lines)


def _done(title: str, record_id: int | None, record: Table) -> dict[str, Any]:
    body = shorten(record.model_dump_json(), 1000)
    return {
        "title": title,
        "color": GREEN,
        "fields": [{"name": f"id {record_id}", "value": f"```json\n{body}\n```"}],
    }
