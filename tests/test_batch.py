"""Many ramps: serial, process pool and Dask LocalCluster give the same, byte-identical results."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from astropy.io import fits
from support import cache_with, full_frame_reference, sub_ramp
from typer.testing import CliRunner

from dqinit.batch import BatchError, RunSettings, expand_inputs, run_many
from dqinit.cli import app


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    cache = cache_with(folder / "cache",
                       full_frame_reference(folder / "a.fits", "IRIS1", flags={
                           "DEAD|DO_NOT_USE": [(100, 200)]}),
                       full_frame_reference(folder / "b.fits", "IRIS2", flags={
                           "HOT": [(95, 195)]}))
    inputs = folder / "inputs"
    inputs.mkdir()
    paths = []
    for index in range(10):
        detector = "IRIS1" if index % 2 else "IRIS2"
        paths.append(sub_ramp(inputs / f"r{index:02d}_uncal.fits", detector=detector,
                              origin_xy=(190 - index, 90 + index), size=32 + 8 * (index % 3)))
    paths.append(sub_ramp(inputs / "r10_uncal.fits", detector="IRIS3"))   # no rule: SKIPPED
    (inputs / "r11_uncal.fits").write_bytes(b"not a FITS file" * 100)     # corrupt: FAILED
    paths.append(inputs / "r11_uncal.fits")
    return cache, paths


def run_mode(workload, out, **mode):
    cache, paths = workload
    out.mkdir()
    records = run_many(paths, RunSettings(crds_path=str(cache.root), output_dir=str(out)),
                       **mode)
    return records


def comparable(records):
    return [{k: v for k, v in r.items() if k not in ("seconds", "output")} for r in records]


def data_of(path):
    with fits.open(path) as hdulist:
        header = hdulist[0].header
        return ([header[k] for k in ("S_DQINIT", "R_DQ", "CRDS_CTX")],
                [hdulist[n].data.tobytes() for n in ("SCI", "PIXELDQ", "GROUPDQ")
                 if n in hdulist])


def test_serial_pool_and_local_cluster_agree_byte_for_byte(workload, tmp_path):
    pytest.importorskip("distributed")
    serial = run_mode(workload, tmp_path / "serial", workers=1)
    pool = run_mode(workload, tmp_path / "pool", workers=2)
    dask = run_mode(workload, tmp_path / "dask", workers=2, scheduler="local")
    assert comparable(serial) == comparable(pool) == comparable(dask)
    statuses = [r["status"] for r in serial]
    assert statuses == ["COMPLETE"] * 10 + ["SKIPPED", "FAILED"]
    assert "cannot be read as FITS" in serial[-1]["message"]
    for record in serial[:11]:
        name = record["output"].rsplit("/", 1)[-1]
        reference = data_of(tmp_path / "serial" / name)
        assert data_of(tmp_path / "pool" / name) == reference
        assert data_of(tmp_path / "dask" / name) == reference
    for folder in ("serial", "pool", "dask"):
        names = sorted(p.name for p in (tmp_path / folder).iterdir())
        assert "r11_dqinit.fits" not in names and not [n for n in names if n.startswith(".")]
        assert len(names) == 11


def test_flags_land_per_detector_and_subarray(workload, tmp_path):
    records = run_mode(workload, tmp_path / "out", workers=1)
    with fits.open(records[1]["output"]) as hdulist:     # IRIS1, 0-indexed origin (90, 188)
        assert [tuple(p) for p in np.argwhere(hdulist["PIXELDQ"].data)] == [(10, 12)]
    with fits.open(records[0]["output"]) as hdulist:     # IRIS2, 0-indexed origin (89, 189)
        assert hdulist["PIXELDQ"].data[6, 6] == 2048
    assert records[0]["reference"] == "crds://iris_dq_0002.fits"
    assert records[1]["reference"] == "crds://iris_dq_0001.fits"


def test_cli_runs_a_list_in_parallel_and_writes_a_report(workload, tmp_path):
    cache, paths = workload
    listing = tmp_path / "inputs.txt"
    listing.write_text("# tonight\n" + "\n".join(str(p) for p in paths[:4]) + "\n\n")
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(app, ["run", "--from-list", str(listing), "--crds-path",
                                      str(cache.root), "--output-dir", str(out), "-j", "2",
                                      "--report", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    assert re.search(r"^COMPLETE\s+4\s", result.output, re.MULTILINE)
    assert re.search(r"^total\s+4\s", result.output, re.MULTILINE)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"] == {"COMPLETE": 4} and len(report["files"]) == 4


def test_cli_exits_1_when_a_file_failed(workload, tmp_path):
    cache, paths = workload
    result = CliRunner().invoke(app, ["run", str(paths[0]), str(paths[-1]), "--crds-path",
                                      str(cache.root), "--output-dir", str(tmp_path), "-j", "1"])
    assert result.exit_code == 1
    assert "r11_uncal.fits: FAILED" in result.output
    assert re.search(r"^FAILED\s+1\s", result.output, re.MULTILINE)


def test_inputs_expand_from_globs_and_lists(tmp_path):
    for name in ("b.fits", "a.fits", "c.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    listing = tmp_path / "sub" / "list.txt"
    listing.write_text("# comment\n../a.fits\n\n/abs/z.fits  # trailing comment\n")
    found = expand_inputs([str(tmp_path / "*.fits"), str(tmp_path / "a.fits")], listing)
    assert found == [tmp_path / "a.fits", tmp_path / "b.fits", tmp_path / "sub" / "../a.fits",
                     tmp_path.joinpath("/abs/z.fits")]
    with pytest.raises(BatchError, match="no input files"):
        expand_inputs([], None)
    with pytest.raises(BatchError, match="cannot read the input list"):
        expand_inputs([], tmp_path / "missing.txt")
