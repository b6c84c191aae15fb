"""The command line entry point: ``python -m discobase`` and the ``discobase`` script.

Top layer (beside the public API). It only hands over to :mod:`discobase.cli`, which imports
each subcommand (and with it aiohttp or the emulator) only when that subcommand runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when omitted.

    Returns:
        The process exit status.
    """
    from discobase.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
