"""Refusals and the checks that raise them (commands layer: pure, no I/O).

A :class:`Refused` is answered to the member as a readable message, not logged as a crash:
a missing permission, a table or field that does not exist, input that does not parse. The
handlers raise it; ``AdminCommands`` answers it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from discobase.commands.definitions import ADMINISTRATOR, MANAGE_GUILD
from discobase.commands.interaction import member_permissions
from discobase.commands.render import BadInput

if TYPE_CHECKING:
    from discobase.table import Table, TableBinding

__all__ = ["Refused", "parsed_input", "require_permission", "table_binding", "table_field"]


class Refused(Exception):
    """Answer the member with this title and explanation (a refusal, not a crash)."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail


def require_permission(data: Mapping[str, Any], needed: int, *, write: bool) -> None:
    """Refuse a member who holds neither ADMINISTRATOR nor every bit of ``needed``.

    Raises:
        Refused: the member lacks a permission (saying whether to read or to change).
    """
    if not needed:
        return
    held = member_permissions(data)
    if held & ADMINISTRATOR or held & needed == needed:
        return
    what = "change" if write else "read"
    raise Refused(
        "Permission needed",
        f"You need the Manage Server permission to {what} this database."
        if needed == MANAGE_GUILD
        else f"You need permissions {needed} to {what} this database.",
    )


def table_binding(tables: Mapping[str, type[Table]], name: Any) -> TableBinding:
    """Return the open table called ``name`` (any case, spaces around ignored).

    Raises:
        Refused: there is no such table, or it is not open yet.
    """
    model = tables.get(str(name or "").strip().lower())
    if model is None:
        known = ", ".join(sorted(tables)) or "(none)"
        raise Refused("Unknown table", f"There is no table {name!r}. Tables: {known}.")
    binding: TableBinding | None = model.__discobase_binding__
    assert binding is not None
    if binding.store is None:
        raise Refused("Table not open", f"The table {binding.name!r} is not open yet.")
    return binding


def table_field(binding: TableBinding, name: Any) -> str:
    """Return ``name`` as a field of the table.

    Raises:
        Refused: the table has no such field.
    """
    field = str(name or "").strip()
    if field not in binding.fields:
        known = ", ".join(binding.fields) or "(none)"
        raise Refused("Unknown field", f"{binding.name} has no field {field!r}. Fields: {known}.")
    return field


def parsed_input(parse: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return what ``parse`` reads from a command's text, refusing what does not parse.

    Raises:
        Refused: ``parse`` raised :class:`~discobase.commands.render.BadInput`.
    """
    try:
        return parse()
    except BadInput as exc:
        raise Refused("Invalid input", str(exc)) from None
