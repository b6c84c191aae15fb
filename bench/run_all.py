"""Run every benchmark in ``bench/`` and print their tables (what ``make bench`` calls).

Each ``bench/*.py`` script (but this one) runs in its own process, in name order, with the
same interpreter; its output is printed under a heading. A script that fails is reported and
the others still run; the exit status is non-zero if any failed.

Run: ``python bench/run_all.py [NAME ...]`` (names without ``.py`` pick some scripts).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# A benchmark that takes longer than this is stuck, not slow.
TIMEOUT = 30 * 60


def scripts(selected: list[str]) -> list[Path]:
    """Return the benchmark scripts to run, in name order."""
    found = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    if selected:
        wanted = {name.removesuffix(".py") for name in selected}
        found = [p for p in found if p.stem in wanted]
        missing = wanted - {p.stem for p in found}
        if missing:
            raise SystemExit(f"no benchmark named {', '.join(sorted(missing))} in {HERE}")
    return found


def run(script: Path) -> bool:
    """Run one script, streaming its output; return whether it succeeded."""
    print(f"\n=== {script.name} " + "=" * max(0, 60 - len(script.name)), flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"--- {script.name}: stopped after {TIMEOUT} s", flush=True)
        return False
    took = time.perf_counter() - start
    ok = done.returncode == 0
    status = "ok" if ok else f"FAILED (exit status {done.returncode})"
    print(f"--- {script.name}: {status} in {took:.0f} s", flush=True)
    return ok


def main() -> int:
    results = {script.name: run(script) for script in scripts(sys.argv[1:])}
    failed = [name for name, ok in results.items() if not ok]
    print(f"\n{len(results) - len(failed)} of {len(results)} benchmarks ran", end="")
    print(f"; failed: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
