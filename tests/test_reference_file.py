"""The FITS layout of a reference, its validation rules, and the create/validate/histogram CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from support import jwst_style_mask, subarray_reference
from typer.testing import CliRunner

from dqref import DQModel, flags
from dqref.cli import app
from dqref.errors import FileExistsRefusedError, InvalidReferenceError, ReferenceFileError
from dqref.model import Subarray
from dqref.validation import validate

runner = CliRunner()


@pytest.fixture(scope="module")
def full_frame(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "iris1.fits"
    model = DQModel.blank("IRIS", "IRIS1", useafter="2025-01-01T00:00:00", pedigree="GROUND",
                          description="a test mask", author="tester")
    model.flag([[10, 20]], "DEAD|DO_NOT_USE")
    model.meta.history.append("made for a test")
    model.write(path)
    return path


def test_primary_header_dq_image_and_dq_def_follow_the_jwst_mask_layout(full_frame):
    with fits.open(full_frame) as hdulist:
        assert [h.name for h in hdulist] == ["PRIMARY", "DQ", "DQ_DEF"]
        header = hdulist[0].header
        assert (header["TELESCOP"], header["INSTRUME"], header["DETECTOR"]) == \
            ("TMT", "IRIS", "IMG1")  # the canonical name of IRIS1
        assert header["REFTYPE"] == "DQ" and header["USEAFTER"] == "2025-01-01T00:00:00"
        assert (header["PEDIGREE"], header["DESCRIP"], header["AUTHOR"]) == \
            ("GROUND", "a test mask", "tester")
        assert (header["SUBARRAY"], header["SUBSTRT1"], header["SUBSTRT2"],
                header["SUBSIZE1"], header["SUBSIZE2"]) == ("FULL", 1, 1, 4096, 4096)
        assert "made for a test" in str(header["HISTORY"])
        assert hdulist["DQ"].data.dtype == np.uint32 and hdulist["DQ"].data[10, 20] == 1025
        assert hdulist["DQ_DEF"].columns.names == ["BIT", "VALUE", "NAME", "DESCRIPTION"]
        assert all("CHECKSUM" in h.header and "DATASUM" in h.header for h in hdulist)


def test_a_modified_byte_fails_the_checksum(full_frame, tmp_path):
    corrupted = tmp_path / "corrupted.fits"
    data = bytearray(full_frame.read_bytes())
    with fits.open(full_frame) as hdulist:
        offset = hdulist.fileinfo(1)["datLoc"] + 1000
    data[offset] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    with pytest.raises(ReferenceFileError, match="checksum"):
        DQModel.read(corrupted)


def test_write_never_overwrites_and_leaves_no_temporary_file(full_frame):
    before = full_frame.read_bytes()
    model = DQModel.read(full_frame)
    with pytest.raises(FileExistsRefusedError, match="refusing to overwrite"):
        model.write(full_frame)
    assert full_frame.read_bytes() == before
    assert sorted(p.name for p in full_frame.parent.iterdir()) == [full_frame.name]


def test_an_invalid_model_is_refused_and_nothing_written(tmp_path):
    model = DQModel.blank("IRIS", "IRIS1")
    model.meta.useafter = "2020-13-01"
    with pytest.raises(InvalidReferenceError, match="USEAFTER"):
        model.write(tmp_path / "bad.fits")
    assert list(tmp_path.iterdir()) == []


def test_a_jwst_mask_reference_is_read_with_its_own_dq_def(tmp_path):
    jwst_style_mask(tmp_path / "jwst.fits", (8, 8), (2, 3), {
        "TELESCOP": "JWST", "INSTRUME": "NIRCAM", "DETECTOR": "NRCA1",
        "USEAFTER": "2022-01-01T00:00:00"})
    model = DQModel.read(tmp_path / "jwst.fits")
    assert (model.meta.name, model.meta.detector, model.meta.reftype) == \
        ("NIRCAM", "NRCA1", "MASK")
    assert flags.dq_def_mapping(model.dq_def) == {"DO_NOT_USE": 1, "DEAD": 2}
    assert model.dq[2, 3] == 3


def test_reading_a_missing_or_non_fits_file_is_a_reference_file_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ReferenceFileError, match="no such file"):
        DQModel.read(tmp_path / "missing.fits")
    with pytest.raises(ReferenceFileError, match="cannot be read as FITS"):
        DQModel.read(tmp_path / "notes.txt")


# -- structural validation rules, each broken alone -----------------------------------------
def small_model() -> DQModel:
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IRIS1")
    model.meta.subarray = Subarray("SUB64", 101, 201, 64, 64)
    return model


def rules_of(model) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in validate(model):
        if finding.is_error:
            found.setdefault(finding.rule, []).append(f"{finding.where}: {finding.message}")
    return found


def test_a_small_subarray_reference_has_no_errors():
    assert rules_of(small_model()) == {}


@pytest.mark.parametrize(("breakage", "rule", "words"), [
    (lambda m: setattr(m.meta, "detector", "IRIS9"), "known-detector", "detectors.toml"),
    (lambda m: setattr(m.meta, "useafter", "2020-13-01"), "required-metadata", "USEAFTER"),
    (lambda m: setattr(m.meta, "pedigree", "MAYBE"), "required-metadata", "PEDIGREE"),
    (lambda m: setattr(m.meta, "detector", None), "required-metadata", "DETECTOR is missing"),
    (lambda m: setattr(m.meta.subarray, "xstart", 4050), "geometry", "outside"),
    (lambda m: setattr(m.meta.subarray, "xsize", 32), "geometry", "SUBSIZE"),
    (lambda m: m.dq_def.__setitem__(10, (10, 1000, b"DEAD", b"")), "dq-def-consistent",
     "VALUE 1000 != 2**BIT"),
    (lambda m: m.dq_def.__setitem__(11, (10, 1024, b"HOT", b"")), "dq-def-consistent",
     "BIT 10 is also defined"),
])
def test_each_structural_rule_reports_its_breakage(breakage, rule, words):
    model = small_model()
    breakage(model)
    found = rules_of(model)
    assert rule in found, found
    assert any(words in line for line in found[rule]), found[rule]


def test_a_set_bit_missing_from_dq_def_is_reported_with_its_pixel():
    model = small_model()
    model.dq_def = flags.dq_def_rows()[:12]
    model.dq[5, 6] = 1 << 20
    assert rules_of(model)["bits-defined"] == [
        "pixel (y=5, x=6): bit 20 (value 1048576) is set but not defined in DQ_DEF"]


def test_a_full_frame_reference_of_the_wrong_shape_is_reported():
    model = DQModel(np.zeros((100, 100), np.uint32), name="IRIS", detector="IRIS1")
    assert any("differs from the 4096 x 4096 full frame" in line
               for line in rules_of(model)["geometry"])


# -- CLI --------------------------------------------------------------------------------
def test_cli_create_validate_histogram(tmp_path):
    (tmp_path / "flags.txt").write_text(
        "# x y flag\n20 10 DEAD|DO_NOT_USE\n0:3 : REFERENCE_PIXEL\n")
    out = tmp_path / "ref.fits"
    created = runner.invoke(app, ["create", str(out), "--instrument", "IRIS", "--detector",
                                  "IRIS1", "--flags", str(tmp_path / "flags.txt")])
    assert created.exit_code == 0, created.output
    assert DQModel.read(out).dq[10, 20] == 1025
    valid = runner.invoke(app, ["validate", str(out)])
    assert valid.exit_code == 0 and f"{out}: valid" in valid.output
    counts = json.loads(runner.invoke(app, ["histogram", str(out), "--json"]).output)
    assert counts["total"] == 4096 * 4096
    assert counts["flags"]["DEAD"] == 1 and counts["flags"]["REFERENCE_PIXEL"] == 4 * 4096
    assert counts["good"] == 4096 * 4096 - 1 - 4 * 4096
    table = runner.invoke(app, ["histogram", str(out)])
    assert "REFERENCE_PIXEL" in table.output and "DEAD" in table.output


def test_cli_validate_exits_2_on_a_missing_or_non_fits_file(tmp_path):
    # exit 2: an input that cannot be read (docs/conventions.md), not an invalid reference
    good = subarray_reference(tmp_path / "good.fits")
    (tmp_path / "text.fits").write_text("not fits")
    result = runner.invoke(app, ["validate", str(good), str(tmp_path / "missing.fits"),
                                 str(tmp_path / "text.fits")])
    assert result.exit_code == 2
    assert f"{tmp_path / 'missing.fits'}: error: no such file" in result.stderr
    assert f"{tmp_path / 'text.fits'}: error: cannot be read as FITS" in result.stderr


def test_cli_user_errors_are_one_line_and_exit_2(tmp_path):
    existing = subarray_reference(tmp_path / "ref.fits")
    over = runner.invoke(app, ["create", str(existing), "-i", "IRIS", "-d", "IRIS1"])
    assert over.exit_code == 2
    assert over.output.strip().startswith("dqref: error:") and "refusing" in over.output
    assert "Traceback" not in over.output
    unknown = runner.invoke(app, ["create", str(tmp_path / "x.fits"), "-i", "IRIS", "-d", "X9"])
    assert unknown.exit_code == 2 and "detectors.toml" in unknown.output
