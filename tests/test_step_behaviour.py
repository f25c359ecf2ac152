"""The DQ initialization step: every numbered behaviour of the spec, with real files."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from support import (
    cache_with,
    full_frame_reference,
    jwst_style_mask,
    sub_ramp,
    subarray_reference,
)
from typer.testing import CliRunner

from dqinit import DQInitStep, Ramp
from dqinit.cli import app
from dqinit.core import dq_init
from dqinit.errors import (
    MaskShapeError,
    RampFormatError,
    ReferenceSelectionError,
    SubarrayError,
)
from dqref import flags
from dqref.errors import FileExistsRefusedError

DEAD, HOT, DNU, JUMP = (flags.PIXEL[n] for n in ("DEAD", "HOT", "DO_NOT_USE", "JUMP_DET"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    reference = full_frame_reference(folder / "iris1.fits", "IRIS1", "2020-01-01", {
        "DEAD|DO_NOT_USE": [(100, 200), (5, 6)], "HOT": [(101, 201)]})
    return cache_with(folder / "crds_cache", reference)


def run(cache, path, **options):
    return DQInitStep(crds_path=cache.root).run(path, **options)


def arrays(path):
    with fits.open(path) as hdulist:
        return (hdulist[0].header, hdulist["PIXELDQ"].data.copy(),
                hdulist["GROUPDQ"].data.copy(), hdulist["SCI"].data.copy())


def test_full_frame_flags_and_status_keywords(cache, tmp_path):
    from dqinit.simulate import ramp_header, write_raw_ramp

    source = write_raw_ramp(tmp_path / "full_uncal.fits", ramp_header(), ngroups=2)
    result = run(cache, source)
    assert result.status == "COMPLETE" and result.output == tmp_path / "full_dqinit.fits"
    header, pixeldq, groupdq, sci = arrays(result.output)
    assert pixeldq.dtype == np.uint32 and groupdq.dtype == np.uint8
    assert groupdq.shape == (1, 2, 4096, 4096)
    assert [tuple(p) for p in np.argwhere(pixeldq)] == [(5, 6), (100, 200), (101, 201)]
    assert pixeldq[100, 200] == DEAD | DNU and pixeldq[101, 201] == HOT
    assert (header["S_DQINIT"], header["R_DQ"], header["CRDS_CTX"]) == \
        ("COMPLETE", "crds://iris_dq_0001.fits", "ligeriri_0002.pmap")
    assert header["CAL_VER"].startswith("ligeriri-dq")


def test_subarray_flags_land_at_offset_and_sci_is_untouched(cache, tmp_path):
    source = sub_ramp(tmp_path / "sub_uncal.fits", origin_xy=(190, 90))
    result = run(cache, source)
    _, pixeldq, groupdq, sci = arrays(result.output)
    assert pixeldq.shape == (64, 64)
    assert [tuple(p) for p in np.argwhere(pixeldq)] == [(11, 11), (12, 12)]
    assert pixeldq[11, 11] == DEAD | DNU and pixeldq[12, 12] == HOT
    with fits.open(source) as original:
        assert np.array_equal(original["SCI"].data, sci)


def test_do_not_use_reaches_every_group_and_other_group_flags_stay(cache, tmp_path):
    source = sub_ramp(tmp_path / "g_uncal.fits", nints=2, ngroups=3, with_dq=True)
    with fits.open(source, mode="update") as hdulist:
        hdulist["GROUPDQ"].data[1, 2, 30, 30] = JUMP
        hdulist["PIXELDQ"].data[40, 41] = 1 << 20
    _, pixeldq, groupdq, _ = arrays(run(cache, source).output)
    assert (groupdq[:, :, 11, 11] == DNU).all()
    assert (groupdq[:, :, 12, 12] == 0).all()        # HOT alone does not touch GROUPDQ
    assert groupdq[1, 2, 30, 30] == JUMP and np.count_nonzero(groupdq) == 7
    assert pixeldq[40, 41] == 1 << 20                # existing flags kept


def test_no_matching_rule_skips_and_leaves_the_data_unchanged(cache, tmp_path):
    source = sub_ramp(tmp_path / "iris3_uncal.fits", detector="IRIS3")
    result = run(cache, source)
    assert result.status == "SKIPPED" and result.reference is None
    assert "no DQ reference matches" in result.message
    with fits.open(result.output) as out, fits.open(source) as original:
        assert [h.name for h in out] == ["PRIMARY", "SCI"]
        assert out[0].header["S_DQINIT"] == "SKIPPED" and out[0].header["R_DQ"] == "N/A"
        assert np.array_equal(out["SCI"].data, original["SCI"].data)


def test_a_rule_naming_a_missing_file_is_an_error_not_a_skip(tmp_path):
    local = cache_with(tmp_path / "c", full_frame_reference(tmp_path / "a.fits"))
    local.reference_path("iris_dq_0001.fits").unlink()
    with pytest.raises(ReferenceSelectionError, match="does not exist"):
        run(local, sub_ramp(tmp_path / "r.fits"))


def test_a_rule_naming_a_corrupted_file_is_an_error(tmp_path):
    local = cache_with(tmp_path / "c", full_frame_reference(tmp_path / "a.fits"))
    path = local.reference_path("iris_dq_0001.fits")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(ReferenceSelectionError, match="checksum"):
        run(local, sub_ramp(tmp_path / "r.fits"))


@pytest.mark.parametrize(("extension", "array", "words"), [
    ("PIXELDQ", np.zeros((64, 64), np.int16), "existing PIXELDQ is int16"),
    ("PIXELDQ", np.zeros((32, 64), np.uint32), "existing PIXELDQ"),
    ("GROUPDQ", np.zeros((1, 3, 64, 64), np.uint8), "existing GROUPDQ"),
])
def test_existing_dq_arrays_of_the_wrong_shape_or_dtype_are_errors(cache, tmp_path, extension,
                                                                   array, words):
    source = sub_ramp(tmp_path / "bad_uncal.fits", with_dq=True)
    with fits.open(source, mode="update") as hdulist:
        hdulist[extension] = fits.ImageHDU(array, name=extension)
    with pytest.raises(RampFormatError, match=words):
        run(cache, source)
    assert not (tmp_path / "bad_dqinit.fits").exists()


def test_a_region_outside_the_reference_prints_both_geometries(cache, tmp_path):
    source = sub_ramp(tmp_path / "edge_uncal.fits", origin_xy=(4090, 1))
    with pytest.raises(SubarrayError) as error:
        run(cache, source)
    assert "SUBSTRT1=4090" in str(error.value) and "SUBSIZE1=4096" in str(error.value)


def test_a_subarray_reference_is_placed_by_its_own_origin(tmp_path):
    reference = subarray_reference(tmp_path / "sub_ref.fits", origin_xy=(101, 201), size=64,
                                   flags={"DEAD|DO_NOT_USE": [(10, 20)]})
    source = sub_ramp(tmp_path / "r.fits", origin_xy=(111, 206), size=32)
    result = DQInitStep(override_dq=reference).run(source)
    _, pixeldq, _, _ = arrays(result.output)
    assert [tuple(p) for p in np.argwhere(pixeldq)] == [(5, 10)]
    assert result.reference == "user:sub_ref.fits"


def test_a_jwst_mask_with_other_bit_assignments_is_translated_by_name(tmp_path):
    jwst_style_mask(tmp_path / "mask.fits", (4096, 4096), (100, 200),
                    {"INSTRUME": "IRIS", "DETECTOR": "IRIS1"})
    result = DQInitStep(override_dq=tmp_path / "mask.fits").run(sub_ramp(tmp_path / "r.fits"))
    _, pixeldq, groupdq, _ = arrays(result.output)
    assert pixeldq[11, 11] == DEAD | DNU and np.count_nonzero(pixeldq) == 1
    assert (groupdq[:, :, 11, 11] == DNU).all()


def test_a_user_dq_is_ored_in_and_must_match_the_shape(cache, tmp_path):
    user = np.zeros((64, 64), np.uint32)
    user[1, 2] = flags.PIXEL["WARM"]
    fits.PrimaryHDU(user).writeto(tmp_path / "user.fits")
    result = DQInitStep(crds_path=cache.root, user_dq=tmp_path / "user.fits").run(
        sub_ramp(tmp_path / "r.fits"))
    _, pixeldq, _, _ = arrays(result.output)
    assert pixeldq[1, 2] == flags.PIXEL["WARM"] and pixeldq[11, 11] == DEAD | DNU
    fits.PrimaryHDU(np.zeros((10, 10), np.uint32)).writeto(tmp_path / "small.fits")
    with pytest.raises(MaskShapeError, match="10 x 10"):
        DQInitStep(crds_path=cache.root, user_dq=tmp_path / "small.fits").run(
            sub_ramp(tmp_path / "r2.fits"))


def test_in_memory_ramps_are_not_modified(cache, tmp_path):
    science = Ramp.read(sub_ramp(tmp_path / "r.fits", with_dq=True))
    before = science.pixeldq.copy(), science.groupdq.copy()
    result = DQInitStep(crds_path=cache.root).run(science)
    assert np.array_equal(science.pixeldq, before[0])
    assert np.array_equal(science.groupdq, before[1])
    assert result.ramp.pixeldq[11, 11] == DEAD | DNU
    assert result.ramp.header["S_DQINIT"] == "COMPLETE" and "S_DQINIT" not in science.header


def test_the_numpy_core_returns_new_arrays():
    pixeldq = np.zeros((4, 4), np.uint32)
    groupdq = np.zeros((1, 2, 4, 4), np.uint8)
    mask = np.zeros((4, 4), np.uint32)
    mask[1, 2] = DEAD | DNU
    new_pixeldq, new_groupdq = dq_init(pixeldq, groupdq, mask)
    assert new_pixeldq[1, 2] == DEAD | DNU and (new_groupdq[:, :, 1, 2] == DNU).all()
    assert not pixeldq.any() and not groupdq.any()


def test_in_place_with_both_arrays_rewrites_only_dq_and_header(cache, tmp_path):
    source = sub_ramp(tmp_path / "r.fits", with_dq=True)
    size = source.stat().st_size
    with fits.open(source) as hdulist:
        sci = hdulist["SCI"].data.copy()
    result = run(cache, source, in_place=True)
    assert result.output == source and source.stat().st_size == size
    header, pixeldq, _, after_sci = arrays(source)
    assert header["S_DQINIT"] == "COMPLETE" and pixeldq[11, 11] == DEAD | DNU
    assert np.array_equal(sci, after_sci)


def test_in_place_without_dq_arrays_rewrites_the_file(cache, tmp_path):
    source = sub_ramp(tmp_path / "r.fits")
    run(cache, source, in_place=True)
    _, pixeldq, groupdq, _ = arrays(source)
    assert pixeldq[11, 11] == DEAD | DNU and groupdq.shape == (1, 2, 64, 64)


def test_outputs_are_never_overwritten_unless_asked(cache, tmp_path):
    source = sub_ramp(tmp_path / "r_uncal.fits")
    run(cache, source)
    with pytest.raises(FileExistsRefusedError):
        run(cache, source)
    assert run(cache, source, overwrite=True).status == "COMPLETE"
    with pytest.raises(RampFormatError, match="--in-place"):
        run(cache, source, output=source)


def test_cli_reports_each_file_and_exits_1_after_processing_the_others(cache, tmp_path):
    good = sub_ramp(tmp_path / "good_uncal.fits")
    (tmp_path / "broken.fits").write_bytes(b"garbage" * 1000)
    skipped = sub_ramp(tmp_path / "iris3_uncal.fits", detector="IRIS3")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "broken.fits"), str(good),
                                      str(skipped), "--crds-path", str(cache.root)])
    assert result.exit_code == 1
    assert "broken.fits: FAILED" in result.output
    assert "COMPLETE reference=crds://iris_dq_0001.fits" in result.output
    assert "SKIPPED" in result.output
    assert (tmp_path / "good_dqinit.fits").is_file()
    assert not (tmp_path / "broken_dqinit.fits").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_output_takes_one_input(cache, tmp_path):
    one, two = sub_ramp(tmp_path / "a.fits"), sub_ramp(tmp_path / "b.fits")
    result = CliRunner().invoke(app, ["run", str(one), str(two), "-o", str(tmp_path / "o.fits"),
                                      "--crds-path", str(cache.root)])
    assert result.exit_code == 2 and "--output takes one input" in result.output


@pytest.mark.parametrize("layout", ["contiguous", "subarray view", "big-endian", "int64"])
def test_the_do_not_use_plane_is_bit_0_of_each_value_however_the_mask_is_stored(layout):
    from dqinit.core import do_not_use_plane

    values = np.arange(64 * 48, dtype=np.uint32).reshape(64, 48) * np.uint32(2654435761)
    mask = {"contiguous": values, "subarray view": values[5:40, 3:33],
            "big-endian": values.astype(">u4"), "int64": values.astype(np.int64)}[layout]
    plane = do_not_use_plane(mask)
    assert plane.dtype == np.uint8 and plane.shape == mask.shape
    assert np.array_equal(plane, (np.asarray(mask) & 1).astype(np.uint8))
