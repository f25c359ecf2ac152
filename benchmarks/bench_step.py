"""Benchmark the DQ step on one full-frame JWST-layout ramp (issue 15), beside cp and JWST.

The ramp is (1, 10, 4096, 4096) float32 (671 MB) without DQ arrays, in the page cache.
Figures, each the median of fresh processes (start-up included, `timing`):

- ``dqinit run --override-dq`` and ``cp`` of the same file in turn: seconds and the
  median ratio; goal at most 3x cp. With the reference found by a CRDS lookup: 4x cp.
- the same with a crowded reference (DO_NOT_USE on 0.5 % of the pixels, at random), for
  which GROUPDQ cannot stay a file hole: the bytes to write are then 903 MB, not 735 MB;
- peak RSS (goal under 300 MB) and its growth from 2 to 20 groups (flat);
- JWST's ``DQInitStep.call(path, override_mask=ref)`` on the same data, when $JWST_PYTHON
  names a Python with the jwst package: goal at least 4x slower than ours;
- ``--in-place`` on ramps that have both DQ arrays: the step's own seconds (reference
  read included, start-up not; goal under 0.2 s) and the whole command.

Needs about 4 GB in /tmp. Run by hand (``make bench``), never by the test suite.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from report import report
from timing import (
    BIN,
    jwst_python,
    jwst_runs,
    load,
    median,
    paired_with_cp,
    repeated,
    run,
    versus_cp,
)

REPEATS = 5
IN_PLACE_STEP = """
import sys
from dqinit.step import DQInitStep
print(DQInitStep(override_dq=sys.argv[2]).run(sys.argv[1], in_place=True).seconds)
"""


def references(root: Path) -> dict[str, Path]:
    """A sparse reference (two DO_NOT_USE pixels) and a crowded one (0.5 % of pixels)."""
    from dqref import DQModel

    sparse = DQModel.blank("IRIS", "IRIS1", useafter="2020-01-01")
    sparse.flag([[100, 200], [300, 400]], "DEAD|DO_NOT_USE")
    sparse.write(root / "sparse_ref.fits")
    rng = np.random.default_rng(5)
    crowded = DQModel.blank("IRIS", "IRIS1", useafter="2020-01-01")
    crowded.flag(rng.integers(0, 4096, size=(84_000, 2)), "DEAD|DO_NOT_USE")
    crowded.flag(rng.integers(0, 4096, size=(84_000, 2)), "HOT")
    crowded.write(root / "crowded_ref.fits")
    return {"sparse": root / "sparse_ref.fits", "crowded": root / "crowded_ref.fits"}


def references_and_cache(root: Path):
    """`references` and a cache under ``root`` with the sparse one registered."""
    from dqref.cache.local_cache import LocalCache

    refs = references(root)
    cache = LocalCache(root / "cache")
    cache.init()
    cache.add(refs["sparse"])
    return refs, cache


def in_place_rows(ramp: Path, reference: Path, root: Path, label: str) -> list[tuple]:
    """--in-place on a copy that has both DQ arrays (zeros): the step and the command."""
    target = root / f"in_place_{label}.fits"

    def fresh_copy() -> None:
        shutil.copyfile(ramp, target)

    steps = []
    for _ in range(REPEATS):
        fresh_copy()
        done = run([BIN / "python", "-c", IN_PLACE_STEP, target, reference])
        steps.append(float(done.stdout.split()[-1]))
    whole = repeated([BIN / "dqinit", "run", target, "--override-dq", reference,
                      "--in-place", "-j", "1"], REPEATS, before=fresh_copy)
    target.unlink()
    step = median(steps)
    return [(f"--in-place, {label} reference, the step (API, start-up excluded)", "< 0.2 s",
             f"{step:.3f} s {'met' if step < 0.2 else 'NOT met'}"),
            (f"--in-place, {label} reference, whole command", "",
             f"{median(r.seconds for r in whole):.3f} s")]


def main() -> None:
    from dqinit.simulate import ramp_header, write_raw_ramp

    rows = [("machine at start", "", load())]
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="bench_step_") as folder:
        root = Path(folder)
        refs, cache = references_and_cache(root)
        ramp = write_raw_ramp(root / "big_uncal.fits", ramp_header(), nints=1, ngroups=10)
        output = root / "big_dqinit.fits"
        size = ramp.stat().st_size / 1e6
        for label, reference in refs.items():
            pairs = paired_with_cp([BIN / "dqinit", "run", ramp, "--override-dq", reference,
                                    "-o", output, "-j", "1"], ramp, [output], REPEATS)
            if label == "sparse":
                rows.append((f"cp of the {size:.0f} MB ramp (median of {REPEATS})", "",
                             f"{pairs.cp_seconds:.3f} s"))
                ours = pairs
            rows.append((f"dqinit run --override-dq, {label} reference", "<= 3x cp",
                         versus_cp(pairs, 3)))
            rows.append((f"dqinit run --override-dq, {label} reference, peak RSS",
                         "< 300 MB", f"{pairs.peak_mb:.0f} MB"))
        floor = median(r.seconds for r in repeated(
            [BIN / "python", "-c", "import numpy, astropy.io.fits"], REPEATS))
        rows.append(("start-up floor: python -c 'import numpy, astropy.io.fits'", "",
                     f"{floor:.3f} s = {floor / ours.cp_seconds:.2f}x cp"))
        lookup = paired_with_cp([BIN / "dqinit", "run", ramp, "--crds-path", cache.root,
                                 "-o", output, "-j", "1"], ramp, [output], REPEATS)
        rows.append(("dqinit run, reference by CRDS lookup", "<= 4x cp",
                     versus_cp(lookup, 4)))
        for groups in (2, 20):
            small = write_raw_ramp(root / f"g{groups}_uncal.fits", ramp_header(),
                                   ngroups=groups, zeros=True)
            peak = max(r.peak_mb for r in repeated(
                [BIN / "dqinit", "run", small, "--override-dq", refs["sparse"], "-o",
                 root / "g_out.fits", "-j", "1"], 3,
                before=lambda: (root / "g_out.fits").unlink(missing_ok=True)))
            rows.append((f"dqinit run, peak RSS with {groups} groups", "flat",
                         f"{peak:.0f} MB"))
            small.unlink()
        (root / "g_out.fits").unlink(missing_ok=True)
        if jwst_python():
            jwst = jwst_runs(ramp, refs["sparse"], root, repeats=3)
            seconds = median(r.seconds for r in jwst)
            peak = max(r.peak_mb for r in jwst)
            rows.append(("JWST DQInitStep.call(override_mask=), same ramp (median of 3)",
                         ">= 4x ours", f"{seconds:.2f} s = {seconds / ours.seconds:.1f}x ours "
                         f"= {seconds / ours.cp_seconds:.1f}x cp "
                         f"{'met' if seconds >= 4 * ours.seconds else 'NOT met'}"))
            rows.append(("JWST DQInitStep.call, peak RSS", "",
                         f"{peak:.0f} MB = {peak / ours.peak_mb:.1f}x ours"))
        else:
            rows.append(("JWST DQInitStep.call", ">= 4x ours",
                         "JWST not available (set JWST_PYTHON)"))
        with_dq = write_raw_ramp(root / "with_dq_uncal.fits", ramp_header(), ngroups=10,
                                 with_dq=True)
        ramp.unlink()
        for label, reference in refs.items():
            rows += in_place_rows(with_dq, reference, root, label)
    rows.append(("machine at end", "", load()))
    report(rows)


if __name__ == "__main__":
    main()
