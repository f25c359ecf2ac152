"""The FITS layout of a DQ reference: keywords, extensions, checksums, safe writing, reading."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from dqref import DQModel, flags
from dqref.errors import (
    FileExistsRefusedError,
    InvalidReferenceError,
    ReferenceFileError,
)
from dqref.model import Subarray

PRIMARY_KEYWORDS = ["TELESCOP", "INSTRUME", "DETECTOR", "REFTYPE", "USEAFTER", "PEDIGREE",
                    "DESCRIP", "AUTHOR", "SUBARRAY", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1",
                    "SUBSIZE2"]


def sub64_model(**meta) -> DQModel:
    """A small valid subarray reference: IRIS1 SUB64 at SUBSTRT1=101, SUBSTRT2=201."""
    fields = {"name": "IRIS", "detector": "IRIS1", "useafter": "2020-01-01",
              "pedigree": "GROUND", "description": "A test mask", "author": "A. Tester"}
    model = DQModel(np.zeros((64, 64), np.uint32), **{**fields, **meta})
    model.meta.subarray = Subarray("SUB64", 101, 201, 64, 64)
    model.meta.history = ["first line", "second line"]
    model.flag([[1, 2], [63, 0]], "DEAD|DO_NOT_USE")
    model.flag([[5, 5]], "HOT|DO_NOT_USE")
    return model


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A SUB64 reference written to disk; returns (model, path)."""
    model = sub64_model()
    path = tmp_path_factory.mktemp("layout") / "sub64.fits"
    model.write(path)
    return model, path


def _data_offset(path, extension: int) -> int:
    with fits.open(path) as hdulist:
        return hdulist.fileinfo(extension)["datLoc"]


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# -- layout ---------------------------------------------------------------------------------
def test_primary_header_carries_every_selection_and_provenance_keyword(written):
    _, path = written
    header = fits.getheader(path, 0)
    assert [k for k in PRIMARY_KEYWORDS if k not in header] == []
    assert {k: header[k] for k in PRIMARY_KEYWORDS} == {
        "TELESCOP": "TMT", "INSTRUME": "IRIS", "DETECTOR": "IRIS1", "REFTYPE": "DQ",
        "USEAFTER": "2020-01-01T00:00:00", "PEDIGREE": "GROUND", "DESCRIP": "A test mask",
        "AUTHOR": "A. Tester", "SUBARRAY": "SUB64", "SUBSTRT1": 101, "SUBSTRT2": 201,
        "SUBSIZE1": 64, "SUBSIZE2": 64,
    }


def test_history_lines_are_history_cards(written):
    _, path = written
    assert list(fits.getheader(path, 0)["HISTORY"]) == ["first line", "second line"]


def test_liger_references_name_keck_as_the_telescope(tmp_path):
    model = DQModel.blank("LIGER", "IMG")
    model.write(tmp_path / "liger.fits")
    assert fits.getval(tmp_path / "liger.fits", "TELESCOP") == "KECK"


def test_the_dq_extension_is_a_2d_uint32_image(written):
    model, path = written
    with fits.open(path) as hdulist:
        assert [hdu.name for hdu in hdulist] == ["PRIMARY", "DQ", "DQ_DEF"]
        dq = hdulist["DQ"]
        assert isinstance(dq, fits.ImageHDU)
        assert dq.data.dtype == np.uint32 and dq.data.shape == (64, 64)
        assert np.array_equal(dq.data, model.dq)


def test_the_dq_def_extension_is_the_flag_table(written):
    _, path = written
    with fits.open(path) as hdulist:
        table = hdulist["DQ_DEF"]
        assert isinstance(table, fits.BinTableHDU)
        assert table.columns.names == ["BIT", "VALUE", "NAME", "DESCRIPTION"]
        assert list(table.data["BIT"]) == list(range(32))
        assert [int(v) for v in table.data["VALUE"]] == [2**b for b in range(32)]
        assert table.data["NAME"][10] == "DEAD"


def test_every_hdu_carries_a_checksum_and_datasum_that_astropy_accepts(written):
    _, path = written
    with fits.open(path, checksum=True) as hdulist:
        for hdu in hdulist:
            assert "CHECKSUM" in hdu.header and "DATASUM" in hdu.header
            assert hdu.verify_checksum() == 1


def test_writing_fills_defaults_in_the_file_but_not_in_the_model(tmp_path):
    model = DQModel(np.zeros((64, 64), np.uint32), name="iris", detector="iris1")
    model.meta.subarray = Subarray("SUB64", 1, 1)
    dq_before = model.dq.copy()
    model.write(tmp_path / "defaults.fits")
    header = fits.getheader(tmp_path / "defaults.fits")
    assert (header["INSTRUME"], header["DESCRIP"], header["SUBSIZE1"]) == (
        "IRIS", "Bad pixel mask for IRIS IRIS1", 64)
    assert header["AUTHOR"]
    assert (model.meta.name, model.meta.description, model.meta.author) == ("iris", None, None)
    assert model.meta.subarray == Subarray("SUB64", 1, 1)
    assert np.array_equal(model.dq, dq_before) and model.dq.dtype == np.uint32


