"""Benchmark ``dqref diff`` (issue 7): two 4096 x 4096 masks, ~100k flagged, ~10k changed.

Goal: under 0.5 s for reading both and comparing them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from report import report

from dqref import DQModel
from dqref.compare import compare_masks, diff_references


def main() -> None:
    rng = np.random.default_rng(3)
    old = DQModel.blank("IRIS", "IRIS1", useafter="2025-01-01")
    old.flag(rng.integers(0, 4096, size=(100_000, 2)), "DEAD|DO_NOT_USE")
    new = old.copy()
    new.flag(rng.integers(0, 4096, size=(10_000, 2)), "HOT|DO_NOT_USE")
    with tempfile.TemporaryDirectory() as folder:
        old_path, new_path = Path(folder) / "old.fits", Path(folder) / "new.fits"
        old.write(old_path)
        new.write(new_path)
        started = time.perf_counter()
        compare_masks(old.dq, new.dq)
        core = time.perf_counter() - started
        started = time.perf_counter()
        diff_references(DQModel.read(new_path), DQModel.read(old_path))
        whole = time.perf_counter() - started
    report([("diff, numpy core (two 4096 x 4096 masks)", "", f"{core * 1e3:.0f} ms"),
            ("diff, read both files + compare", "< 500 ms", f"{whole * 1e3:.0f} ms")])


if __name__ == "__main__":
    main()
