"""An stpipe Step wrapper around `DQInitStep` (optional: needs ``pip install stpipe``).

>>> from dqinit.stpipe_step import DQInitStpipeStep          # doctest: +SKIP
>>> ramp = DQInitStpipeStep.call("ramp_uncal.fits", crds_path="crds_cache")  # doctest: +SKIP

The wrapper takes a ramp path or `dqinit.Ramp` and returns the new `Ramp`; lookups use
our local CRDS cache, so stpipe's own reference prefetch is switched off.
"""

from __future__ import annotations

try:
    from stpipe import Step
except ImportError as error:  # pragma: no cover - depends on the optional extra
    raise ImportError("the stpipe wrapper needs stpipe: pip install 'ligeriri-dq[stpipe]'") \
        from error

from dqinit.ramp import Ramp
from dqinit.step import DQInitStep


class DQInitStpipeStep(Step):
    """stpipe face of the IRIS/Liger DQ initialization step."""

    class_alias = "ligeriri_dq_init"
    spec = """
        override_dq = string(default=None)  # DQ reference to use instead of CRDS
        user_dq = string(default=None)      # extra 2D mask ORed in
        crds_path = string(default=None)    # local CRDS cache ($CRDS_PATH, ~/crds_cache)
        output_ext = string(default=".fits")
    """
    reference_file_types: list = []
    prefetch_references = False

    @classmethod
    def _get_crds_parameters(cls, dataset):
        """Return the CRDS matching keywords of a ramp path or Ramp, and our observatory."""
        from astropy.io import fits

        from dqinit.ramp import selection_header

        header = dataset.header if isinstance(dataset, Ramp) else fits.getheader(dataset)
        return selection_header(header), "ligeriri"

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """No step-parameter (pars-*) references exist for ligeriri: use the spec defaults."""
        return cls._empty_config()

    def process(self, step_input):
        step = DQInitStep(crds_path=self.crds_path, override_dq=self.override_dq,
                          user_dq=self.user_dq)
        science = step_input if isinstance(step_input, Ramp) else Ramp.read(step_input)
        result = step.run(science)
        self.log.info("dq_init %s: reference %s, context %s", result.status,
                      result.reference or "N/A", result.context)
        return result.ramp
