"""Benchmark the local CRDS cache (issue 3): warm bestref lookup and ``cache add``.

Run by hand: ``.venv/bin/python benchmarks/bench_cache.py``. Goals: a warm lookup under
1 ms; adding a full-frame reference under 2 s.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from report import report

from dqref import DQModel
from dqref.cache import crds_adapter
from dqref.cache.local_cache import LocalCache


def main() -> list[tuple[str, str, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cache = LocalCache(root / "cache")
        cache.init()
        add_times = []
        for index, (detector, useafter) in enumerate(
                [("IRIS1", "2020-01-01"), ("IRIS1", "2025-01-01"), ("IRIS2", "2020-01-01")]):
            model = DQModel.blank("IRIS", detector, useafter=useafter)
            model.flag([[index, index]], "DEAD")
            path = root / f"ref{index}.fits"
            model.write(path)
            started = time.perf_counter()
            cache.add(path)
            add_times.append(time.perf_counter() - started)
        rows.append(("cache add, full-frame reference (worst of 3)", "< 2000 ms",
                     max(add_times) * 1e3))
        header = {"INSTRUME": "IRIS", "DETECTOR": "IRIS1", "SUBARRAY": "FULL",
                  "DATE-OBS": "2026-01-01", "TIME-OBS": "00:00:00"}
        cache.bestref(header)  # load the context once
        count = 2000
        started = time.perf_counter()
        for _ in range(count):
            cache.bestref(header)
        rows.append(("warm bestref lookup (LocalCache.bestref)", "< 1 ms",
                     (time.perf_counter() - started) / count * 1e3))
        started = time.perf_counter()
        fresh = LocalCache(root / "cache")
        fresh.bestref(header)
        rows.append(("cold bestref (load context + lookup)", "", (time.perf_counter() - started)
                     * 1e3))
        started = time.perf_counter()
        crds_adapter.getrecommendations(cache.root, header)
        rows.append(("crds.getrecommendations, local mode", "", (time.perf_counter() - started)
                     * 1e3))
    report([(figure, goal, f"{value:.2f} ms") for figure, goal, value in rows])
    return rows


if __name__ == "__main__":
    main()
