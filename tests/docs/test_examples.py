"""Every program in examples/ runs as a user would run it, offline, and says what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
EXPECTED = {
    "costs.py": "0 responses were 429",
    "inventory.py": "4 items in stock",
    "live_sync.py": "records after: 3",
    "quickstart.py": "2 users",
    "todo.py": "[x] #1 write docs",
}


def test_every_example_is_checked() -> None:
    assert sorted(path.name for path in EXAMPLES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs_offline(path: Path) -> None:
    # No token in the environment: each example starts its own local Discord.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCOBASE_")}
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert EXPECTED[path.name] in proc.stdout
