"""The stpipe wrapper: paths and datamodels in, a datamodel of the same kind out."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::stdatamodels.validate.ValidationWarning")
pytest.importorskip("stpipe")
datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")

from dqinit.simulate import ramp_header, write_raw_ramp  # noqa: E402
from dqinit.stpipe_step import DQInitStpipeStep  # noqa: E402
from dqref import DQModel  # noqa: E402


@pytest.fixture()
def reference(tmp_path):
    model = DQModel.blank("IRIS", "IMG1", useafter="2020-01-01")
    model.flag([[100, 200]], "DEAD|DO_NOT_USE")
    model.write(tmp_path / "ref.fits")
    return tmp_path / "ref.fits"


@pytest.fixture()
def science(tmp_path):
    path = tmp_path / "sub_uncal.fits"
    return write_raw_ramp(path, ramp_header(subarray=("SUB64", 190, 90, 64, 64)), ngroups=2)


def test_a_path_gives_a_jwst_ramp_model_with_the_flags(reference, science):
    result = DQInitStpipeStep.call(str(science), override_dq=str(reference))

    assert isinstance(result, datamodels.RampModel)
    assert result.meta.cal_step.dq_init == "COMPLETE"
    assert result.pixeldq.dtype == np.uint32 and result.pixeldq[11, 11] == 1025
    assert np.count_nonzero(result.pixeldq) == 1
    assert (result.groupdq[0, :, 11, 11] == 1).all()


def test_a_jwst_ramp_model_in_gives_a_new_one_out_and_the_input_is_unchanged(reference, science):
    model = datamodels.RampModel(str(science))
    before = model.pixeldq.copy()

    result = DQInitStpipeStep.call(model, override_dq=str(reference))

    assert type(result) is datamodels.RampModel and result is not model
    assert result.pixeldq[11, 11] == 1025 and (result.groupdq[0, :, 11, 11] == 1).all()
    assert np.array_equal(model.pixeldq, before)
    assert model.meta.cal_step.dq_init is None


def test_override_na_skips_the_step(science):
    result = DQInitStpipeStep.call(str(science), override_dq="N/A")
    assert result.meta.cal_step.dq_init == "SKIPPED"


def test_strun_style_save_results_writes_the_output(reference, science, tmp_path):
    step = DQInitStpipeStep(override_dq=str(reference), save_results=True,
                            output_dir=str(tmp_path / "out"))
    (tmp_path / "out").mkdir()
    step.run(str(science))
    [saved] = (tmp_path / "out").glob("*.fits")
    assert datamodels.RampModel(str(saved)).pixeldq[11, 11] == 1025
