"""Benchmark ``dqref derive`` (issue 5): 10 flats + 10 darks of 4096 x 4096 float32.

Goal: peak RSS under 2 GB (the inputs alone are 1.3 GB). Runs the CLI in a child process
and reads its peak RSS.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from report import report

COUNT = 10


def main() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        root = Path(folder)
        arguments = []
        for kind, level, noise in (("flat", 1000.0, 10.0), ("dark", 0.01, 0.005)):
            for index in range(COUNT):
                path = root / f"{kind}{index}.fits"
                image = rng.normal(level, noise, (4096, 4096)).astype(np.float32)
                fits.HDUList([fits.PrimaryHDU(header=fits.Header(
                    {"INSTRUME": "IRIS", "DETECTOR": "IRIS1"})),
                    fits.ImageHDU(image, name="SCI")]).writeto(path)
                arguments += [f"--{kind}s", str(path)]
        dqref = Path(sys.executable).with_name("dqref")
        started = time.perf_counter()
        subprocess.run([str(dqref), "derive", str(root / "out.fits"), "-i", "IRIS", "-d",
                        "IRIS1", *arguments], check=True, capture_output=True)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report([(f"derive, {COUNT} flats + {COUNT} darks 4096x4096, wall", "", f"{seconds:.1f} s"),
            ("derive, peak RSS", "< 2048 MB", f"{peak:.0f} MB")])


if __name__ == "__main__":
    main()
