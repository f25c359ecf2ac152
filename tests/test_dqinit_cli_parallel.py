"""``dqinit run`` on many files: lists, workers, the summary, the JSON report, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from astropy.io import fits
from support import cache_with, full_frame_reference, sub_ramp
from typer.testing import CliRunner

from dqinit.cli import app


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A cache with an IRIS1 reference, four IRIS1 ramps and one corrupt file."""
    folder = tmp_path_factory.mktemp("night")
    cache = cache_with(folder / "cache", full_frame_reference(folder / "a.fits", "IRIS1"))
    ramps = [sub_ramp(folder / f"r{index}_uncal.fits", origin_xy=(1 + index, 1), size=32)
             for index in range(4)]
    corrupt = folder / "r9_uncal.fits"
    corrupt.write_bytes(b"\0" * 5000)
    return cache, ramps, corrupt


def invoke(*arguments):
    return CliRunner().invoke(app, ["run", *map(str, arguments)])


def test_list_in_parallel_prints_summary_and_writes_report(night, tmp_path):
    cache, ramps, _ = night
    listing = ramps[0].parent / "tonight.txt"
    listing.write_text("# tonight\n" + "\n".join(p.name for p in ramps) + "\n\n")
    report = tmp_path / "report.json"
    result = invoke("--from-list", listing, "--crds-path", cache.root, "--output-dir",
                    tmp_path / "out", "--workers", 2, "--report", report)
    assert result.exit_code == 0, result.output
    assert result.output.count(": COMPLETE reference=crds://iris_dq_0001.fits") == 4
    assert re.search(r"^COMPLETE\s+4\s+crds://iris_dq_0001.fits\s", result.output, re.M)
    assert re.search(r"^total\s+4\s", result.output, re.M)
    assert re.search(r"^4 files \(4 COMPLETE\) in [\d.]+ s, [\d.]+ files/s$", result.output, re.M)
    written = json.loads(report.read_text())
    assert written["context"] == "ligeriri_0002.pmap"
    assert {k: written["summary"][k] for k in ("COMPLETE", "SKIPPED", "FAILED", "total")} == \
        {"COMPLETE": 4, "SKIPPED": 0, "FAILED": 0, "total": 4}
    assert [r["input"] for r in written["files"]] == [str(p) for p in ramps]
    assert set(written["files"][0]) == {"input", "output", "status", "reference", "context",
                                        "message", "seconds", "error"}


def test_a_failed_file_is_reported_and_exits_1(night, tmp_path):
    cache, ramps, corrupt = night
    result = invoke(ramps[0], corrupt, "--crds-path", cache.root, "--output-dir", tmp_path,
                    "-j", 2, "--report", tmp_path / "report.json")
    assert result.exit_code == 1
    assert f"{corrupt}: FAILED: {corrupt}: cannot be read as FITS" in result.output
    assert re.search(r"^FAILED\s+1\s+-\s", result.output, re.M)
    assert "2 files (1 COMPLETE, 1 FAILED)" in result.output
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["FAILED"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r0_dqinit.fits", "report.json"]


def test_glob_pattern_and_in_place_run_in_parallel(night, tmp_path):
    cache, ramps, _ = night
    for ramp in ramps:
        (tmp_path / ramp.name).write_bytes(ramp.read_bytes())
    result = invoke(tmp_path / "r*_uncal.fits", "--in-place", "--crds-path", cache.root,
                    "-j", 2)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in ramps]
    for ramp in ramps:
        assert fits.getval(tmp_path / ramp.name, "S_DQINIT") == "COMPLETE"


def test_one_input_prints_no_summary(night, tmp_path):
    cache, ramps, _ = night
    result = invoke(ramps[0], "--crds-path", cache.root, "-o", tmp_path / "x.fits")
    assert result.exit_code == 0
    assert result.output == (f"{ramps[0]}: COMPLETE reference=crds://iris_dq_0001.fits "
                             f"context=ligeriri_0002.pmap -> {tmp_path / 'x.fits'}\n")


def test_usage_errors_exit_2(night, tmp_path):
    cache, ramps, _ = night
    result = invoke(*ramps[:2], "-o", tmp_path / "x.fits", "--crds-path", cache.root)
    assert result.exit_code == 2 and "--output takes one input" in result.output
    result = invoke("--crds-path", cache.root)
    assert result.exit_code == 2 and "no input files" in result.output
    result = invoke("--from-list", tmp_path / "missing.txt")
    assert result.exit_code == 2 and "cannot read the input list" in result.output
    result = invoke(ramps[0], "--crds-path", tmp_path / "nocache", "--output-dir", tmp_path)
    assert result.exit_code == 2 and "is not an initialised cache" in result.output


def test_scheduler_without_dask_says_how_to_install_it(night, tmp_path):
    cache, ramps, _ = night
    script = ("import sys; sys.modules['distributed'] = None  # as if not installed\n"
              "from dqinit.cli import main; main()")
    completed = subprocess.run(
        [sys.executable, "-c", script, "run", str(ramps[0]), "--scheduler", "local",
         "--crds-path", str(cache.root), "--output-dir", str(tmp_path)],
        capture_output=True, text=True)
    assert completed.returncode == 2
    assert completed.stderr == \
        "dqinit: error: Dask is not installed: pip install 'ligeriri-dq[dask]'\n"


def test_two_small_inputs_without_workers_run_in_this_process(night, tmp_path):
    from dqinit.parallel import RunSettings, worker_step

    cache, ramps, _ = night
    worker_step(RunSettings(crds_path=str(tmp_path / "other")))  # forget earlier runs' step
    result = invoke(*ramps[:2], "--crds-path", cache.root, "--output-dir", tmp_path)
    assert result.exit_code == 0
    assert result.output.count("COMPLETE reference=crds://iris_dq_0001.fits") == 2
    # issue 14: a pool took 5.7 s for two small files; serially the reference is loaded
    # here, in this process's step
    settings = RunSettings(crds_path=cache.root).pinned()
    assert len(worker_step(settings)._masks) == 1
