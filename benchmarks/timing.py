"""Whole-command timings shared by the benchmarks: medians, pairs with ``cp``, peak memory.

Every figure is the median of at least 3 runs of a fresh process (start-up and imports
included). A command compared with ``cp`` runs in turn with it (ours, cp, ours, cp, ...),
each after ``sync`` with its output removed first, and the ratio is taken pair by pair, so
a machine whose speed drifts moves both alike.

Commands run with Python's bytecode cache on (``PYTHONPYCACHEPREFIX`` in the benchmark's
folder, ``PYTHONDONTWRITEBYTECODE`` dropped), as after ``pip install``: an environment
that forbids bytecode would time the compilation of our modules on every start.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
_PYCACHE = Path(tempfile.gettempdir()) / "ligeriri-dq-bench-pycache"


def environment(**extra: str) -> dict[str, str]:
    """The environment of timed commands (bytecode cache on; ``extra`` added)."""
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE)
    env.update(extra)
    return env


@dataclass(frozen=True)
class Run:
    """One finished command: wall seconds, peak resident memory (MB), what it printed."""

    seconds: float
    peak_mb: float
    stdout: str = ""


def run(command: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a command (under ``/usr/bin/time -v`` when present); fail if it fails."""
    timer = ["/usr/bin/time", "-v"] if os.path.exists("/usr/bin/time") else []
    started = time.perf_counter()
    done = subprocess.run([*timer, *map(str, command)], capture_output=True, text=True,
                          env=env or environment())
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return Run(seconds, int(peak.group(1)) / 1024 if peak else float("nan"), done.stdout)


def repeated(command: Sequence[str], repeats: int = 5, before: Callable[[], None] = lambda: None,
             env: dict[str, str] | None = None, warmup: bool = True) -> list[Run]:
    """Run a command ``repeats`` times (after one uncounted warm-up), ``before`` each."""
    if warmup:
        before()
        run(command, env)
    runs = []
    for _ in range(repeats):
        before()
        os.sync()
        runs.append(run(command, env))
    return runs


@dataclass(frozen=True)
class Pairs:
    """Ours and cp, run in turn: each one's median and the median of the pair ratios."""

    ours: list[Run]
    cp: list[Run]

    @property
    def seconds(self) -> float:
        return median(r.seconds for r in self.ours)

    @property
    def cp_seconds(self) -> float:
        return median(r.seconds for r in self.cp)

    @property
    def ratio(self) -> float:
        """Median over pairs of ours / cp."""
        return median(a.seconds / b.seconds for a, b in zip(self.ours, self.cp, strict=True))

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.ours)


def paired_with_cp(command: Sequence[str], source: Path, outputs: Sequence[Path],
                   repeats: int = 5, env: dict[str, str] | None = None) -> Pairs:
    """Time ``command`` and ``cp source`` in turn; every output is removed before a run."""
    copy = source.with_name(f"cp_of_{source.name}")

    def clean() -> None:
        for path in (*outputs, copy):
            Path(path).unlink(missing_ok=True)

    ours, cps = [], []
    clean()
    run(command, env)  # warm-up: page cache, bytecode
    for _ in range(repeats):
        clean()
        os.sync()
        cps.append(run(["cp", source, copy]))
        clean()
        os.sync()
        ours.append(run(command, env))
    clean()
    return Pairs(ours, cps)


def versus_cp(pair: Pairs, most: float) -> str:
    """``"1.234 s = 5.6x cp met"``: a paired command's median beside a goal of ``most`` x cp."""
    verdict = "met" if pair.ratio <= most else "NOT met"
    return f"{pair.seconds:.3f} s = {pair.ratio:.2f}x cp {verdict}"


def median(values) -> float:
    return statistics.median(list(values))


def load() -> str:
    """The 1-minute load average and the number of cores, for the report."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} cores"


# -- JWST's own step, in the Python named by $JWST_PYTHON -----------------------------------
JWST_CALL = """
import sys, warnings
warnings.simplefilter("ignore")
from astropy.io import fits
with fits.open(sys.argv[1], mode="update") as hdulist:   # JWST needs a JWST instrument
    hdulist[0].header.update(INSTRUME="NIRCAM", DETECTOR="NRCA1", TELESCOP="JWST")
from jwst.dq_init import DQInitStep
from stdatamodels.jwst import datamodels
# Opened here, not passed as a path: jwst >= 3.0 reads a path's CRDS parameters from its
# ASDF extension, which a ramp written by astropy alone does not have.
with datamodels.RampModel(sys.argv[1]) as ramp:
    DQInitStep.call(ramp, override_mask=sys.argv[2]).save(sys.argv[3])
"""


def jwst_python() -> str | None:
    """The Python with the JWST pipeline named by $JWST_PYTHON, or None."""
    named = os.environ.get("JWST_PYTHON")
    return named if named and os.access(named, os.X_OK) else None


def jwst_environment(folder: Path) -> dict[str, str]:
    """An offline CRDS for JWST's step: no server, no parameter references, a context name.

    ``DQInitStep.call`` asks CRDS for its parameters and records the context used; with an
    override mask it needs no reference from CRDS.
    """
    config = folder / "jwst_crds" / "config" / "jwst"
    config.mkdir(parents=True, exist_ok=True)
    (config / "server_config").write_text(repr({
        "observatory": "jwst", "operational_context": "jwst_0000.pmap",
        "latest_context": "jwst_0000.pmap", "edit_context": "jwst_0000.pmap",
        "bad_files": "", "bad_files_list": [], "force_remote_mode": False,
        "connected": False, "mappings": [], "last_synced": "2026-01-01T00:00:00",
        "status": "local", "crds_version": {"str": "12.0.0"}}) + "\n")
    return environment(CRDS_PATH=str(folder / "jwst_crds"), CRDS_MODE="local",
                       CRDS_SERVER_URL="https://localhost:1",
                       STPIPE_DISABLE_CRDS_STEPPARS="true")


def jwst_runs(ramp: Path, reference: Path, folder: Path, repeats: int = 3) -> list[Run]:
    """Time JWST's DQInitStep.call on a copy of ``ramp`` (the copy is not timed)."""
    python = jwst_python()
    work, output = folder / "jwst_uncal.fits", folder / "jwst_dqinitstep.fits"
    env = jwst_environment(folder)
    runs = []
    for _ in range(repeats):
        shutil.copyfile(ramp, work)
        output.unlink(missing_ok=True)
        os.sync()
        runs.append(run([python, "-c", JWST_CALL, work, reference, output], env))
    work.unlink(missing_ok=True)
    output.unlink(missing_ok=True)
    return runs
