"""``AdminCommands``: administer a database from Discord with slash commands.

Layer: above the public API (``Database``, ``Table``, the operators) and the HTTP client;
knows nothing of storage or of the gateway protocol. Interactions arrive through
``Database.add_listener`` as raw ``INTERACTION_CREATE`` dispatches and are answered through
the database's own HTTP client, so every write takes the same path as ``save()`` (the same
validation, storage and rate limiter).

Safety, in order: commands exist only in the database's own guild and only once registered;
``default_member_permissions`` hides them from members without Manage Server (by default);
each interaction's ``member.permissions`` is checked again before anything is read or written;
``/clear`` asks the same member to confirm with a button; answers that show records are
ephemeral unless ``public`` is chosen; every failure is answered with a readable message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from discobase.commands.definitions import (
    ADMINISTRATOR,
    COMMAND_NAMES,
    MANAGE_GUILD,
    WRITES,
    definitions,
)
from discobase.commands.render import (
    BLUE,
    GREEN,
    BadInput,
    error_embed,
    message,
    page_buttons,
    parse_json_object,
    parse_value,
    records_embed,
    shorten,
    type_name,
)
from discobase.commands.responder import Responder
from discobase.errors import DiscobaseError, NotConnected, RecordNotFound
from discobase.http.errors import HTTPException

if TYPE_CHECKING:
    from discobase.database import Database
    from discobase.table import Table, TableBinding

__all__ = ["AdminCommands"]

_log = logging.getLogger("discobase.commands")

PAGE_SIZE = 5
COLUMN_PAGE = 20
#: How long paging buttons and confirmations stay usable (Discord's token lives 15 minutes).
VIEW_LIFETIME = 15 * 60.0
MAX_VIEWS = 500
APPLICATION_COMMAND, COMPONENT, AUTOCOMPLETE = 2, 3, 4
ALREADY_ACKNOWLEDGED, UNKNOWN_INTERACTION = 40060, 10062
PREFIX = "discobase:"


class _Refused(Exception):
    """Answer the member with this title and explanation (a refusal, not a crash)."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail


