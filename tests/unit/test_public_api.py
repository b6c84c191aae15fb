"""The public namespace is curated: ``__all__`` is sorted and names only real attributes."""

import subprocess
import sys

import discobase


def test_all_is_sorted_and_complete() -> None:
    assert list(discobase.__all__) == sorted(discobase.__all__)
    for name in discobase.__all__:
        assert hasattr(discobase, name), name


def test_import_does_not_load_the_emulator_or_aiohttp_web() -> None:
    code = (
        "import sys, discobase; "
        "bad = [m for m in ('discobase.emulator', 'aiohttp.web') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_loads_no_network_layer_until_login() -> None:
    code = (
        "import sys, discobase; "
        "db = discobase.Database('x'); "
        "heavy = ('aiohttp', 'asyncio', 'discobase.http', 'discobase.gateway', "
        "'discobase.storage'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_errors_of_the_lower_layers_are_reexported() -> None:
    from discobase.gateway.errors import GatewayError
    from discobase.http.errors import Forbidden, HTTPException, InvalidToken

    assert discobase.InvalidToken is InvalidToken
    assert discobase.Forbidden is Forbidden
    assert discobase.HTTPException is HTTPException
    assert discobase.GatewayError is GatewayError
    for name in discobase.__all__:
        value = getattr(discobase, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, discobase.DiscobaseError), name


def test_import_leaves_pydantic_models_and_storage_until_used() -> None:
    # `import discobase` must stay a small fraction of its dependencies' import time: the
    # table module (pydantic's model machinery) loads on first access of Table, storage and
    # the clients at login.
    code = (
        "import sys, discobase; "
        "late = ('discobase.table', 'pydantic.main', 'discobase.storage', 'discobase.http', "
        "'discobase.gateway', 'aiohttp', 'yarl', 'orjson', 'asyncio', 'dataclasses'); "
        "print(','.join(m for m in late if m in sys.modules)); "
        "from discobase import Table; "
        "print(Table is discobase.Table, 'pydantic.main' in sys.modules, 'aiohttp' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["", "True True False"]


def test_a_table_can_be_defined_right_after_import() -> None:
    code = (
        "import discobase; "
        "db = discobase.Database('x'); "
        "User = db.table(type('User', (discobase.Table,), {'__annotations__': {'name': str}})); "
        "print(sorted(db.tables), User(name='a').id)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['user'] None"


def test_a_table_is_defined_and_registered_without_its_writing_or_logging_machinery() -> None:
    # How records are written (discobase._encoder), what fills older records
    # (discobase._filler) and the logging module are loaded at first use.
    code = (
        "import sys, discobase; "
        "db = discobase.Database('x'); "
        "User = db.table(type('User', (discobase.Table,), {'__annotations__': {'name': str}})); "
        "late = ('logging', 'discobase._encoder', 'discobase._filler'); "
        "print(','.join(m for m in late if m in sys.modules), User(name='a').name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == " a\n"


def test_lazy_names_are_listed_before_they_are_loaded() -> None:
    code = "import discobase; print('Table' in dir(discobase), 'GatewayError' in dir(discobase))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True True"
