"""Extract the Python code blocks of Markdown pages, with their test markers.

Convention for the documentation (README.md and docs/**/*.md):

- Every fenced block whose language is ``python`` or ``py`` is run by ``test_code_blocks.py``
  against a fresh local Discord, in which a bot has joined a guild for each
  ``Database("NAME"`` the block names.
- A block may use the bot token as ``"My bot token..."`` (the test puts the local bot's token
  there) or ``os.environ["DISCOBASE_TOKEN"]``; ``DISCOBASE_API_URL`` and
  ``DISCOBASE_TIME_SCALE`` point at the local Discord, so ``discobase.Database(name)`` needs
  no ``api_url``.
- An API sketch may use ``token``, ``http`` (an open ``HTTPClient``), ``guild_id``,
  ``channel_id`` (a fresh channel), ``gateway_bot``, ``on_event``, ``api_url`` and ``asyncio``
  without defining them; the test provides them.
- ``asyncio.run(main())`` behind ``if __name__ == "__main__":`` is not reached; the test runs
  ``main()`` itself when the block defines it, and calls each ``async def test_*`` with the
  ``discobase.testing`` fixtures it names. Top-level ``await`` and ``async with`` are allowed,
  as in ``python -m asyncio``.
- An HTML comment on the line just before the fence changes how the block is run:
  ``<!-- docs-test: skip REASON -->`` does not run it (keep these few: a program that runs
  forever), ``<!-- docs-test: continue -->`` runs it after the page's previous runnable block
  (for a fragment that reuses its tables), ``<!-- docs-test: raises NAME -->`` expects an
  exception of that class name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CodeBlock", "extract_blocks"]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>\w+)\s*(?P<arg>.*?)\s*-->\s*$")
_LANGS = frozenset({"python", "py"})
_KINDS = frozenset({"skip", "continue", "raises"})


@dataclass(frozen=True)
class CodeBlock:
    """One Python block of a page.

    Attributes:
        path: the page.
        line: the line of the opening fence (1-based).
        source: the block's code, dedented to its fence.
        marker: ``""``, ``"skip"``, ``"continue"`` or ``"raises"``.
        argument: the marker's argument (the reason, or the exception's class name).
    """

    path: Path
    line: int
    source: str
    marker: str = ""
    argument: str = ""

    @property
    def name(self) -> str:
        """Name the block for pytest ids: ``page.md:LINE``."""
        return f"{self.path.name}:{self.line}"


def extract_blocks(path: Path) -> list[CodeBlock]:
    """Return the Python blocks of a Markdown page, in order.

    Raises:
        ValueError: a marker is unknown or does not precede a Python block, or a fence is
            never closed (a mistake the test should report, not hide).
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[CodeBlock] = []
    pending: tuple[str, str, int] | None = None
    index = 0
    while index < len(lines):
        text = lines[index]
        marker = _MARKER.match(text)
        if marker:
            kind = marker["kind"]
            if kind not in _KINDS:
                raise ValueError(f"{path}:{index + 1}: unknown docs-test marker {kind!r}")
            pending = (kind, marker["arg"], index + 1)
            index += 1
            continue
        fence = _FENCE.match(text)
        if not fence:
            if pending and text.strip():
                raise ValueError(f"{path}:{pending[2]}: a docs-test marker must precede a fence")
            index += 1
            continue
        indent, mark, lang = fence["indent"], fence["fence"], fence["lang"].lower()
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(mark):
            end += 1
        if end >= len(lines):
            raise ValueError(f"{path}:{index + 1}: unclosed code fence")
        body = [
            line[len(indent) :] if line.startswith(indent) else line
            for line in lines[index + 1 : end]
        ]
        if lang in _LANGS:
            kind, arg = (pending[0], pending[1]) if pending else ("", "")
            blocks.append(CodeBlock(path, index + 1, "\n".join(body) + "\n", kind, arg))
        elif pending:
            raise ValueError(f"{path}:{pending[2]}: a docs-test marker must precede a python block")
        pending = None
        index = end + 1
    return blocks
