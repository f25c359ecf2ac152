"""The optional stpipe wrapper (runs only where stpipe is installed)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stpipe")

from dqinit.simulate import ramp_header, write_raw_ramp  # noqa: E402
from dqinit.stpipe_step import DQInitStpipeStep  # noqa: E402
from dqref import DQModel  # noqa: E402


def test_stpipe_wrapper_applies_the_override_reference(tmp_path):
    reference = DQModel.blank("IRIS", "IRIS1", useafter="2020-01-01")
    reference.flag([[100, 200]], "DEAD|DO_NOT_USE")
    reference.write(tmp_path / "ref.fits")
    science = tmp_path / "sub_uncal.fits"
    write_raw_ramp(science, ramp_header(subarray=("SUB64", 190, 90, 64, 64)), ngroups=2)

    result = DQInitStpipeStep.call(str(science), override_dq=str(tmp_path / "ref.fits"))

    assert result.header["S_DQINIT"] == "COMPLETE"
    assert result.pixeldq[11, 11] == 1025
    assert np.count_nonzero(result.pixeldq) == 1
    assert (result.groupdq[0, :, 11, 11] == 1).all()
