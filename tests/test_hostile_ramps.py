"""Hostile ramps (issue 13, the dqinit side): refused in one line, or kept whole; never
silently corrupted. Each test failed before the position-based reader/writer."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from astropy.io import fits
from support import cache_with, full_frame_reference, sub_ramp
from typer.testing import CliRunner

from dqinit import DQInitStep
from dqinit.cli import app
from dqinit.errors import MaskShapeError, RampFormatError


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ref")
    return full_frame_reference(folder / "ref.fits", flags={"DEAD|DO_NOT_USE": [(100, 200)]})


def edit(path, change):
    with fits.open(path) as hdulist:
        hdus = fits.HDUList([hdu.copy() for hdu in hdulist])
    change(hdus)
    hdus.writeto(path, overwrite=True)
    return path


@pytest.mark.parametrize("name", ["PIXELDQ", "GROUPDQ"])
def test_a_tile_compressed_dq_array_is_refused_and_the_file_left_alone(reference, tmp_path, name):
    source = sub_ramp(tmp_path / "r.fits", with_dq=True)

    def compress(hdus):
        index = hdus.index_of(name)
        hdus[index] = fits.CompImageHDU(hdus[index].data, name=name)
    edit(source, compress)
    before = source.read_bytes()
    for in_place in (False, True):
        with pytest.raises(RampFormatError, match="tile-compressed"):
            DQInitStep(override_dq=reference).run(source, in_place=in_place)
    assert source.read_bytes() == before


def test_extensions_that_share_a_name_are_all_kept(reference, tmp_path):
    source = sub_ramp(tmp_path / "r.fits")

    def add(hdus):
        for version in (1, 2):
            hdus.append(fits.ImageHDU(np.full((2, 2), version, np.int16), name="EXTRA",
                                      ver=version))
        hdus.append(fits.ImageHDU(np.full((3,), 7, np.int16)))  # unnamed
        hdus.append(fits.ImageHDU(np.full((3,), 8, np.int16)))  # unnamed
    edit(source, add)
    for override in (reference, "N/A"):  # COMPLETE and SKIPPED
        result = DQInitStep(override_dq=override).run(source, overwrite=True)
        with fits.open(result.output) as hdulist:
            extras = [(hdu.name, hdu.ver, int(hdu.data.flat[0])) for hdu in hdulist[1:]
                      if hdu.name not in ("SCI", "PIXELDQ", "GROUPDQ")]
        assert extras == [("EXTRA", 1, 1), ("EXTRA", 2, 2), ("", 1, 7), ("", 1, 8)]


def test_two_sci_extensions_are_refused_not_guessed(reference, tmp_path):
    source = edit(sub_ramp(tmp_path / "r.fits"),
                  lambda hdus: hdus.append(fits.ImageHDU(hdus["SCI"].data, name="SCI", ver=2)))
    with pytest.raises(RampFormatError, match="2 extensions are named SCI"):
        DQInitStep(override_dq=reference).run(source)


def test_a_groupdq_stored_as_int8_with_bzero_is_refused(reference, tmp_path):
    source = sub_ramp(tmp_path / "r.fits", with_dq=True)

    def signed(hdus):
        hdus["GROUPDQ"] = fits.ImageHDU(hdus["GROUPDQ"].data.astype(np.int8), name="GROUPDQ")
    edit(source, signed)
    assert fits.getheader(source, "GROUPDQ")["BZERO"] == -128
    with pytest.raises(RampFormatError, match="existing GROUPDQ is int8"):
        DQInitStep(override_dq=reference).run(source)


def test_a_pixeldq_with_a_bscale_is_refused(reference, tmp_path):
    source = sub_ramp(tmp_path / "r.fits", with_dq=True)
    raw = bytearray(source.read_bytes())
    start = raw.rfind(b"XTENSION", 0, raw.index(b"EXTNAME = 'PIXELDQ '"))
    at = raw.index(b"BSCALE  =", start)
    raw[at:at + 30] = b"BSCALE  =                    2"
    source.write_bytes(bytes(raw))
    with pytest.raises(RampFormatError, match="existing PIXELDQ is scaled"):
        DQInitStep(override_dq=reference).run(source)


@pytest.mark.parametrize("value", [1.5, "1", True])
def test_a_non_integer_substrt_is_refused_not_truncated(reference, tmp_path, value):
    source = sub_ramp(tmp_path / "r.fits")
    with fits.open(source, mode="update") as hdulist:
        hdulist[0].header["SUBSTRT1"] = value
    with pytest.raises(RampFormatError, match="SUBSTRT1 = .* is not a whole number"):
        DQInitStep(override_dq=reference).run(source)


def test_in_place_on_a_read_only_ramp_is_refused_and_it_keeps_its_inode(reference, tmp_path):
    source = sub_ramp(tmp_path / "r.fits")
    source.chmod(0o444)
    inode = source.stat().st_ino
    with pytest.raises(RampFormatError, match="not writable"):
        DQInitStep(override_dq=reference).run(source, in_place=True)
    assert source.stat().st_ino == inode


def test_an_in_place_rewrite_keeps_the_file_mode(reference, tmp_path):
    source = sub_ramp(tmp_path / "r.fits")
    source.chmod(0o640)
    DQInitStep(override_dq=reference).run(source, in_place=True)  # no DQ arrays: rewritten
    assert stat.S_IMODE(source.stat().st_mode) == 0o640
    assert "PIXELDQ" in fits.open(source)


def test_in_place_through_a_symlink_processes_the_real_file_and_keeps_the_link(reference,
                                                                                tmp_path):
    real = sub_ramp(tmp_path / "real.fits")
    link = tmp_path / "link.fits"
    link.symlink_to(real)
    DQInitStep(override_dq=reference).run(link, in_place=True)
    assert link.is_symlink() and os.readlink(link) == str(real)
    with fits.open(real) as hdulist:
        assert hdulist[0].header["S_DQINIT"] == "COMPLETE"


def test_a_fifo_as_user_dq_is_refused_without_blocking(reference, tmp_path):
    fifo = tmp_path / "mask.fifo"
    os.mkfifo(fifo)
    with pytest.raises(MaskShapeError, match="not a regular file"):
        DQInitStep(override_dq=reference, user_dq=fifo).run(sub_ramp(tmp_path / "r.fits"))


def test_a_fifo_as_input_is_refused_without_blocking(reference, tmp_path):
    fifo = tmp_path / "ramp.fifo"
    os.mkfifo(fifo)
    with pytest.raises(RampFormatError, match="not a regular file"):
        DQInitStep(override_dq=reference).run(fifo)


@pytest.mark.parametrize("detector", ["IRIS1\nX", "IRIS\x001"])
def test_one_odd_header_fails_its_file_and_the_batch_carries_on(reference, tmp_path, detector):
    cache = cache_with(tmp_path / "cache", reference)
    good = [sub_ramp(tmp_path / f"good{i}.fits") for i in range(2)]
    odd = sub_ramp(tmp_path / "odd.fits")
    raw = bytearray(odd.read_bytes())
    at = raw.index(b"DETECTOR= 'IRIS1   '")
    value = detector.encode("latin1").ljust(8)[:8]
    raw[at + 11:at + 19] = value
    odd.write_bytes(bytes(raw))
    outcome = CliRunner().invoke(app, ["run", str(good[0]), str(odd), str(good[1]),
                                       "--output-dir", str(tmp_path / "out"), "-j", "1",
                                       "--crds-path", str(cache.root)])
    assert outcome.exit_code == 1
    assert "Traceback" not in outcome.output
    assert "odd.fits" in outcome.output and "FAILED" in outcome.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.fits")) == [
        "good0_dqinit.fits", "good1_dqinit.fits"]