class AdminCommands:
    """Slash commands that read and change a database, for the admins of its server.

    Create it before or after login; it listens from then on, and answers only once the
    commands are registered (``await commands.register()``), as guild commands of the
    database's own guild, never globally. ``await commands.remove()`` takes them away again.

    Args:
        db: The database.
        read_permissions: Permission bits a member needs for ``/find``, ``/table``,
            ``/column``, ``/tablestats`` and ``/schema`` (default Manage Server; 0 lets
            every member read).
        write_permissions: Bits needed for ``/insert``, ``/update``, ``/delete`` and
            ``/clear`` (default Manage Server).

    Example::

        db = discobase.Database("My db")
        admin = AdminCommands(db)
        async with db.conn(token):
            await admin.register()
            ...
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
        self.registered = False
        self._application_id: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Paging and confirmation state, by key: (expiry, what); the oldest go first.
        self._views: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._remove_listener: Callable[[], None] | None = db.add_listener(self._on_dispatch)

    def __repr__(self) -> str:
        return f"<AdminCommands db={self.db.name!r} registered={self.registered}>"

    # ------------------------------------------------------------------ registration

    async def _application(self) -> str:
        if self._application_id is None:
            application = await self.db.http.fetch_current_application()
            self._application_id = str(application["id"])
        return self._application_id

    def _guild(self) -> int:
        guild_id = self.db.guild_id
        if guild_id is None or not self.db.is_ready:
            raise NotConnected("register the commands once the database is ready")
        return guild_id

    async def register(self) -> list[dict[str, Any]]:
        """Register the commands in the database's guild (replacing the app's guild commands).

        Returns:
            The commands as Discord stored them.

        Raises:
            NotConnected: the database is not ready.
            HTTPException: Discord refused.
        """
        guild_id = self._guild()
        application_id = await self._application()
        commands = definitions(self.read_permissions, self.write_permissions)
        stored: list[dict[str, Any]] = await self.db.http.bulk_overwrite_guild_application_commands(
            application_id, guild_id, commands
        )
        self.registered = True
        _log.info("registered %d slash commands in guild %d", len(stored), guild_id)
        return stored

    async def remove(self) -> None:
        """Remove every command of the app from the database's guild and stop answering."""
        guild_id = self._guild()
        application_id = await self._application()
        await self.db.http.bulk_overwrite_guild_application_commands(application_id, guild_id, [])
        self.registered = False
        _log.info("removed the slash commands from guild %d", guild_id)

    def close(self) -> None:
        """Stop listening (the commands stay registered; see ``remove``)."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self.registered = False

    async def wait_idle(self) -> None:
        """Wait until every interaction received so far is answered (for tests and shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    # ------------------------------------------------------------------ dispatch

    def _on_dispatch(self, name: str, data: Any) -> None:
        if name != "INTERACTION_CREATE" or not self.registered or not isinstance(data, dict):
            return
        if not self._is_ours(data):
            return
        task = asyncio.get_running_loop().create_task(self._handle(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _is_ours(self, data: Mapping[str, Any]) -> bool:
        if str(data.get("guild_id")) != str(self.db.guild_id):
            return False
        if self._application_id is not None and str(data.get("application_id")) != str(
            self._application_id
        ):
            return False
        kind = data.get("type")
        inner = data.get("data") or {}
        if kind in (APPLICATION_COMMAND, AUTOCOMPLETE):
            return inner.get("name") in COMMAND_NAMES
        if kind == COMPONENT:
            return str(inner.get("custom_id", "")).startswith(PREFIX)
        return False

    async def _handle(self, data: dict[str, Any]) -> None:
        try:
            http = self.db.http
        except NotConnected:
            return
        options = _options(data)
        responder = Responder(
            http,
            data,
            time_scale=self.db.time_scale,
            ephemeral=not options.get("public", False),
        )
        try:
            if data["type"] == AUTOCOMPLETE:
                await responder.choices(self._autocomplete(data, options))
                return
            if data["type"] == COMPONENT:
                await responder.guard(lambda: self._component(responder, data), update=True)
                return
            await responder.guard(lambda: self._command(responder, data, options))
        except _Refused as refusal:
            await self._answer_error(responder, refusal.title, refusal.detail)
        except HTTPException as exc:
            if exc.code == ALREADY_ACKNOWLEDGED:
                # Another process of the bot answered first; it does the work (every write
                # defers before it starts, so only the process that acknowledged writes).
                _log.debug("interaction %s was answered by another process", responder.id)
            elif exc.code == UNKNOWN_INTERACTION:
                _log.warning(
                    "interaction %s reached the bot too late to answer (%s); the member saw "
                    "'The application did not respond'",
                    responder.id,
                    exc,
                )
            else:
                _log.exception("slash command failed")
                await self._answer_error(responder, "Something went wrong", f"Discord: {exc}")
        except Exception as exc:
            _log.exception("slash command failed")
            detail = (
                f"{type(exc).__name__}: {exc}"
                if isinstance(exc, DiscobaseError)
                else ("An unexpected error happened; the bot's log has the details.")
            )
            await self._answer_error(responder, "Something went wrong", detail)

    async def _answer_error(self, responder: Responder, title: str, detail: str) -> None:
        if responder.type == AUTOCOMPLETE:
            return
        responder.ephemeral = True
        try:
            await responder.send(message(error_embed(title, detail)))
        except Exception as exc:  # noqa: BLE001 - nothing is left to tell the member
            _log.warning("could not answer interaction %s: %s", responder.id, exc)

    # ------------------------------------------------------------------ checks

    def _check_permission(self, data: Mapping[str, Any], write: bool) -> None:
        needed = self.write_permissions if write else self.read_permissions
        if not needed:
            return
        member = data.get("member")
        try:
            held = int((member or {}).get("permissions", 0))
        except (TypeError, ValueError):
            held = 0
        if held & ADMINISTRATOR or held & needed == needed:
            return
        what = "change" if write else "read"
        raise _Refused(
            "Permission needed",
            f"You need the Manage Server permission to {what} this database."
            if needed == MANAGE_GUILD
            else f"You need permissions {needed} to {what} this database.",
        )

    def _binding(self, name: Any) -> TableBinding:
        tables = self.db.tables
        model = tables.get(str(name or "").strip().lower())
        if model is None:
            known = ", ".join(sorted(tables)) or "(none)"
            raise _Refused("Unknown table", f"There is no table {name!r}. Tables: {known}.")
        binding: TableBinding | None = model.__discobase_binding__
        assert binding is not None
        if binding.store is None:
            raise _Refused("Table not open", f"The table {binding.name!r} is not open yet.")
        return binding

    def _field(self, binding: TableBinding, name: Any) -> str:
        field = str(name or "").strip()
        if field not in binding.fields:
            known = ", ".join(binding.fields) or "(none)"
            raise _Refused(
                "Unknown field", f"{binding.name} has no field {field!r}. Fields: {known}."
            )
        return field

    # ------------------------------------------------------------------ commands

    async def _command(
        self, responder: Responder, data: dict[str, Any], options: dict[str, Any]
    ) -> None:
        name = data["data"]["name"]
        write = name in WRITES
        self._check_permission(data, write)
        binding = self._binding(options.get("table"))
        if write:
            responder.ephemeral = True
        handler = getattr(self, f"_cmd_{name}")
        await handler(responder, data, binding, options)

    async def _cmd_find(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        query: dict[str, Any] = {"table": binding.name}
        if options.get("field") is not None:
            field = self._field(binding, options["field"])
            if options.get("value") is None:
                raise _Refused("Value needed", f"Give a value to compare {field} with.")
            query.update(
                field=field,
                operator=options.get("operator") or "eq",
                value=str(options["value"]),
            )
        elif options.get("value") is not None or options.get("operator") is not None:
            raise _Refused("Field needed", "Choose the field the value is compared with.")
        await responder.send(self._records_page(self._new_view("records", query), 0))

    async def _cmd_table(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        view = self._new_view("records", {"table": binding.name})
        await responder.send(self._records_page(view, 0))

    async def _cmd_column(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        field = self._field(binding, options.get("field"))
        view = self._new_view("column", {"table": binding.name, "field": field})
        await responder.send(self._column_page(view, 0))

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
        values = _input(lambda: parse_json_object(str(options.get("values", "")), "values"))
        model = binding.model
        try:
            record = model.model_validate(values)
        except ValidationError as exc:
            raise _Refused("Invalid record", _validation_text(exc)) from None
        await responder.defer()
        try:
            await record.save()
        except DiscobaseError as exc:
            raise _Refused("Not saved", str(exc)) from None
        await responder.send(message(_done(f"Inserted into {binding.name}", record.id, record)))

    async def _record(self, binding: TableBinding, raw: Any) -> Table:
        try:
            return await binding.model.get(str(raw or "").strip())
        except RecordNotFound:
            raise _Refused(
                "No such record", f"{binding.name} has no record with id {raw!r}."
            ) from None
        except DiscobaseError as exc:
            raise _Refused("Cannot read the record", str(exc)) from None

    async def _cmd_update(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        changes = _input(lambda: parse_json_object(str(options.get("changes", "")), "changes"))
        if not changes:
            raise _Refused("Nothing to change", "Give at least one field to change.")
        for name in changes:
            self._field(binding, name)
        # A fresh copy of the stored record: each value is validated as an assignment in code
        # is (the table validates assignments), and nothing is written unless all fit.
        record = await self._record(binding, options.get("id"))
        try:
            for name, value in changes.items():
                setattr(record, name, value)
        except ValidationError as exc:
            raise _Refused("Invalid change", _validation_text(exc)) from None
        await responder.defer()
        try:
            await record.update()
        except DiscobaseError as exc:
            raise _Refused("Not updated", str(exc)) from None
        await responder.send(message(_done(f"Updated in {binding.name}", record.id, record)))

    async def _cmd_delete(
        self, responder: Responder, data: Any, binding: TableBinding, options: dict[str, Any]
    ) -> None:
        raw = str(options.get("id") or "").strip()
        try:
            wanted = int(raw)
        except ValueError:
            raise _Refused("No such record", f"{raw!r} is not a record id.") from None
        await responder.defer()
        try:
            await binding.model.delete_id(wanted)
        except RecordNotFound:
            raise _Refused(
                "No such record", f"{binding.name} has no record with id {raw}."
            ) from None
        except DiscobaseError as exc:
            raise _Refused("Not deleted", str(exc)) from None
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
        user = str(((data.get("member") or {}).get("user") or {}).get("id", ""))
        key = self._new_view("clear", {"table": binding.name, "user": user})
        embed = {
            "title": f"Delete every record of {binding.name}?",
            "description": (
                f"This deletes all {count} record(s) of **{binding.name}** and cannot be "
                "undone. The table itself stays."
            ),
            "color": 0xED4245,
        }
        buttons = [
            {
                "type": 1,
                "components": [
                    {
                        "type": 2,
                        "style": 4,
                        "label": f"Delete {count} record(s)",
                        "custom_id": f"{PREFIX}clear:{key}:yes",
                    },
                    {
                        "type": 2,
                        "style": 2,
                        "label": "Cancel",
                        "custom_id": f"{PREFIX}clear:{key}:no",
                    },
                ],
            }
        ]
        await responder.send(message(embed, components=buttons))

    # ------------------------------------------------------------------ components

    async def _component(self, responder: Responder, data: dict[str, Any]) -> None:
        custom_id = str((data.get("data") or {}).get("custom_id", ""))
        parts = custom_id[len(PREFIX) :].split(":")
        if len(parts) != 3:
            raise _Refused("Unknown button", "This button is not one of the database's.")
        kind, key, arg = parts
        view = self._view(key)
        if view is None:
            raise _Refused("Expired", "These results expired: run the command again.")
        if kind == "page":
            self._check_permission(data, write=False)
            try:
                page = int(arg)
            except ValueError:
                raise _Refused(
                    "Unknown button", "This button is not one of the database's."
                ) from None
            render = self._records_page if view["kind"] == "records" else self._column_page
            await responder.update(render(key, page))
            return
        if kind == "clear":
            self._check_permission(data, write=True)
            user = str(((data.get("member") or {}).get("user") or {}).get("id", ""))
            if user != view["user"]:
                raise _Refused("Not yours", "Only the member who ran /clear can confirm it.")
            self._views.pop(key, None)
            if arg != "yes":
                embed = {"title": "Cancelled", "description": "Nothing was deleted.", "color": BLUE}
                await responder.update(message(embed))
                return
            binding = self._binding(view["table"])
            await responder.defer(update=True)
            deleted = await self._delete_all(binding)
            embed = {
                "title": f"{binding.name} cleared",
                "description": f"Deleted {deleted} record(s) of {binding.name}.",
                "color": GREEN,
            }
            await responder.update(message(embed))
            return
        raise _Refused("Unknown button", "This button is not one of the database's.")

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
            raise _Refused("Not cleared", f"{type(failures[0]).__name__}: {failures[0]}")
        return len(ids) - len(failures)

    # ------------------------------------------------------------------ views

    def _new_view(self, kind: str, what: dict[str, Any]) -> str:
        now = time.monotonic()
        while self._views:
            oldest_key, (expiry, _) = next(iter(self._views.items()))
            if expiry > now and len(self._views) < MAX_VIEWS:
                break
            del self._views[oldest_key]
        key = secrets.token_hex(6)
        self._views[key] = (now + VIEW_LIFETIME * self.db.time_scale, {"kind": kind, **what})
        return key

    def _view(self, key: str) -> dict[str, Any] | None:
        found = self._views.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def _page(
        self, key: str, page: int, size: int
    ) -> tuple[TableBinding, list[int], int, int, int, str, dict[str, Any]]:
        """Return the binding, the ids on ``page``, the page, the pages, the total, a note
        naming the condition and the view, reading only the records the page shows."""
        view = self._view(key)
        if view is None:
            raise _Refused("Expired", "These results expired: run the command again.")
        binding = self._binding(view["table"])
        model = binding.model
        if view["kind"] == "records" and "field" in view:
            field, operator, text = view["field"], view["operator"], view["value"]
            condition = _condition(operator, binding.fields[field].annotation, text)
            try:
                total = int(model.count(**{field: condition}))
                pages = max(1, -(-total // size))
                page = min(max(page, 0), pages - 1)
                found = model.find(offset=page * size, limit=size, **{field: condition})
            except DiscobaseError as exc:
                raise _Refused("Invalid query", str(exc)) from None
            label = dict(_OPERATOR_LABELS).get(operator, operator)
            ids = [r.id for r in found if r.id is not None]
            return binding, ids, page, pages, total, f"{field} {label} {text}", view
        every = sorted(binding.require_store().records())
        total = len(every)
        pages = max(1, -(-total // size))
        page = min(max(page, 0), pages - 1)
        return binding, every[page * size : (page + 1) * size], page, pages, total, "", view

    def _records_page(self, key: str, page: int) -> dict[str, Any]:
        binding, ids, page, pages, total, note, _ = self._page(key, page, PAGE_SIZE)
        records = binding.require_store().records()
        shown = [(i, records[i]) for i in ids if i in records]
        title = f"{binding.name}: records where {note}" if note else f"{binding.name}: records"
        embed = records_embed(title, shown, page=page, pages=pages, total=total)
        return message(embed, components=page_buttons(key, page, pages))

    def _column_page(self, key: str, page: int) -> dict[str, Any]:
        binding, ids, page, pages, total, _, view = self._page(key, page, COLUMN_PAGE)
        field = view["field"]
        records = binding.require_store().records()
        lines = []
        for i in ids:
            value = records.get(i, {}).get(field, binding.defaults.get(field))
            lines.append(f"`{i}`: {shorten(_json_text(value), 150)}")
        embed = {
            "title": f"{binding.name}.{field}",
            "color": BLUE,
            "description": "\n".join(lines) or "No records.",
            "footer": {"text": f"Page {page + 1} of {pages} · {total} record(s)"},
        }
        return message(embed, components=page_buttons(key, page, pages))

    # ------------------------------------------------------------------ autocomplete

    def _autocomplete(
        self, data: Mapping[str, Any], options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        focused = _focused(data)
        typed = str(options.get(focused, "") or "")
        try:
            self._check_permission(data, write=False)
        except _Refused:
            return []
        tables = self.db.tables
        if focused == "table":
            names = [n for n in sorted(tables) if n.startswith(typed.lower())]
            return [{"name": n, "value": n} for n in names[:25]]
        model = tables.get(str(options.get("table", "")).lower())
        binding = None if model is None else model.__discobase_binding__
        if binding is None or binding.store is None:
            return []
        if focused == "field":
            names = [f for f in binding.fields if f.startswith(typed)]
            return [{"name": f, "value": f} for f in names[:25]]
        records = binding.store.records()
        if focused == "id":
            found = []
            for record_id, record in records.items():
                if str(record_id).startswith(typed):
                    label = shorten(f"{record_id} {_json_text(record)}", 100)
                    found.append({"name": label, "value": str(record_id)})
                    if len(found) == 25:
                        break
            return found
        if focused == "value":
            field = str(options.get("field", ""))
            if field not in binding.indexes:
                return []  # only indexed fields: reading every value of a big table is slow
            seen: dict[str, None] = {}
            for record in records.values():
                value = record.get(field)
                text = value if isinstance(value, str) else _json_text(value)
                if text.startswith(typed) and len(text) <= 100:
                    seen[text] = None
                    if len(seen) == 25:
                        break
            return [{"name": t or '""', "value": t} for t in seen]
        return []


_OPERATOR_LABELS = (
    ("eq", "="),
    ("ne", "!="),
    ("gt", ">"),
    ("ge", ">="),
    ("lt", "<"),
    ("le", "<="),
    ("startswith", "starts with"),
    ("contains", "contains"),
    ("one_of", "is one of"),
)


def _json_text(value: Any) -> str:
    from discobase import _json

    return _json.dumps(value).decode()


def _condition(operator: str, annotation: Any, text: str) -> Any:
    """Turn ``/find``'s operator and typed value into a library condition."""
    import discobase.operators as ops

    if operator == "one_of":
        return ops.one_of(*(parse_value(annotation, part.strip()) for part in text.split(",")))
    if operator in ("startswith", "contains"):
        # A substring or prefix is text; an element of a list is typed as the list's items.
        element = text if operator == "startswith" else parse_value(_element_type(annotation), text)
        return getattr(ops, operator)(element)
    value = parse_value(annotation, text)
    if operator == "eq":
        return value
    make = getattr(ops, operator, None)
    if make is None:
        raise _Refused("Unknown operator", f"{operator!r} is not an operator of /find.")
    return make(value)


def _element_type(annotation: Any) -> Any:
    import typing

    args = typing.get_args(annotation)
    if annotation is str or not args:
        return annotation
    return args[0]


def _input(parse: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return parse()
    except BadInput as exc:
        raise _Refused("Invalid input", str(exc)) from None


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


def _options(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``{name: value}`` of a command's options (subcommands flattened)."""
    found: dict[str, Any] = {}

    def walk(options: Any) -> None:
        for option in options or []:
            if isinstance(option, dict):
                if "value" in option:
                    found[str(option.get("name"))] = option["value"]
                walk(option.get("options"))

    walk((data.get("data") or {}).get("options"))
    return found


def _focused(data: Mapping[str, Any]) -> str:
    def walk(options: Any) -> str | None:
        for option in options or []:
            if isinstance(option, dict):
                if option.get("focused"):
                    return str(option.get("name"))
                inner = walk(option.get("options"))
                if inner is not None:
                    return inner
        return None

    return walk((data.get("data") or {}).get("options")) or ""
