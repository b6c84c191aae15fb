"""The Markdown block extractor: fences, languages and markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import extract_blocks

PAGE = """\
# Title

```python
print("one")
```

```sh
echo not python
```

<!-- docs-test: skip runs forever -->
```py
while True: pass
```

1. A list item:

    ```python
    x = 1
    ```

<!-- docs-test: raises ValueError -->
```python
raise ValueError
```
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_finds_python_blocks_with_markers(tmp_path: Path) -> None:
    blocks = extract_blocks(write(tmp_path, PAGE))
    assert [b.source for b in blocks] == [
        'print("one")\n',
        "while True: pass\n",
        "x = 1\n",
        "raise ValueError\n",
    ]
    assert [(b.marker, b.argument) for b in blocks] == [
        ("", ""),
        ("skip", "runs forever"),
        ("", ""),
        ("raises", "ValueError"),
    ]
    assert blocks[0].line == 3


def test_rejects_unknown_markers_and_unclosed_fences(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown"):
        extract_blocks(write(tmp_path, "<!-- docs-test: maybe -->\n```python\n```\n"))
    with pytest.raises(ValueError, match="unclosed"):
        extract_blocks(write(tmp_path, "```python\nx = 1\n"))
    with pytest.raises(ValueError, match="python block"):
        extract_blocks(write(tmp_path, "<!-- docs-test: skip -->\n```sh\nls\n```\n"))
