"""dqinit: the DQ initialization step of the IRIS/Liger ramp calibration.

>>> from dqinit import DQInitStep
>>> result = DQInitStep(crds_path="demo/crds_cache").run("ramp_uncal.fits")  # doctest: +SKIP

The names are loaded on first use (`dqref.lazy`), so ``dqinit --help`` needs no numpy.
"""

from dqref.lazy import lazy_attributes

_EXPORTS = {"COMPLETE": "dqinit.step", "SKIPPED": "dqinit.step", "DQInitResult": "dqinit.step",
            "DQInitStep": "dqinit.step", "Ramp": "dqinit.ramp", "dq_init": "dqinit.core"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())
