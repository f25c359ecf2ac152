"""Benchmark the DQ reference model (issue 2): histogram, read + verify + validate, write.

Run by hand: ``.venv/bin/python benchmarks/bench_reference.py``. Prints figures; asserts
nothing. Goals: histogram < 50 ms, read + verify + validate < 0.3 s on a 4096 x 4096
reference with ~100k flagged pixels.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from report import report

from dqref import DQModel


def best_of(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> list[tuple[str, str, float]]:
    rng = np.random.default_rng(1)
    model = DQModel.blank("IRIS", "IRIS1", useafter="2025-01-01")
    for name, count in (("DEAD|DO_NOT_USE", 40_000), ("HOT|DO_NOT_USE", 30_000),
                        ("WARM", 20_000), ("LOW_QE", 10_000)):
        model.flag(rng.integers(0, 4096, size=(count, 2)), name)
    dq = model.dq
    rows = []
    rows.append(("histogram (per flag)", "< 50 ms", best_of(model.histogram) * 1e3))
    rows.append(("np.histogram(dq, bins=3), for scale", "", best_of(
        lambda: np.histogram(dq, bins=3)) * 1e3))
    rows.append(("loop over 32 bits, for scale", "", best_of(
        lambda: [np.count_nonzero(dq & np.uint32(1 << b)) for b in range(32)]) * 1e3))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "iris_dq.fits"
        written = []

        def write():
            target = path.with_name(f"w{len(written)}.fits")
            model.write(target)
            written.append(target)

        rows.append(("write (validate + checksum + rename)", "", best_of(write, 3) * 1e3))
        model.write(path)
        rows.append(("read + verify checksums + validate", "< 300 ms", best_of(
            lambda: DQModel.read(path).validate()) * 1e3))
    print(f"flagged pixels: {model.histogram().flagged}")
    report([(figure, goal, f"{value:.1f} ms") for figure, goal, value in rows])
    return rows


if __name__ == "__main__":
    main()
