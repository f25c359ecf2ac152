"""The ramp layout accepts what JWST's RampModel writes (an extra ASDF binary table)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from dqinit.layouts import JwstRamp, asdf_tree, open_ramp
from dqinit.layouts.patches import touched_runs, whole_array
from dqinit.simulate import level0_header, ramp_header, write_level0_ramp, write_raw_ramp
from dqinit.step import DQInitStep
from dqref import DQModel


def test_a_jwst_style_ramp_with_an_asdf_table_is_processed_and_the_table_kept(tmp_path):
    header = ramp_header(subarray=("SUB64", 190, 90, 64, 64))
    asdf = fits.BinTableHDU.from_columns([fits.Column("ASDF_METADATA", "10B",
                                                      array=np.zeros((1, 10), np.uint8))],
                                         name="ASDF")
    fits.HDUList([fits.PrimaryHDU(header=header),
                  fits.ImageHDU(np.zeros((1, 2, 64, 64), np.float32), name="SCI"),
                  fits.ImageHDU(np.zeros((64, 64), np.uint32), name="PIXELDQ"),
                  fits.ImageHDU(np.zeros((1, 2, 64, 64), np.uint8), name="GROUPDQ"),
                  asdf]).writeto(tmp_path / "jwst_uncal.fits")
    reference = DQModel.blank("IRIS", "IRIS1", useafter="2020-01-01")
    reference.flag([[100, 200]], "DEAD|DO_NOT_USE")
    reference.write(tmp_path / "ref.fits")

    layout = open_ramp(tmp_path / "jwst_uncal.fits")
    result = DQInitStep(override_dq=tmp_path / "ref.fits").run(tmp_path / "jwst_uncal.fits")

    assert isinstance(layout, JwstRamp)
    assert [e.name for e in layout.hdus] == ["PRIMARY", "SCI", "PIXELDQ", "GROUPDQ", "ASDF"]
    with fits.open(result.output) as hdulist:
        assert [h.name for h in hdulist] == ["PRIMARY", "SCI", "PIXELDQ", "GROUPDQ", "ASDF"]
        assert hdulist["PIXELDQ"].data[11, 11] == 1025
        assert hdulist["ASDF"].data.tobytes() == asdf.data.tobytes()


# -- only the bytes the step changes are written (issue 15) -----------------------------------
def test_touched_runs_merge_close_pixels_cut_long_runs_and_repeat_in_every_plane():
    touched = np.zeros(20, bool)
    touched[[1, 2, 5, 12, 13, 14, 15, 16, 17]] = True
    runs = touched_runs(np.flatnonzero(touched), 20, pixel_bytes=2, planes=2, gap_bytes=4,
                        piece_bytes=8)
    assert list(runs) == [(2, 6), (10, 12), (24, 32), (32, 36),
                          (42, 46), (50, 52), (64, 72), (72, 76)]
    assert (runs.length, runs.touched, runs.dense) == (80, 36, False)
    assert list(whole_array(40, pixel_bytes=2, planes=2, piece_bytes=16)) == \
        [(0, 16), (16, 32), (32, 40), (40, 56), (56, 72), (72, 80)]
    assert list(touched_runs(np.zeros(0, np.int64), 5, 1)) == []


def holes_supported(folder: Path) -> bool:
    """Whether this file system stores a file of seeks as a sparse file."""
    probe = folder / "probe"
    with open(probe, "wb") as handle:
        handle.seek(8 << 20)
        handle.write(b"x")
    sparse = probe.stat().st_blocks * 512 < 1 << 20
    probe.unlink()
    return sparse


def wide_ramp(tmp_path: Path) -> Path:
    """A 512 x 1024 subarray ramp of 4 groups (512 kB GROUPDQ planes)."""
    return write_raw_ramp(tmp_path / "wide_uncal.fits",
                          ramp_header(subarray=("SUB1024", 1, 1, 1024, 512)), ngroups=4)


def reference_with_one_dead_pixel(tmp_path: Path) -> Path:
    reference = DQModel.blank("IRIS", "IRIS1", useafter="2020-01-01")
    reference.flag([[100, 200]], "DEAD|DO_NOT_USE")
    reference.flag([[300, 400]], "HOT")
    reference.write(tmp_path / "ref.fits")
    return tmp_path / "ref.fits"


def test_a_new_groupdq_is_left_as_a_file_hole_where_it_is_zero(tmp_path):
    if not holes_supported(tmp_path):
        pytest.skip("this file system does not store holes")
    reference = reference_with_one_dead_pixel(tmp_path)
    source = wide_ramp(tmp_path)
    result = DQInitStep(override_dq=reference).run(source)
    with fits.open(result.output) as hdulist:
        groupdq = hdulist["GROUPDQ"].data
        assert groupdq.shape == (1, 4, 512, 1024)
        assert [tuple(p) for p in np.argwhere(groupdq)] == [(0, g, 100, 200) for g in range(4)]
    # Beyond the input's 8 MB, PIXELDQ takes 2 MB (with BZERO its zeros are 0x80 bytes)
    # and GROUPDQ one block per plane for its one flagged pixel, not 2 MB.
    added = (result.output.stat().st_blocks - source.stat().st_blocks) * 512
    assert (2 << 20) <= added < (2 << 20) + (64 << 10)


def sparse_copy(source: Path, target: Path, block: int = 4096) -> Path:
    """Copy a file leaving every block of zeros as a hole."""
    data = source.read_bytes()
    with open(target, "wb") as sink:
        for start in range(0, len(data), block):
            piece = data[start:start + block]
            if piece.count(0) == len(piece):
                sink.seek(len(piece), 1)
            else:
                sink.write(piece)
        sink.truncate()
    return target


def test_in_place_writes_only_the_runs_that_change(tmp_path):
    if not holes_supported(tmp_path):
        pytest.skip("this file system does not store holes")
    reference = reference_with_one_dead_pixel(tmp_path)
    step = DQInitStep(override_dq=reference)
    done = sparse_copy(step.run(wide_ramp(tmp_path)).output, tmp_path / "done.fits")
    allocated, before = done.stat().st_blocks, done.read_bytes()
    step.run(done, in_place=True)  # the same flags again: nothing in the arrays changes
    assert done.stat().st_blocks == allocated
    assert done.read_bytes() == before


def test_the_tree_reads_and_writes_with_asdf_core_as_with_every_asdf_plugin(tmp_path):
    import asdf

    path = write_level0_ramp(tmp_path / "lvl0.fits", level0_header(
        subarray=("CUSTOM", 5, 7, 16, 16)))
    layout = open_ramp(path)
    tree = asdf_tree.read_tree(path, layout.tree_hdu)
    _, data = asdf_tree.tree_hdu(tree)
    buffer = io.BytesIO()
    asdf.AsdfFile(dict(tree)).write_to(buffer)  # asdf's default: every installed plugin
    assert data == buffer.getvalue()
    assert b"history:" in data and b"asdf_library:" in data


def test_the_level0_step_does_not_load_the_asdf_plugins(tmp_path):
    path = write_level0_ramp(tmp_path / "lvl0.fits", level0_header(
        subarray=("CUSTOM", 5, 7, 16, 16)))
    reference = reference_with_one_dead_pixel(tmp_path)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from dqinit.step import DQInitStep; "
         f"DQInitStep(override_dq={str(reference)!r}).run({str(path)!r}); "
         "print(sorted(m for m in ('asdf_astropy.extensions', 'gwcs', 'stdatamodels') "
         "if m in sys.modules))"],
        capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
