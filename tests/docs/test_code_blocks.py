"""Run every Python example of README.md and docs/ against a fresh local Discord.

The conventions a block follows are in ``tests/docs/blocks.py``. Each block runs in a worker
thread with its own event loop (as a user's ``asyncio.run`` would), while the local Discord
serves it from the test's loop over loopback sockets.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import symtable
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from discobase.testing import DEFAULT_TIME_SCALE
from tests.docs.blocks import CodeBlock, extract_blocks

ROOT = Path(__file__).resolve().parents[2]
# Real seconds per Discord second in the local Discord the examples talk to.
TIME_SCALE = 0.05
# A block that has not finished by then is stuck, not slow.
BLOCK_TIMEOUT = 90.0
TOKEN_PLACEHOLDER = '"My bot token..."'
_DATABASE_NAME = re.compile(r"Database\(\s*(?:name\s*=\s*)?\"([^\"]+)\"")
# `asyncio.run(` at the start of a line: the block runs itself when executed.
_RUNS_ITSELF = re.compile(r"^asyncio\.run\(", re.MULTILINE)


# Blocks that configure process-wide state (logging handlers and levels) run in an
# interpreter of their own, so they cannot change what later tests see.
ISOLATE = re.compile(r"\blogging\b")


async def run_in_subprocess(program: str, filename: str, own_part: str, folder: Path) -> None:
    """Run a block with run_program() in a fresh interpreter; fail with its stderr."""
    (folder / "program.py").write_text(program, encoding="utf-8")
    (folder / "own.py").write_text(own_part, encoding="utf-8")
    driver = (
        "import pathlib, sys\n"
        "from tests.docs.test_code_blocks import run_program\n"
        "folder = pathlib.Path(sys.argv[1])\n"
        "run_program((folder / 'program.py').read_text(), sys.argv[2], "
        "(folder / 'own.py').read_text())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        driver,
        str(folder),
        filename,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")


def pages() -> list[Path]:
    """Return README.md and every page of the documentation site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def programs() -> Iterator[tuple[CodeBlock, str]]:
    """Yield each block with the program that runs it (a fragment after its page's prefix)."""
    for page in pages():
        previous = ""
        for block in extract_blocks(page):
            if block.marker == "continue":
                if not previous:
                    raise ValueError(f"{block.name}: `continue` with no block before it")
                source = previous + "\n" + block.source
            else:
                source = block.source
            if block.marker != "skip":
                previous = source
            yield block, source


PROGRAMS = list(programs())

# A block that sleeps a real second or more, or has three program versions (three databases)
# log in one after another, takes over a second here: each login inside Discord's identify
# window costs the client the window and its 0.5 s real-time margin (0.75 s at this scale).
_SLEEP = re.compile(r"asyncio\.sleep\(([0-9.]+)\)")


def _marks(source: str) -> list[pytest.MarkDecorator]:
    slept = sum(float(seconds) for seconds in _SLEEP.findall(source))
    slow = slept >= 1.0 or source.count("discobase.Database(") >= 3
    return [pytest.mark.slow] if slow else []


