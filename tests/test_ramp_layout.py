"""The ramp layout accepts what JWST's RampModel writes (an extra ASDF binary table)."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from dqinit.layouts import JwstRamp, open_ramp
from dqinit.simulate import ramp_header
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
