"""An stpipe Step around `DQInitStep` (optional: needs ``pip install 'ligeriri-dq[stpipe]'``).

It works with stpipe 0.8.1 (the Liger/IRIS pipeline's pin) and with stpipe 1.x, under
``strun``, the pipeline's ``lirun``, and as a step of a ``LigerIRISPipeline`` subclass::

    class Stage0(LigerIRISPipeline):
        step_defs = {"dq_init": DQInitStpipeStep, "ramp_fit": FitRampStep}

It takes a ramp path or a datamodel (a JWST ``RampModel``, the Liger/IRIS pipeline's
``RampModel``, any stdatamodels model) and returns a datamodel of the same kind: the
input is written to a temporary file, the step runs exactly as ``dqinit run`` does, and
the output file is opened with the input's model class. A path gives the model class of
its layout (Liger/IRIS level-0 files: that pipeline's ``datamodels.open`` where it is
installed). Lookups use our local CRDS cache, so stpipe's own reference prefetch is off.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

try:
    from stpipe import Step
    from stpipe.config_parser import ConfigObj
except ImportError as error:  # pragma: no cover - depends on the optional extra
    raise ImportError("the stpipe wrapper needs stpipe: pip install 'ligeriri-dq[stpipe]'") \
        from error

from astropy.io import fits

from dqinit.layouts import Level0Ramp, open_ramp
from dqinit.ramp import Ramp
from dqinit.step import DQInitStep

log = logging.getLogger("stpipe.ligeriri_dq_init")


class DQInitStpipeStep(Step):
    """stpipe face of the IRIS/Liger DQ initialization step."""

    class_alias = "ligeriri_dq_init"
    spec = """
        override_dq = string(default=None)  # DQ reference to use instead of CRDS; N/A skips
        user_dq = string(default=None)      # extra 2D mask ORed in
        crds_path = string(default=None)    # local CRDS cache ($CRDS_PATH, ~/crds_cache)
        context = string(default=None)      # CRDS context (pmap); default the current one
        output_ext = string(default=".fits")
    """
    reference_file_types: list = []
    prefetch_references = False

    # -- what stpipe asks of a step that is not a JwstStep --------------------------------
    @classmethod
    def _datamodels_open(cls, init, **kwargs):
        """Open a ramp as a datamodel (stpipe calls this for file inputs)."""
        if not isinstance(init, str | os.PathLike):
            return init
        return _open_output(Path(init), None)

    @classmethod
    def _get_crds_parameters(cls, dataset):
        """Return the CRDS matching keywords of a ramp and our observatory (stpipe 1.x)."""
        from dqinit.layouts.primary import selection_header

        header = dataset.header if isinstance(dataset, Ramp) else \
            fits.getheader(dataset) if isinstance(dataset, str | os.PathLike) else {}
        return selection_header(header), "ligeriri"

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """No step-parameter (``pars-*``) references exist for ligeriri: use the spec defaults.

        stpipe 0.8.1 would otherwise open the input and ask its model for CRDS
        parameters before the step runs (the Liger/IRIS models do not implement that).
        """
        return ConfigObj()

    # -- the step ----------------------------------------------------------------------
    def process(self, step_input):
        step = DQInitStep(crds_path=self.crds_path, override_dq=self.override_dq,
                          user_dq=self.user_dq, context=self.context)
        if isinstance(step_input, Ramp):
            result = step.run(step_input)
            self.status = result.status
            log.info("dq_init %s: reference %s, context %s", result.status,
                          result.reference or "N/A", result.context)
            return result.ramp
        with tempfile.TemporaryDirectory(prefix="dqinit-stpipe-") as folder:
            folder = Path(folder)
            model_class = None
            if isinstance(step_input, str | os.PathLike):
                source = Path(step_input)
            else:  # a datamodel: never changed; its copy goes through a file
                model_class = type(step_input)
                name = getattr(step_input.meta, "filename", None) or "ramp.fits"
                source = folder / "input" / Path(str(name)).name
                source.parent.mkdir()
                step_input.copy().save(str(source))
            output = folder / "output" / source.name
            output.parent.mkdir()
            result = step.run(source, output=output)
            self.status = result.status
            log.info("dq_init %s: reference %s, context %s", result.status,
                          result.reference or "N/A", result.context)
            return _open_output(output, model_class)


def _open_output(path: Path, model_class):
    """Open a ramp file as ``model_class``, or the model class of its layout.

    Arrays are read now (the file may be temporary). A level-0 file without a model
    class opens with the Liger/IRIS pipeline's ``datamodels.open`` where it is
    installed, else as a generic stdatamodels ``DataModel``; a JWST-layout file as
    stdatamodels' JWST ``RampModel``, else as our `Ramp`.
    """
    if model_class is None:
        level0 = isinstance(open_ramp(path), Level0Ramp)
        model_class = _level0_model_class() if level0 else _jwst_model_class()
    if model_class is Ramp:
        return Ramp.read(path)
    with fits.open(path, memmap=False) as hdulist:
        for hdu in hdulist:
            hdu.data  # noqa: B018 - load every array before the file goes away
        return model_class(hdulist)


def _level0_model_class():
    try:
        from liger_iris_pipeline.datamodels import RampModel
    except ImportError:
        from stdatamodels import DataModel as RampModel
    return RampModel


def _jwst_model_class():
    try:
        from stdatamodels.jwst.datamodels import RampModel
    except ImportError:
        return Ramp
    return RampModel
