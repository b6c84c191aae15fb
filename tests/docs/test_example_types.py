"""The examples type-check under ``mypy --strict``, as a user's program using discobase would.

This is where the typing of the public API is held to account: ``record.id`` is an ``int`` on
records a query returns, ``async for`` works over a query, operators type-check as field
values, and ``db.batch()`` yields ``None``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The examples written to be strictly typed (costs.py predates this check). The first fills
# mypy's cache on a clean clone (about 2 s; `make test` runs mypy before pytest): slow.
STRICT = [
    pytest.param("inventory.py", marks=pytest.mark.slow),
    "live_sync.py",
    "quickstart.py",
    "todo.py",
]


@pytest.mark.parametrize("name", STRICT)
def test_example_type_checks_strictly(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", f"examples/{name}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_catches_a_mistake_in_a_query(tmp_path: Path) -> None:
    # The check has teeth: an unchecked first() (None when nothing matched) is an error.
    program = tmp_path / "wrong.py"
    program.write_text(
        "import discobase\n"
        "from discobase import gt\n\n"
        "class Item(discobase.Table):\n"
        "    stock: int\n\n"
        "def name_of_first() -> int:\n"
        "    return Item.find(stock=gt(0)).first().stock\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(program)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 1 and "union-attr" in proc.stdout, proc.stdout + proc.stderr
