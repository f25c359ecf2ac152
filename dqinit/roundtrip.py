"""Round-trip proof: run the DQ step on synthetic ramps and check every flag arrives.

A reference can be well formed and still lose flags on the way into a ramp (bits missing
from DQ_DEF, a subarray origin off by one). This writes a zero-cost ramp of the
reference's own geometry in each layout (JWST and Liger/IRIS level-0), runs the step on
it exactly as ``dqinit run --override-dq`` does (file in, streaming writer, file out) and
compares, pixel for pixel, the output's PIXELDQ with the reference's flags (in standard
bits) and its group/read DQ with the reference's DO_NOT_USE pixels.

It is registered for ``dqref cache add`` and ``dqref validate --roundtrip`` through the
``ligeriri_dq.reference_checks`` entry point, so dqref never imports dqinit.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqinit.core import DO_NOT_USE
from dqinit.simulate import level0_header, ramp_header, write_level0_ramp, write_raw_ramp
from dqinit.step import DQInitStep
from dqref import flags
from dqref.errors import DQRefError
from dqref.model import DQModel
from dqref.validation import ERROR, Finding

RULE = "roundtrip"


def roundtrip_findings(model: DQModel, path: str | os.PathLike) -> list[Finding]:
    """Return findings (empty when every flag of the reference at ``path`` arrives).

    Parameters
    ----------
    model : DQModel
        The reference, as read from ``path``.
    path : path-like
        The file the step reads (as ``override_dq``).
    """
    try:
        expected = flags.translate(model.dq, flags.translation_table(model.dq_def))
    except DQRefError as error:
        return [Finding(RULE, ERROR, f"the DQ step cannot use this reference: {error}",
                        "DQ_DEF")]
    findings = []
    with tempfile.TemporaryDirectory(prefix="dqinit-roundtrip-") as folder:
        for layout, write in (("JWST", _jwst_ramp), ("level-0", _level0_ramp)):
            ramp = write(model, Path(folder) / f"{layout}.fits")
            try:
                result = DQInitStep(override_dq=path).run(ramp, output=ramp.with_suffix(
                    ".out.fits"))
            except DQRefError as error:
                findings.append(Finding(RULE, ERROR, f"the DQ step failed on a {layout} "
                                        f"ramp of this reference: {error}", "step"))
                continue
            with fits.open(result.output, memmap=False) as output:
                pixeldq = output["PIXELDQ"].data
                reads = output["GROUPDQ"].data if layout == "JWST" else \
                    np.moveaxis(output["DQ"].data, (0, 1), (-2, -1))
                findings += _compare(layout, expected, pixeldq, reads)
    return findings


def _compare(layout: str, expected: np.ndarray, pixeldq: np.ndarray,
             reads: np.ndarray) -> list[Finding]:
    findings = []
    lost = pixeldq != expected
    if lost.any():
        y, x = (int(i) for i in np.argwhere(lost)[0])
        findings.append(Finding(
            RULE, ERROR, f"{int(lost.sum())} pixels arrive in the {layout} PIXELDQ with "
            f"other flags (first: {int(expected[y, x])} became {int(pixeldq[y, x])})",
            f"pixel (y={y}, x={x})"))
    expected_dnu = (expected & DO_NOT_USE).astype(reads.dtype)
    wrong = np.any(reads != expected_dnu, axis=tuple(range(reads.ndim - 2)))
    if wrong.any():
        y, x = (int(i) for i in np.argwhere(wrong)[0])
        findings.append(Finding(
            RULE, ERROR, f"{int(wrong.sum())} pixels lack DO_NOT_USE (or have extra flags) "
            f"in some group of the {layout} ramp", f"pixel (y={y}, x={x})"))
    return findings


def _geometry(model: DQModel) -> tuple[str, int, int, int, int]:
    rows, columns = model.dq.shape
    sub = model.meta.subarray
    full = (sub.xstart, sub.ystart) == (1, 1) and \
        model.dq.shape == model.detector_info.shape
    return ("FULL" if full else "CUSTOM", sub.xstart, sub.ystart, columns, rows)


def _jwst_ramp(model: DQModel, path: Path) -> Path:
    header = ramp_header(model.meta.name, model.meta.detector, subarray=_geometry(model))
    return write_raw_ramp(path, header, nints=1, ngroups=2, zeros=True)


def _level0_ramp(model: DQModel, path: Path) -> Path:
    header = level0_header(model.meta.name, model.meta.detector, subarray=_geometry(model))
    return write_level0_ramp(path, header, ngroups=1, nreads=2, zeros=True)
