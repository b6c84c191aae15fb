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