# -- reading back ----------------------------------------------------------------------------
def test_a_written_reference_reads_back_identical(written):
    model, path = written
    back = DQModel.read(path)
    assert back.dq.dtype == np.uint32
    assert np.array_equal(back.dq, model.dq)
    assert np.array_equal(back.dq_def, model.dq_def)
    assert back.meta.subarray == Subarray("SUB64", 101, 201, 64, 64)
    assert (back.meta.name, back.meta.detector, back.meta.useafter, back.meta.pedigree,
            back.meta.description, back.meta.author, back.meta.reftype,
            back.meta.telescope) == ("IRIS", "IRIS1", "2020-01-01T00:00:00", "GROUND",
                                     "A test mask", "A. Tester", "DQ", "TMT")
    assert back.meta.history == ["first line", "second line"]


def test_a_long_description_survives_the_round_trip(tmp_path):
    text = "A description much longer than one FITS card can hold, " * 3
    model = sub64_model(description=text.strip())
    model.write(tmp_path / "long.fits")
    assert DQModel.read(tmp_path / "long.fits").meta.description == text.strip()


def test_a_long_history_line_reads_back_as_one_entry(tmp_path):
    model = sub64_model()
    model.meta.history = ["Manual flags: " + "x" * 70 + ".txt (12 entries)"]
    model.write(tmp_path / "history.fits")
    assert DQModel.read(tmp_path / "history.fits").meta.history == model.meta.history


def test_a_corrupted_dq_byte_fails_the_checksum_on_read(written, tmp_path):
    _, path = written
    data = bytearray(path.read_bytes())
    data[_data_offset(path, 1) + 4 * 100 + 3] ^= 0x04  # pixel (y=1, x=36) gains bit 2
    corrupted = tmp_path / "corrupted.fits"
    corrupted.write_bytes(bytes(data))
    with pytest.raises(ReferenceFileError, match="checksum verification failed in DQ"):
        DQModel.read(corrupted)


def test_a_corrupted_header_byte_fails_the_checksum_on_read(written, tmp_path):
    _, path = written
    data = path.read_bytes()
    corrupted = tmp_path / "corrupted.fits"
    corrupted.write_bytes(data.replace(b"'A test mask'", b"'A test mast'", 1))
    with pytest.raises(ReferenceFileError, match="checksum verification failed in PRIMARY"):
        DQModel.read(corrupted)


def test_reading_a_missing_file_says_no_such_file(tmp_path):
    with pytest.raises(ReferenceFileError, match="missing.fits: no such file"):
        DQModel.read(tmp_path / "missing.fits")


def test_reading_a_file_that_is_not_fits_says_so(tmp_path):
    path = tmp_path / "notes.fits"
    path.write_text("10 20 DEAD\n")
    with pytest.raises(ReferenceFileError, match="cannot be read as FITS"):
        DQModel.read(path)


def test_reading_fits_without_a_dq_extension_names_the_extension(tmp_path):
    path = tmp_path / "sci.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((4, 4)), name="SCI")]).writeto(path)
    with pytest.raises(ReferenceFileError, match="has no DQ extension"):
        DQModel.read(path)


def test_reading_a_3d_dq_extension_is_refused(tmp_path):
    path = tmp_path / "cube.fits"
    fits.HDUList([fits.PrimaryHDU(),
                  fits.ImageHDU(np.zeros((2, 4, 4), np.uint32), name="DQ")]).writeto(path)
    with pytest.raises(ReferenceFileError, match="the DQ extension is not a 2D image"):
        DQModel.read(path)


def test_reading_negative_dq_values_names_the_pixel(tmp_path):
    path = tmp_path / "signed.fits"
    dq = np.zeros((4, 4), np.int32)
    dq[2, 3] = -5
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(dq, name="DQ")]).writeto(path)
    with pytest.raises(ReferenceFileError, match=r"a negative value .* \(y=2, x=3\)"):
        DQModel.read(path)


# -- a JWST MASK reference, written with plain astropy -------------------------------------
@pytest.fixture
def jwst_mask(tmp_path):
    """A NIRCam MASK-style file without checksums whose DQ_DEF numbers DEAD as bit 1."""
    table = np.array([(0, 1, "DO_NOT_USE", "Bad pixel. Do not use."),
                      (1, 2, "DEAD", "Dead pixel (this file's numbering)"),
                      (11, 2048, "HOT", "Hot pixel")], dtype=flags.DQ_DEF_DTYPE)
    dq = np.zeros((16, 16), np.uint32)
    dq[3, 4] = 2 | 1
    dq[5, 6] = 2048
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "JWST", "INSTRUME": "NIRCAM", "DETECTOR": "NRCA1",
                           "REFTYPE": "MASK", "USEAFTER": "2022-01-01T00:00:00",
                           "PEDIGREE": "GROUND", "SUBARRAY": "FULL"})
    path = tmp_path / "jwst_nircam_mask_0001.fits"
    fits.HDUList([primary, fits.ImageHDU(dq, name="DQ"),
                  fits.BinTableHDU(table, name="DQ_DEF")]).writeto(path)
    return path


