"""dqinit: the DQ initialization step of the IRIS/Liger ramp calibration.

>>> from dqinit import DQInitStep
>>> result = DQInitStep(crds_path="demo/crds_cache").run("ramp_uncal.fits")  # doctest: +SKIP
"""

from dqinit.core import dq_init
from dqinit.ramp import Ramp
from dqinit.step import COMPLETE, SKIPPED, DQInitResult, DQInitStep

__all__ = ["COMPLETE", "SKIPPED", "DQInitResult", "DQInitStep", "Ramp", "dq_init"]
