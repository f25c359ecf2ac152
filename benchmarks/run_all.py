"""Run every benchmark in this folder and print one table (``make bench``).

Each ``bench_*.py`` is run in its own process (so peak-memory figures do not mix) and its
output is shown as it comes. Benchmarks are run by hand, never by the test suite.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failures = []
    summary = []
    figures: list[list[str]] = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n===== {script.name}", flush=True)
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, str(script)], cwd=HERE.parent,
                                   capture_output=True, text=True)
        seconds = time.perf_counter() - started
        print("\n".join(line for line in completed.stdout.splitlines()
                        if not line.startswith("FIGURE\t")), completed.stderr[-2000:], flush=True)
        figures += [line.split("\t")[1:] for line in completed.stdout.splitlines()
                    if line.startswith("FIGURE\t")]
        summary.append((script.name, "ok" if completed.returncode == 0 else "FAILED", seconds))
        if completed.returncode:
            failures.append(script.name)
    if figures:
        width = max(len(f[0]) for f in figures)
        print(f"\n{'figure':<{width}}  {'goal':>12}  {'measured':>14}")
        for figure, goal, measured in figures:
            print(f"{figure:<{width}}  {goal:>12}  {measured:>14}")
    print(f"\n{'benchmark':<28} {'result':>8} {'wall':>9}")
    for name, result, seconds in summary:
        print(f"{name:<28} {result:>8} {seconds:>8.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
