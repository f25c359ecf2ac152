"""Benchmark many ramps (issue 8): files per second for 1 and 2 workers, memory per worker.

40 ramps of (1, 5, 2048, 2048) float32 (84 MB each, 3.4 GB in all) are written to a
temporary folder under /tmp with one full-frame IRIS1 reference, then ``run_many`` runs
serially, in a pool of 2 processes and (if Dask is installed) on a LocalCluster of 2
workers, each twice in a fresh driver process (the faster run counts). While a run goes,
the peak resident memory (``VmHWM``) of the driver and of every process it starts is
sampled from /proc (Linux).

Goal: the peak memory of one worker is within 1.2x of the serial run's peak. The inputs
are in the page cache (just written), so files/s measure the step and the copies, not a
cold disk; files/s include starting the pool or the cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import report

FILES = 40
SHAPE = (1, 5, 2048, 2048)


def driver(inputs: str, cache: str, outputs: str, workers: str, scheduler: str) -> None:
    """Run in a child process: one ``run_many`` over the inputs; print its timing."""
    from dqinit.parallel import RunSettings, expand_inputs, run_many

    paths = expand_inputs([f"{inputs}/*_uncal.fits"])
    settings = RunSettings(crds_path=cache, output_dir=outputs)
    started = time.perf_counter()
    records = run_many(paths, settings, workers=int(workers), scheduler=scheduler or None)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds,
                      "failed": [r["error"] for r in records if r["status"] != "COMPLETE"]}))


def descendants(root: int) -> set[int]:
    """Return the pids of every live process below ``root``."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(parent, []).append(int(entry))
    found, frontier = set(), [root]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.update(children)
        frontier += children
    return found


def peak_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def best_run(inputs: Path, cache: Path, outputs: Path, workers: int, scheduler: str = "",
             repeats: int = 2) -> dict:
    """The fastest of ``repeats`` runs, with the highest memory peaks seen in any."""
    runs = [measured_run(inputs, cache, outputs, workers, scheduler) for _ in range(repeats)]
    best = min(runs, key=lambda run: run["seconds"])
    return {**best, "driver_mb": max(run["driver_mb"] for run in runs),
            "worker_mb": max(run["worker_mb"] for run in runs)}


def measured_run(inputs: Path, cache: Path, outputs: Path, workers: int,
                 scheduler: str = "") -> dict:
    """Run one driver process; return its seconds, its peak and its workers' peaks (MB)."""
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir()
    os.sync()  # the previous writes must not be flushed on this run's time
    process = subprocess.Popen([sys.executable, __file__, "--driver", str(inputs), str(cache),
                                str(outputs), str(workers), scheduler],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, float] = {}
    while process.poll() is None:
        for pid in {process.pid} | descendants(process.pid):
            peak = peak_mb(pid)
            if peak is not None:
                peaks[pid] = max(peak, peaks.get(pid, 0.0))
        time.sleep(0.05)
    stdout, stderr = process.communicate()
    if process.returncode:
        raise RuntimeError(stderr[-3000:])
    result = json.loads(stdout.strip().splitlines()[-1])
    if result["failed"]:
        raise RuntimeError(f"{len(result['failed'])} files failed: {result['failed'][:3]}")
    result["driver_mb"] = peaks.pop(process.pid)
    result["worker_mb"] = max(peaks.values(), default=0.0)
    shutil.rmtree(outputs)
    return result


def main() -> None:
    from dqinit.simulate import ramp_header, write_raw_ramp
    from dqref import DQModel
    from dqref.cache.local_cache import LocalCache

    with tempfile.TemporaryDirectory(dir="/tmp", prefix="bench_parallel_") as folder:
        root = Path(folder)
        cache = LocalCache(root / "cache")
        cache.init()
        reference = DQModel.blank("IRIS", "IRIS1", useafter="2020-01-01")
        reference.flag([[1100, 1100]], "DEAD|DO_NOT_USE")
        reference.write(root / "reference.fits")
        cache.add(root / "reference.fits")
        inputs = root / "inputs"
        inputs.mkdir()
        nints, ngroups, rows, columns = SHAPE
        for index in range(FILES):
            write_raw_ramp(inputs / f"r{index:02d}_uncal.fits",
                           ramp_header(subarray=("SUB2048", 1025, 1025, columns, rows)),
                           nints=nints, ngroups=ngroups, seed=index)
        serial = best_run(inputs, cache.root, root / "out", 1)
        pool = best_run(inputs, cache.root, root / "out", 2)
        rows_out = [
            (f"{FILES} ramps {SHAPE}, 1 worker (serial)", "",
             f"{FILES / serial['seconds']:.2f} files/s"),
            (f"{FILES} ramps {SHAPE}, 2 workers (pool)", "",
             f"{FILES / pool['seconds']:.2f} files/s"),
        ]
        try:
            import distributed  # noqa: F401
        except ImportError:
            dask = None
        else:
            dask = best_run(inputs, cache.root, root / "out", 2, "local")
            rows_out.append((f"{FILES} ramps {SHAPE}, 2 Dask workers (LocalCluster)", "",
                             f"{FILES / dask['seconds']:.2f} files/s"))
        rows_out += [
            ("peak RSS, serial run", "", f"{serial['driver_mb']:.0f} MB"),
            ("peak RSS of one pool worker", "< 1.2x serial",
             f"{pool['worker_mb']:.0f} MB ({pool['worker_mb'] / serial['driver_mb']:.2f}x)"),
            ("peak RSS of the pool's driver", "", f"{pool['driver_mb']:.0f} MB"),
        ]
        if dask is not None:
            rows_out.append(("peak RSS of one Dask worker process", "< 1.2x serial",
                             f"{dask['worker_mb']:.0f} MB "
                             f"({dask['worker_mb'] / serial['driver_mb']:.2f}x)"))
    report(rows_out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:
        driver(*sys.argv[2:7])
    else:
        main()