def run_program(source: str, filename: str, own_part: str) -> None:
    """Execute a block; await its ``main()`` unless it runs itself; run its ``test_*``."""
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    # Top-level `await` / `async with` is allowed, as in `python -m asyncio`.
    # dont_inherit: this module's `from __future__ import annotations` must not leak in.
    code = compile(
        source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    sketch = free_names(source) & set(SKETCH_NAMES)
    if code.co_flags & inspect.CO_COROUTINE or sketch:
        asyncio.run(run_sketch(code, namespace))
    else:
        exec(code, namespace)
    main = namespace.get("main")
    if main is not None and asyncio.iscoroutinefunction(main) and not _RUNS_ITSELF.search(own_part):
        asyncio.run(main())
    for name, function in namespace.items():
        if name.startswith("test_") and asyncio.iscoroutinefunction(function):
            asyncio.run(run_test_function(function))


# Names an API sketch may use without defining them, provided by run_sketch().
SKETCH_NAMES = (
    "api_url",
    "asyncio",
    "channel_id",
    "gateway_bot",
    "guild_id",
    "http",
    "on_event",
    "token",
)


def free_names(source: str) -> set[str]:
    """Return the module-level names a block reads but never binds."""
    try:
        table = symtable.symtable(source, "<block>", "exec")
    except SyntaxError:
        return set()
    return {
        symbol.get_name()
        for symbol in table.get_symbols()
        if symbol.is_referenced() and not symbol.is_assigned() and not symbol.is_imported()
    }


async def run_sketch(code: Any, namespace: dict[str, Any]) -> None:
    """Run a block in a loop, with an open HTTP client and friends already defined."""
    import os

    from discobase.http import HTTPClient

    token, api_url = os.environ["DISCOBASE_TOKEN"], os.environ["DISCOBASE_API_URL"]
    async with HTTPClient(token, api_url=api_url, time_scale=TIME_SCALE) as http:
        guild = (await http.fetch_my_guilds())[0]
        channel = await http.create_guild_channel(guild["id"], name="docs-sketch")

        async def on_event(event: Any) -> None:
            return None

        namespace.update(
            api_url=api_url,
            asyncio=asyncio,
            channel_id=channel["id"],
            gateway_bot=await http.fetch_gateway_bot(),
            guild_id=guild["id"],
            http=http,
            on_event=on_event,
            token=token,
        )
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            await result


async def run_test_function(function: Any) -> None:
    """Call a documented pytest test with the ``discobase.testing`` fixtures it names."""
    from discobase.testing import local_discord

    wanted = inspect.signature(function).parameters
    async with local_discord(time_scale=DEFAULT_TIME_SCALE) as local:
        fixtures: dict[str, Any] = {
            "local_discord": local,
            "discobase_time_scale": DEFAULT_TIME_SCALE,
        }
        if "discobase_db" in wanted:
            db = local.database()
            async with db.conn(local.token):
                fixtures["discobase_db"] = db
                await function(**{k: fixtures[k] for k in wanted})
        else:
            await function(**{k: fixtures[k] for k in wanted})


def test_the_docs_have_examples() -> None:
    # Guards against a parser that silently finds nothing.
    assert len(PROGRAMS) >= 10
    skipped = [block.name for block, _ in PROGRAMS if block.marker == "skip"]
    assert len(skipped) <= 5, f"too many examples are not run: {skipped}"


@pytest.mark.parametrize(
    ("block", "source"),
    [pytest.param(block, code, id=block.name, marks=_marks(code)) for block, code in PROGRAMS],
)
async def test_example_runs(
    block: CodeBlock, source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if block.marker == "skip":
        pytest.skip(block.argument or "marked docs-test: skip")
    from discobase.emulator import Emulator

    async with Emulator(time_scale=TIME_SCALE) as emu:
        bot = emu.create_bot("docs-example")
        names = _DATABASE_NAME.findall(source) or ["discobase docs"]
        for name in dict.fromkeys(names):
            emu.create_guild(name, bots=[bot])
        monkeypatch.setenv("DISCOBASE_TOKEN", bot.token)
        monkeypatch.setenv("DISCOBASE_API_URL", emu.url)
        # The client's own waits (identify spacing, backoff) run as fast as the server's.
        monkeypatch.setenv("DISCOBASE_TIME_SCALE", str(TIME_SCALE))
        program = source.replace(TOKEN_PLACEHOLDER, repr(bot.token))
        filename = f"{block.path.relative_to(ROOT)}:{block.line}"
        if ISOLATE.search(source):
            work = run_in_subprocess(program, filename, block.source, tmp_path)
        else:
            work = asyncio.to_thread(run_program, program, filename, block.source)
        if block.marker == "raises":
            with pytest.raises(Exception) as caught:
                await asyncio.wait_for(work, BLOCK_TIMEOUT)
            names = {cls.__name__ for cls in type(caught.value).__mro__}
            assert block.argument in names, f"raised {caught.value!r}"
        else:
            await asyncio.wait_for(work, BLOCK_TIMEOUT)
