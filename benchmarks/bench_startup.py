"""Benchmark the start-up of the light commands (issue 15): ``--help`` and ``cache list``.

Goal: each under 0.3 s wall (median of 7 fresh processes), beside ``python -c pass``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from report import report
from timing import BIN, load, median, repeated

GOAL = 0.3
REPEATS = 7


def main() -> None:
    rows = [("machine at start", "", load())]
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        cache = Path(folder) / "cache"
        repeated([BIN / "dqref", "cache", "init", "--crds-path", cache], 1, warmup=False)
        commands = {
            "python -c pass (for scale)": ([BIN / "python", "-c", "pass"], ""),
            "dqref --help": ([BIN / "dqref", "--help"], f"< {GOAL} s"),
            "dqinit --help": ([BIN / "dqinit", "--help"], f"< {GOAL} s"),
            "dqref cache list": ([BIN / "dqref", "cache", "list", "--crds-path", cache],
                                 f"< {GOAL} s"),
        }
        for name, (command, goal) in commands.items():
            seconds = median(r.seconds for r in repeated(command, REPEATS))
            verdict = "" if not goal else " met" if seconds < GOAL else " NOT met"
            rows.append((f"{name}, wall (median of {REPEATS})", goal,
                         f"{seconds:.3f} s{verdict}"))
    rows.append(("machine at end", "", load()))
    report(rows)


if __name__ == "__main__":
    main()
