"""Promise: `dqinit run` never changes its input, whatever the outcome (COMPLETE, SKIPPED,
FAILED, refused), in either ramp layout. Only ``--in-place`` rewrites the file it names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from support import cache_with, full_frame_reference, subarray_reference
from typer.testing import CliRunner

from dqinit.cli import app
from dqinit.simulate import level0_header, ramp_header, write_level0_ramp, write_raw_ramp

runner = CliRunner()


def fingerprint(path: Path) -> tuple:
    """What must not change: bytes, inode, size, modification time and mode."""
    status = path.stat()
    return (hashlib.sha256(path.read_bytes()).hexdigest(), status.st_ino, status.st_size,
            status.st_mtime_ns, status.st_mode)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    return full_frame_reference(folder / "ref.fits", detector="IMG1",
                                flags={"DEAD|DO_NOT_USE": [(100, 200)]})


def jwst_ramp(folder: Path, **subarray) -> Path:
    header = ramp_header("IRIS", "IMG1", subarray=("SUB64", 190, 90, 64, 64))
    return write_raw_ramp(folder / "jwst_uncal.fits", header, ngroups=2, **subarray)


def level0_ramp(folder: Path) -> Path:
    header = level0_header("IRIS", "IMG1", subarray=("SUB64", 190, 90, 64, 64))
    return write_level0_ramp(folder / "level0_uncal.fits", header, ngroups=2, nreads=2)


LAYOUTS = {"jwst": jwst_ramp, "level0": level0_ramp}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("outcome", ["COMPLETE", "SKIPPED", "FAILED"])
def test_dqinit_never_changes_its_input(tmp_path, reference, layout, outcome):
    ramp = LAYOUTS[layout](tmp_path)
    os.chmod(ramp, 0o444)  # as the pipeline's archive hands them out
    before = fingerprint(ramp)
    override = {"COMPLETE": str(reference), "SKIPPED": "N/A",
                # a subarray reference that does not cover the ramp's region
                "FAILED": None}[outcome] or str(subarray_reference(tmp_path / "sub.fits"))
    result = runner.invoke(app, ["run", str(ramp), "--override-dq", override,
                                 "--output-dir", str(tmp_path / "out"), "-j", "1"])
    assert result.exit_code == (1 if outcome == "FAILED" else 0), result.output
    assert f"{outcome}" in result.output
    assert fingerprint(ramp) == before


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_crds_selected_run_never_changes_its_input_or_the_cache(tmp_path, reference,
                                                                   layout):
    cache = cache_with(tmp_path / "cache", reference)
    ramp = LAYOUTS[layout](tmp_path)
    watched = [ramp, *sorted(p for p in cache.root.rglob("*") if p.is_file())]
    before = [fingerprint(path) for path in watched]
    result = runner.invoke(app, ["run", str(ramp), "--crds-path", str(cache.root),
                                 "--output-dir", str(tmp_path / "out"), "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "COMPLETE" in result.stdout
    assert [fingerprint(path) for path in watched] == before
    assert sorted(p for p in cache.root.rglob("*") if p.is_file()) == watched[1:]
