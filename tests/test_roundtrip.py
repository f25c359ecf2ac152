"""Round-trip proof: the DQ step is run on a synthetic ramp of the reference's geometry."""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from typer.testing import CliRunner

from dqinit.roundtrip import roundtrip_findings
from dqref import DQModel, flags
from dqref.cli import app
from dqref.model import Subarray


def subarray_reference(tmp_path, name="ref.fits"):
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IRIS1",
                    useafter="2025-01-01")
    model.meta.subarray = Subarray("SUB64", xstart=101, ystart=201, xsize=64, ysize=64)
    model.flag([[3, 4]], "DEAD|DO_NOT_USE")
    model.flag([[5, 6]], "HOT")
    path = tmp_path / name
    model.write(path)
    return DQModel.read(path), path


def test_every_flag_of_a_sound_reference_arrives(tmp_path):
    model, path = subarray_reference(tmp_path)
    assert roundtrip_findings(model, path) == []


def test_a_reference_the_step_cannot_use_is_reported(tmp_path):
    model, path = subarray_reference(tmp_path)
    with fits.open(path, mode="update") as hdulist:  # a DQ_DEF name the standard lacks
        hdulist["DQ_DEF"].data["NAME"][5] = "MYSTERY"
    broken = DQModel.read(path)
    findings = roundtrip_findings(broken, path)
    assert [f.rule for f in findings] == ["roundtrip"]
    assert findings[0].is_error
    assert "MYSTERY" in findings[0].message


def test_translated_bits_arrive_under_their_standard_values(tmp_path):
    model, path = subarray_reference(tmp_path)
    table = flags.dq_def_rows()
    dead, do_not_use = table[10].copy(), table[0].copy()
    table[1] = (1, 2, dead["NAME"], dead["DESCRIPTION"])  # DEAD moved to bit 1
    table[10] = (10, 1024, b"SATURATED", b"moved")
    with fits.open(path) as hdulist:
        hdulist["DQ"].data[:] = 0
        hdulist["DQ"].data[3, 4] = 2 | int(do_not_use["VALUE"])
        hdulist["DQ_DEF"] = fits.BinTableHDU(table, name="DQ_DEF")
        hdulist.writeto(tmp_path / "moved.fits", checksum=True)
    moved = DQModel.read(tmp_path / "moved.fits")
    assert roundtrip_findings(moved, tmp_path / "moved.fits") == []


def test_cli_validate_roundtrip_reports_valid(tmp_path):
    _, path = subarray_reference(tmp_path)
    result = CliRunner().invoke(app, ["validate", "--roundtrip", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: valid" in result.output
