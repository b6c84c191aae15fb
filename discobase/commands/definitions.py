"""The slash commands' definitions, as Discord's bulk overwrite takes them (commands layer).

Pure data. Option types: 3 string, 4 integer, 5 boolean. Every command is a guild command of
the database's guild; ``default_member_permissions`` hides a command from members without
those permissions (the handlers check them again from each interaction's payload, since a
server's Integrations settings can change who sees a command).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ADMINISTRATOR", "COMMAND_NAMES", "MANAGE_GUILD", "READS", "WRITES", "definitions"]

MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3

STRING, INTEGER, BOOLEAN = 3, 4, 5

#: The operators ``/find`` offers, as Discord choices: the library's (discobase.operators).
OPERATORS = [
    ("equals (=)", "eq"),
    ("not equal (!=)", "ne"),
    ("greater than (>)", "gt"),
    ("at least (>=)", "ge"),
    ("less than (<)", "lt"),
    ("at most (<=)", "le"),
    ("starts with", "startswith"),
    ("contains", "contains"),
    ("one of (comma-separated)", "one_of"),
]

READS = ("find", "table", "column", "tablestats", "schema")
WRITES = ("insert", "update", "delete", "clear")
COMMAND_NAMES = READS + WRITES


def _table() -> dict[str, Any]:
    return {
        "type": STRING,
        "name": "table",
        "description": "The table",
        "required": True,
        "autocomplete": True,
    }


def _field(required: bool, description: str = "A field of the table") -> dict[str, Any]:
    return {
        "type": STRING,
        "name": "field",
        "description": description,
        "required": required,
        "autocomplete": True,
    }


def _public() -> dict[str, Any]:
    return {
        "type": BOOLEAN,
        "name": "public",
        "description": "Show the answer to everyone in the channel (default: only you)",
    }


def _record_id() -> dict[str, Any]:
    return {
        "type": STRING,
        "name": "id",
        "description": "The record's id",
        "required": True,
        "autocomplete": True,
    }


def definitions(read_permissions: int, write_permissions: int) -> list[dict[str, Any]]:
    """Return every command, reads needing ``read_permissions`` and writes the other bits."""
    reads = str(read_permissions) if read_permissions else None
    writes = str(write_permissions) if write_permissions else None
    common = {"contexts": [0], "integration_types": [0]}
    return [
        {
            "name": "find",
            "description": "Find records: every one, or those whose field matches a value",
            "default_member_permissions": reads,
            "options": [
                _table(),
                _field(False),
                {
                    "type": STRING,
                    "name": "operator",
                    "description": "How the field compares to the value (default: equals)",
                    "choices": [{"name": name, "value": value} for name, value in OPERATORS],
                },
                {
                    "type": STRING,
                    "name": "value",
                    "description": "The value (JSON for numbers, lists, ...; text as is)",
                    "autocomplete": True,
                },
                _public(),
            ],
            **common,
        },
        {
            "name": "table",
            "description": "Page through every record of a table",
            "default_member_permissions": reads,
            "options": [_table(), _public()],
            **common,
        },
        {
            "name": "column",
            "description": "Page through one field of every record of a table",
            "default_member_permissions": reads,
            "options": [_table(), _field(True), _public()],
            **common,
        },
        {
            "name": "tablestats",
            "description": "How many records a table holds, its fields and indexes",
            "default_member_permissions": reads,
            "options": [_table(), _public()],
            **common,
        },
        {
            "name": "schema",
            "description": "A table's fields: types, defaults and indexes",
            "default_member_permissions": reads,
            "options": [_table(), _public()],
            **common,
        },
        {
            "name": "insert",
            "description": "Insert a record, validated as save() validates it",
            "default_member_permissions": writes,
            "options": [
                _table(),
                {
                    "type": STRING,
                    "name": "values",
                    "description": 'The record as a JSON object, e.g. {"name": "Peter"}',
                    "required": True,
                },
            ],
            **common,
        },
        {
            "name": "update",
            "description": "Change fields of a record, validated as the table validates them",
            "default_member_permissions": writes,
            "options": [
                _table(),
                _record_id(),
                {
                    "type": STRING,
                    "name": "changes",
                    "description": 'The fields to change as a JSON object, e.g. {"age": 31}',
                    "required": True,
                },
            ],
            **common,
        },
        {
            "name": "delete",
            "description": "Delete a record by id",
            "default_member_permissions": writes,
            "options": [_table(), _record_id()],
            **common,
        },
        {
            "name": "clear",
            "description": "Delete every record of a table (asks for confirmation)",
            "default_member_permissions": writes,
            "options": [_table()],
            **common,
        },
    ]
