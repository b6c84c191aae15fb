"""The emulator's import graph: no circle, nothing below the server imports it, rooms stay small.

The REST handlers get a narrow ``rest.context.Backend``, the admin API a ``Controls``
protocol, chaos the parts it drives and the gateway's connections and delivery small
protocols of the server, so that every module imports only lower layers. These tests fail if
an import (``TYPE_CHECKING`` ones count: they are edges a reader follows too) brings a circle
back. The graph is drawn by grimp, which import-linter uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import discobase.emulator

grimp = pytest.importorskip("grimp")

PACKAGE = "discobase.emulator"
# The composition root and what stands above it: the only modules that may import the server.
ABOVE_SERVER = {
    PACKAGE,
    f"{PACKAGE}.__main__",
    f"{PACKAGE}.cli",
    f"{PACKAGE}.server",
}


@pytest.fixture(scope="module")
def graph() -> Any:
    return grimp.build_graph("discobase")


def _emulator_modules(graph: Any) -> list[str]:
    return sorted(m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + "."))


def _circles(graph: Any, modules: list[str]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in inside:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_in_the_emulator(graph: Any) -> None:
    circles = _circles(graph, _emulator_modules(graph))
    shown = "\n".join(" <-> ".join(circle) for circle in circles)
    assert not circles, f"modules that import each other, directly or not:\n{shown}"


def test_no_import_circle_in_rest(graph: Any) -> None:
    rest = [m for m in _emulator_modules(graph) if m.startswith(f"{PACKAGE}.rest")]
    assert len(rest) > 5
    assert not _circles(graph, rest)


def test_nothing_below_the_server_imports_it(graph: Any) -> None:
    importing = sorted(
        module
        for module in _emulator_modules(graph)
        if module not in ABOVE_SERVER
        and graph.chain_exists(importer=module, imported=f"{PACKAGE}.server")
    )
    assert importing == []


def test_rendering_reads_records_and_knows_no_state(graph: Any) -> None:
    imported = graph.find_modules_directly_imported_by(f"{PACKAGE}.render")
    assert imported <= {f"{PACKAGE}.models", f"{PACKAGE}.clock"}, imported


def test_every_emulator_module_is_under_600_lines() -> None:
    root = Path(discobase.emulator.__file__).parent
    long = {
        str(path.relative_to(root)): n
        for path in root.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}
