"""discobase 1.0.0's error names still catch what their replacements raise (a program written
for the original keeps its ``except`` clauses; docs/versus-original.md maps them)."""

from __future__ import annotations

import pytest

import discobase

MAPPING = {
    "NotConnectedError": ["NotConnected"],
    "DatabaseTableError": ["TableRegistrationError", "TableNotRegistered", "TableNotBuilt"],
    "DatabaseStorageError": ["RecordStateError"],
    "DatabaseLookupError": ["RecordNotFound", "MultipleRecordsFound", "InvalidQuery"],
    "DatabaseCorruptionError": ["StorageCorrupted", "UnreadableRecord"],
}


@pytest.mark.parametrize("old", sorted(MAPPING))
def test_each_old_name_is_public_and_a_discobase_error(old: str) -> None:
    assert old in discobase.__all__
    assert issubclass(getattr(discobase, old), discobase.DiscobaseError)


@pytest.mark.parametrize(("old", "new"), [(o, n) for o, ns in MAPPING.items() for n in ns])
def test_an_old_name_catches_its_replacement(old: str, new: str) -> None:
    assert issubclass(getattr(discobase, new), getattr(discobase, old))


def test_the_new_tree_is_unchanged() -> None:
    assert issubclass(discobase.InvalidQuery, discobase.UsageError)
    assert issubclass(discobase.RecordNotFound, discobase.DatabaseError)
    assert not issubclass(discobase.RecordNotFound, discobase.UsageError)


async def test_a_table_used_before_registration_is_caught_by_the_old_name() -> None:
    class Pet(discobase.Table):
        name: str

    with pytest.raises(discobase.DatabaseTableError):
        Pet.find(name="Rex")


def test_the_original_exceptions_module_still_imports() -> None:
    # 1.0.0 defined its errors in discobase.exceptions, and programs imported them from there
    # (`from discobase.exceptions import DatabaseLookupError`): the same classes, not copies,
    # so an except clause naming either catches what the other raises.
    import discobase.exceptions as exceptions

    for name in [*MAPPING, "DiscobaseError"]:
        assert getattr(exceptions, name) is getattr(discobase, name)
    assert sorted(exceptions.__all__) == sorted([*MAPPING, "DiscobaseError"])
