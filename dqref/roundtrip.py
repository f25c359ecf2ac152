"""Round-trip proof: run the DQ step on a synthetic ramp and check every flag arrives.

A reference can be well formed and still lose flags on the way into a ramp (bits missing
from DQ_DEF, a subarray origin off by one). This runs the real step (`dqinit`) on an
in-memory ramp with the reference's own geometry and compares, pixel for pixel, PIXELDQ
with the reference's flags (in standard bits) and GROUPDQ with its DO_NOT_USE pixels.
"""

from __future__ import annotations

import os

import numpy as np
from astropy.io import fits

from dqref import flags
from dqref.errors import DQRefError
from dqref.model import DQModel
from dqref.validation import ERROR, Finding

RULE = "roundtrip"
_GROUPS = 2


def roundtrip_findings(model: DQModel, path: str | os.PathLike) -> list[Finding]:
    """Return findings (empty when every flag of the reference at ``path`` arrives).

    Parameters
    ----------
    model : DQModel
        The reference, as read from ``path``.
    path : path-like
        The file the step reads (as ``override_dq``).
    """
    from dqinit.core import DO_NOT_USE
    from dqinit.ramp import Ramp
    from dqinit.step import DQInitStep

    rows, columns = model.dq.shape
    sub = model.meta.subarray
    header = fits.Header()
    header["INSTRUME"], header["DETECTOR"] = model.meta.name, model.meta.detector
    header["SUBARRAY"] = sub.name or "FULL"
    header["SUBSTRT1"], header["SUBSTRT2"] = sub.xstart, sub.ystart
    header["SUBSIZE1"], header["SUBSIZE2"] = columns, rows
    # SCI is never read by the step: a broadcast zero costs no memory.
    science = Ramp(header, np.broadcast_to(np.float32(0), (1, _GROUPS, rows, columns)))
    try:
        result = DQInitStep(override_dq=path).run(science)
    except DQRefError as error:
        return [Finding(RULE, ERROR, f"the DQ step failed on this reference: {error}", "step")]
    expected = flags.translate(model.dq, flags.translation_table(model.dq_def))
    findings = []
    lost = result.ramp.pixeldq != expected
    if lost.any():
        y, x = (int(i) for i in np.argwhere(lost)[0])
        findings.append(Finding(
            RULE, ERROR, f"{int(lost.sum())} pixels arrive in PIXELDQ with other flags "
            f"(first: {int(expected[y, x])} became {int(result.ramp.pixeldq[y, x])})",
            f"pixel (y={y}, x={x})"))
    expected_dnu = (expected & DO_NOT_USE).astype(np.uint8)
    wrong_groups = np.any(result.ramp.groupdq != expected_dnu, axis=(0, 1))
    if wrong_groups.any():
        y, x = (int(i) for i in np.argwhere(wrong_groups)[0])
        findings.append(Finding(
            RULE, ERROR, f"{int(wrong_groups.sum())} pixels lack DO_NOT_USE (or have extra "
            "flags) in some GROUPDQ group", f"pixel (y={y}, x={x})"))
    return findings
