"""``python -m discobase.emulator``: the same as ``python -m discobase emulator``.

Layer: the emulator's command line (see ``cli.py``).
"""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
