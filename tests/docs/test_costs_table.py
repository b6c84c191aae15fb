"""The cost tables in the README and docs/costs.md say what examples/costs.py measures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\|\s*(?P<call>[^|]+?)\s*\|\s*(?P<count>\d+)\s*\|\s*$")
LINE = re.compile(r"^\s*(?P<count>\d+) requests\s+(?P<call>.+?)\s*$")


@pytest.fixture(scope="module")
def measured() -> dict[str, int]:
    # No token in the environment: the example starts its own local Discord. It counts the
    # requests each call makes, with the periodic gap checks kept out of the window.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCOBASE_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "costs.py")],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    counts = {}
    for line in proc.stdout.splitlines():
        match = LINE.match(line)
        if match:
            counts[match["call"]] = int(match["count"])
    assert counts, proc.stdout
    return counts


def table(path: Path) -> dict[str, int]:
    rows = {}
    for line in path.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match["call"].replace("`", "")] = int(match["count"])
    return rows


@pytest.mark.parametrize("page", ["README.md", "docs/costs.md"])
def test_the_cost_table_is_what_the_example_measures(measured: dict[str, int], page: str) -> None:
    assert table(ROOT / page) == measured
