"""Benchmark the DQ step (issue 4) on a (1, 10, 4096, 4096) float32 ramp without DQ arrays.

Figures: wall time and peak RSS of ``dqinit run`` (a fresh process, imports included)
against ``cp`` of the same file; ``--in-place`` on a file that already has both DQ arrays;
peak RSS for 2 and 20 groups (it must not grow with nints x ngroups); and, when a Python
with the JWST pipeline is named by $JWST_PYTHON, JWST's dq_init on the same data.
Goals: within 2x of cp, peak RSS < 300 MB, in-place < 0.5 s. Needs ~3 GB in /tmp.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import report

from dqinit.simulate import ramp_header, write_raw_ramp
from dqref import DQModel
from dqref.cache.local_cache import LocalCache

JWST_RUN = """
import sys, warnings
warnings.simplefilter("ignore")
from astropy.io import fits
from stdatamodels.jwst import datamodels
from jwst.dq_init.dq_initialization import do_dqinit
with fits.open(sys.argv[1], mode="update") as hdulist:   # JWST needs a JWST instrument
    hdulist[0].header.update(INSTRUME="NIRCAM", DETECTOR="NRCA1", TELESCOP="JWST")
mask = datamodels.MaskModel()
mask.dq = fits.getdata(sys.argv[2], "DQ")
mask.dq_def = fits.getdata(sys.argv[2], "DQ_DEF")
mask.meta.instrument.name, mask.meta.instrument.detector = "NIRCAM", "NRCA1"
mask.meta.subarray.name, mask.meta.subarray.xstart, mask.meta.subarray.ystart = "FULL", 1, 1
mask.meta.subarray.xsize = mask.meta.subarray.ysize = 4096
result = do_dqinit(datamodels.RampModel(sys.argv[1]), mask)
result.save(sys.argv[3])
"""


def timed(command: list[str]) -> tuple[float, float]:
    """Run a command under /usr/bin/time; return (wall seconds, peak RSS MB)."""
    started = time.perf_counter()
    completed = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True,
                               text=True, check=True)
    seconds = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", completed.stderr)
    return seconds, int(rss.group(1)) / 1024 if rss else float("nan")


def main() -> None:
    dqinit = str(Path(sys.executable).with_name("dqinit"))
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        root = Path(folder)
        cache = LocalCache(root / "cache")
        cache.init()
        reference = DQModel.blank("IRIS", "IRIS1", useafter="2020-01-01")
        reference.flag([[100, 200], [300, 400]], "DEAD|DO_NOT_USE")
        reference.write(root / "ref.fits")
        cache.add(root / "ref.fits")
        ramp = write_raw_ramp(root / "big_uncal.fits", ramp_header(), nints=1, ngroups=10)
        copies = []
        for attempt in range(3):
            started = time.perf_counter()
            shutil.copyfile(ramp, root / f"copy{attempt}.fits")
            copies.append(time.perf_counter() - started)
            (root / f"copy{attempt}.fits").unlink()
        cp = min(copies)
        runs = []
        for _attempt in range(3):
            runs.append(timed([dqinit, "run", str(ramp), "--crds-path", str(cache.root),
                               "--overwrite", "-j", "1"]))
        ours, ours_rss = min(r[0] for r in runs), max(r[1] for r in runs)
        rows.append(("cp of the 671 MB ramp (best of 3)", "", f"{cp:.2f} s"))
        rows.append(("dqinit run, new file (best of 3, imports incl.)", "< 2x cp",
                     f"{ours:.2f} s ({ours / cp:.1f}x)"))
        rows.append(("dqinit run, peak RSS", "< 300 MB", f"{ours_rss:.0f} MB"))
        output = root / "big_dqinit.fits"
        started = time.perf_counter()
        from dqinit.step import DQInitStep

        DQInitStep(crds_path=cache.root).run(output, in_place=True)
        rows.append(("--in-place on a file with both DQ arrays (API)", "< 0.5 s",
                     f"{time.perf_counter() - started:.2f} s"))
        for groups in (2, 20):
            small = write_raw_ramp(root / f"g{groups}_uncal.fits", ramp_header(), ngroups=groups)
            _, rss = timed([dqinit, "run", str(small), "--crds-path", str(cache.root), "-j", "1"])
            rows.append((f"dqinit run, peak RSS with {groups} groups", "flat", f"{rss:.0f} MB"))
            small.unlink()
            (root / f"g{groups}_dqinit.fits").unlink()
        jwst_python = os.environ.get("JWST_PYTHON")
        if jwst_python:
            jwst_input = root / "jwst_uncal.fits"
            shutil.copyfile(ramp, jwst_input)
            seconds, rss = timed([jwst_python, "-c", JWST_RUN, str(jwst_input),
                                  str(root / "ref.fits"), str(root / "jwst_out.fits")])
            rows.append(("JWST dq_init (load, do_dqinit, save)", "", f"{seconds:.2f} s "
                         f"({seconds / cp:.1f}x cp)"))
            rows.append(("JWST dq_init, peak RSS", "", f"{rss:.0f} MB"))
        else:
            rows.append(("JWST dq_init", "", "set JWST_PYTHON to compare"))
    report(rows)


if __name__ == "__main__":
    main()
