"""Benchmark the DQ step on a full-frame Liger/IRIS level-0 ramp (issues 11, 15), beside cp.

The ramp is what that pipeline's RampModel writes: DATA and DQ uint16 of shape
(4096, 4096, 10 groups, 2 reads) (671 MB each, 1.3 GB file), TIMES and the ASDF tree.
The same goals as for the JWST layout (bench_step.py): ``dqinit run --override-dq`` at
most 3x ``cp`` of the same file, with a CRDS lookup at most 4x, peak RSS under 300 MB and
flat in the number of groups, ``--in-place`` on a ramp with DQ and PIXELDQ under 0.2 s
plus start-up; with a sparse reference and a crowded one (DO_NOT_USE on 0.5 % of the
pixels, which touches about 40 % of DQ's pages). JWST's step reads no level-0 file: its
figure is in bench_step.py, on the JWST ramp of the same pixels. Needs ~6 GB in /tmp.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench_step import IN_PLACE_STEP, REPEATS, references_and_cache
from report import report
from timing import BIN, load, median, paired_with_cp, repeated, run, versus_cp


def main() -> None:
    from dqinit.simulate import level0_header, write_level0_ramp

    rows = [("machine at start", "", load())]
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="bench_level0_") as folder:
        root = Path(folder)
        refs, cache = references_and_cache(root)
        ramp = write_level0_ramp(root / "big_lvl0.fits", level0_header(), ngroups=10,
                                 nreads=2)
        output = root / "big_lvl0_dqinit.fits"
        size = ramp.stat().st_size / 1e9
        for label, reference in refs.items():
            pairs = paired_with_cp([BIN / "dqinit", "run", ramp, "--override-dq", reference,
                                    "-o", output, "-j", "1"], ramp, [output], REPEATS)
            if label == "sparse":
                rows.append((f"cp of the {size:.2f} GB level-0 ramp (median of {REPEATS})",
                             "", f"{pairs.cp_seconds:.3f} s"))
            rows.append((f"level 0: dqinit run --override-dq, {label} reference", "<= 3x cp",
                         versus_cp(pairs, 3)))
            rows.append((f"level 0: peak RSS, {label} reference", "< 300 MB",
                         f"{pairs.peak_mb:.0f} MB"))
        lookup = paired_with_cp([BIN / "dqinit", "run", ramp, "--crds-path", cache.root,
                                 "-o", output, "-j", "1"], ramp, [output], REPEATS)
        rows.append(("level 0: dqinit run, reference by CRDS lookup", "<= 4x cp",
                     versus_cp(lookup, 4)))
        # A ramp that has DQ and PIXELDQ: the output of a run with a reference of no flags.
        from dqref import DQModel

        DQModel.blank("IRIS", "IMG1", useafter="2020-01-01").write(root / "empty_ref.fits")
        seed, target = root / "seed_lvl0.fits", root / "in_place_lvl0.fits"
        run([BIN / "dqinit", "run", ramp, "--override-dq", root / "empty_ref.fits", "-o",
             seed, "-j", "1"])
        ramp.unlink()
        for label, reference in refs.items():
            def fresh_copy() -> None:
                shutil.copyfile(seed, target)

            steps = []
            for _ in range(REPEATS):
                fresh_copy()
                steps.append(float(run([BIN / "python", "-c", IN_PLACE_STEP, target,
                                        reference]).stdout.split()[-1]))
            whole = repeated([BIN / "dqinit", "run", target, "--override-dq", reference,
                              "--in-place", "-j", "1"], REPEATS, before=fresh_copy)
            step = median(steps)
            rows.append((f"level 0: --in-place, {label} reference, the step (API)",
                         "< 0.2 s", f"{step:.3f} s {'met' if step < 0.2 else 'NOT met'}"))
            rows.append((f"level 0: --in-place, {label} reference, whole command", "",
                         f"{median(r.seconds for r in whole):.3f} s"))
        target.unlink(missing_ok=True)
        seed.unlink()
        for groups in (2, 20):
            small = write_level0_ramp(root / f"g{groups}.fits", level0_header(),
                                      ngroups=groups, nreads=2, zeros=True)
            out = root / f"g{groups}_out.fits"
            peak = max(r.peak_mb for r in repeated(
                [BIN / "dqinit", "run", small, "--override-dq", refs["sparse"], "-o", out,
                 "-j", "1"], 3, before=lambda out=out: out.unlink(missing_ok=True)))
            rows.append((f"level 0: peak RSS with {groups} groups x 2 reads", "flat",
                         f"{peak:.0f} MB"))
            small.unlink()
            out.unlink(missing_ok=True)
    rows.append(("machine at end", "", load()))
    report(rows)


if __name__ == "__main__":
    main()
