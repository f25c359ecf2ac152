"""Benchmark many ramps (issue 8): files per second for 1 and 2 workers, memory per worker.

40 ramps of (1, 5, 2048, 2048) float32 (84 MB each, 3.4 GB in all) are made in a temporary
folder. Goal: peak memory per worker within 1.2x of a serial run's peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import report

from dqinit.simulate import ramp_header, write_raw_ramp
from dqref import DQModel
from dqref.cache.local_cache import LocalCache

FILES = 40
DRIVER = """
import json, resource, sys, time
from pathlib import Path
from dqinit.batch import RunSettings, run_many
paths = sorted(Path(sys.argv[1]).glob('*_uncal.fits'))
settings = RunSettings(crds_path=sys.argv[2], output_dir=sys.argv[3], overwrite=True)
started = time.perf_counter()
records = run_many(paths, settings, workers=int(sys.argv[4]))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "failed": sum(r["status"] != "COMPLETE" for r in records),
                  "self_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        root = Path(folder)
        cache = LocalCache(root / "cache")
        cache.init()
        reference = DQModel.blank("IRIS", "IRIS1", useafter="2020-01-01")
        reference.flag([[1100, 1100]], "DEAD|DO_NOT_USE")
        reference.write(root / "ref.fits")
        cache.add(root / "ref.fits")
        inputs, outputs = root / "in", root / "out"
        inputs.mkdir()
        outputs.mkdir()
        for index in range(FILES):
            write_raw_ramp(inputs / f"r{index:02d}_uncal.fits", ramp_header(
                subarray=("SUB2048", 1025, 1025, 2048, 2048)), nints=1, ngroups=5, seed=index)
        rows = []
        results = {}
        for workers in (1, 2):
            completed = subprocess.run([sys.executable, "-c", DRIVER, str(inputs),
                                        str(cache.root), str(outputs), str(workers)],
                                       capture_output=True, text=True, check=True)
            results[workers] = json.loads(completed.stdout.strip().splitlines()[-1])
            assert results[workers]["failed"] == 0, completed.stderr
            rows.append((f"{FILES} ramps (1,5,2048,2048), {workers} worker(s)", "",
                         f"{FILES / results[workers]['seconds']:.2f} files/s"))
        serial_peak = results[1]["self_rss_mb"]
        worker_peak = results[2]["child_rss_mb"]
        rows.append(("peak RSS, serial run", "", f"{serial_peak:.0f} MB"))
        rows.append(("peak RSS of one pool worker", "< 1.2x serial",
                     f"{worker_peak:.0f} MB ({worker_peak / serial_peak:.2f}x)"))
        started = time.perf_counter()
        subprocess.run(["cp", "-r", str(inputs), str(root / "copy")], check=True)
        rows.append(("cp of the 40 inputs, for scale", "",
                     f"{FILES / (time.perf_counter() - started):.2f} files/s"))
    report(rows)


if __name__ == "__main__":
    main()