def test_a_jwst_mask_file_is_read(jwst_mask):
    model = DQModel.read(jwst_mask)
    assert (model.meta.name, model.meta.detector, model.meta.reftype, model.meta.telescope) == (
        "NIRCAM", "NRCA1", "MASK", "JWST")
    assert model.dq.dtype == np.uint32
    assert (model.dq[3, 4], model.dq[5, 6], np.count_nonzero(model.dq)) == (3, 2048, 2)


def test_a_jwst_mask_keeps_its_own_dq_def(jwst_mask):
    model = DQModel.read(jwst_mask)
    assert [(int(r["BIT"]), int(r["VALUE"]), r["NAME"]) for r in model.dq_def] == [
        (0, 1, b"DO_NOT_USE"), (1, 2, b"DEAD"), (11, 2048, b"HOT")]
    assert model.dq_def[1]["DESCRIPTION"] == b"Dead pixel (this file's numbering)"


def test_a_jwst_mask_translates_to_standard_bits(jwst_mask):
    model = DQModel.read(jwst_mask)
    standard = flags.translate(model.dq, flags.translation_table(model.dq_def))
    assert (standard[3, 4], standard[5, 6]) == (1025, 2048)
    assert model.dq[3, 4] == 3


def test_a_dq_def_without_a_description_column_reads_with_empty_descriptions(tmp_path):
    table = fits.BinTableHDU.from_columns(
        [fits.Column("BIT", "J", array=[10]), fits.Column("VALUE", "J", array=[1024]),
         fits.Column("NAME", "20A", array=["DEAD"])], name="DQ_DEF")
    path = tmp_path / "bare.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 2), np.uint32), name="DQ"),
                  table]).writeto(path)
    model = DQModel.read(path)
    assert [(int(r["BIT"]), int(r["VALUE"]), r["NAME"], r["DESCRIPTION"])
            for r in model.dq_def] == [(10, 1024, b"DEAD", b"")]


# -- safe writing -----------------------------------------------------------------------------
def test_write_refuses_to_overwrite_an_existing_file(tmp_path):
    target = tmp_path / "taken.fits"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsRefusedError, match="taken.fits: exists; refusing to "
                                                     "overwrite it"):
        sub64_model().write(target)
    assert target.read_bytes() == b"precious"
    assert _leftovers(tmp_path) == []


def test_file_exists_refused_error_is_a_file_exists_error():
    assert issubclass(FileExistsRefusedError, FileExistsError)


def test_write_with_overwrite_replaces_the_file(tmp_path):
    target = tmp_path / "ref.fits"
    sub64_model().write(target)
    newer = sub64_model(description="second version")
    newer.write(target, overwrite=True)
    assert DQModel.read(target).meta.description == "second version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.fits"]


def test_write_leaves_only_the_reference_in_its_directory(tmp_path):
    sub64_model().write(tmp_path / "ref.fits")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.fits"]


def test_write_creates_missing_parent_directories(tmp_path):
    sub64_model().write(tmp_path / "a" / "b" / "ref.fits")
    assert (tmp_path / "a" / "b" / "ref.fits").is_file()


def test_an_invalid_model_is_refused_and_nothing_is_written(tmp_path):
    model = sub64_model(useafter="2020-13-01", detector="IRIS9")
    with pytest.raises(InvalidReferenceError) as raised:
        model.write(tmp_path / "bad.fits")
    message = str(raised.value)
    assert "bad.fits is not a valid DQ reference" in message
    assert "USEAFTER: '2020-13-01' is not a real date-time" in message
    assert "unknown detector 'IRIS9'" in message
    assert {f.rule for f in raised.value.findings} >= {"required-metadata", "known-detector"}
    assert list(tmp_path.iterdir()) == []


def test_a_model_without_metadata_is_refused(tmp_path):
    with pytest.raises(InvalidReferenceError, match="INSTRUME is missing"):
        DQModel(np.zeros((4096, 4096), np.uint32)).write(tmp_path / "bare.fits")
    assert list(tmp_path.iterdir()) == []


def test_a_non_ascii_author_is_refused_as_an_invalid_reference(tmp_path):
    with pytest.raises(InvalidReferenceError, match="AUTHOR"):
        sub64_model(author="José Müller").write(tmp_path / "accents.fits")
