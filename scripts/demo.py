"""The main job, end to end, on an embedded default (run by ``make demo``).

Everything happens under ``demo/`` in the project (nothing in your home directory, no CRDS
server): simulate flats and darks with planted defects, derive a DQ reference for IRIS1
from them (plus a manual flag list), validate it, register it in a fresh local CRDS cache,
look it up, simulate a small raw subarray ramp, run the DQ initialization step on it, and
print the histogram of the output PIXELDQ. Each stage runs
the real command-line tool and shows the command, so you can type the same yourself.
Running it twice gives the same result: ``demo/`` is rebuilt each time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
BIN = Path(sys.executable).parent
MANUAL_FLAGS = """\
# x        y          flag                (jwst_reffiles format, 0-indexed, a:b inclusive)
1200:1210  2200:2202  LOW_QE              # a scratch seen by eye on the detector
1130       2150       TELEGRAPH
"""
# Planted defects (y, x), inside the subarray the demo ramp will cover.
DEAD_PIXELS = [(2100, 1100), (2101, 1180)]
HOT_PIXELS = [(2110, 1105), (2110, 1106), (2110, 1107)]
WARM_PIXELS = [(2150, 1131)]


def simulate_slopes() -> tuple[list[str], list[str]]:
    """Write 2 flats and 2 darks (4096 x 4096 count rates) with the planted defects."""
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(7)
    header = fits.Header({"INSTRUME": "IRIS", "DETECTOR": "IRIS1"})
    names = {"flat": [], "dark": []}
    for index in range(2):
        flat = rng.normal(1000.0, 10.0, (4096, 4096)).astype(np.float32)
        for y, x in DEAD_PIXELS:
            flat[y, x] = 0.0
        dark = rng.normal(0.01, 0.005, (4096, 4096)).astype(np.float32)
        for y, x in HOT_PIXELS:
            dark[y, x] = 3.0
        for y, x in WARM_PIXELS:
            dark[y, x] = 0.4
        for kind, image in (("flat", flat), ("dark", dark)):
            name = f"{kind}{index}.fits"
            fits.HDUList([fits.PrimaryHDU(header=header),
                          fits.ImageHDU(image, name="SCI")]).writeto(DEMO / name)
            names[kind].append(name)
    return names["flat"], names["dark"]


def stage(title: str, *command: str) -> str:
    """Run one CLI command, show it and its output, stop on failure."""
    shown = " ".join(c if " " not in c else repr(c) for c in command)
    print(f"\n== {title}\n$ {shown}", flush=True)
    started = time.perf_counter()
    completed = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=DEMO,
                               capture_output=True, text=True)
    output = (completed.stdout + completed.stderr).rstrip()
    if output:
        print(output)
    print(f"   ({time.perf_counter() - started:.1f} s)")
    if completed.returncode != 0:
        sys.exit(f"demo: stage '{title}' failed with exit status {completed.returncode}")
    return completed.stdout


def main() -> None:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    (DEMO / "manual_flags.txt").write_text(MANUAL_FLAGS)
    started = time.perf_counter()
    print("\n== 0. Simulate 2 flats and 2 darks (4096 x 4096 slopes) with planted defects",
          flush=True)
    flats, darks = simulate_slopes()
    print(f"   wrote {', '.join(flats + darks)}")
    stage("1. Derive a DQ reference for IRIS1 from them, plus a manual flag list",
          "dqref", "derive", "iris1_mask.fits", "--instrument", "IRIS", "--detector", "IRIS1",
          *[a for f in flats for a in ("--flats", f)], *[a for d in darks for a in ("--darks", d)],
          "--flags", "manual_flags.txt", "--useafter", "2025-01-01T00:00:00",
          "--pedigree", "GROUND", "--description", "IRIS1 demo bad pixel mask",
          "--author", "dqref demo")
    stage("2. Validate it (structure and meaning; --roundtrip runs the DQ step on it)",
          "dqref", "validate", "--roundtrip", "iris1_mask.fits")
    stage("3. Its histogram (each bit counted separately)", "dqref", "histogram",
          "iris1_mask.fits")
    stage("4. Initialise a local CRDS cache (no server)", "dqref", "cache", "init",
          "--path", "crds_cache")
    stage("5. Register the reference: new rmap/imap/pmap, new current context",
          "dqref", "cache", "add", "iris1_mask.fits", "--path", "crds_cache")
    stage("6. The rules CRDS now applies", "dqref", "cache", "list", "--path", "crds_cache")
    print("\n== 7. Simulate a small raw ramp: IRIS1 subarray SUB256 at (1001, 2001), 3 groups",
          flush=True)
    subprocess.run([sys.executable, "-c", (
        "from dqinit.simulate import ramp_header, write_raw_ramp; "
        "write_raw_ramp('iris1_sub256_uncal.fits', ramp_header('IRIS', 'IRIS1', "
        "date='2026-01-15', time='03:00:00', subarray=('SUB256', 1001, 2001, 256, 256)), "
        "nints=1, ngroups=3)")], cwd=DEMO, check=True)
    print("   wrote iris1_sub256_uncal.fits")
    stage("8. Which reference does CRDS select for it?", "dqref", "cache", "bestref",
          "iris1_sub256_uncal.fits", "--path", "crds_cache")
    stage("9. Run the DQ initialization step", "dqinit", "run", "iris1_sub256_uncal.fits",
          "--crds-path", "crds_cache")
    print("\n== 10. Histogram of the output PIXELDQ (flags that landed in the subarray)",
          flush=True)
    subprocess.run([sys.executable, "-c", (
        "from astropy.io import fits; from dqref.histogram import flag_histogram; "
        "h = fits.open('iris1_sub256_dqinit.fits'); "
        "print('S_DQINIT =', h[0].header['S_DQINIT'], ' R_DQ =', h[0].header['R_DQ'], "
        "' CRDS_CTX =', h[0].header['CRDS_CTX']); "
        "print(flag_histogram(h['PIXELDQ'].data).format_table()); "
        "import numpy as np; g = h['GROUPDQ'].data; "
        "print('GROUPDQ pixels with DO_NOT_USE in every group:', "
        "int(np.all(g & 1, axis=(0, 1)).sum()))")], cwd=DEMO, check=True)
    print(f"\nDemo finished in {time.perf_counter() - started:.1f} s; files are in {DEMO}")


if __name__ == "__main__":
    main()
