"""Ramp file layouts, one adapter module each, chosen by the file's content.

- `dqinit.layouts.jwst`: the JWST ramp layout (SCI/PIXELDQ/GROUPDQ/ERR);
- `dqinit.layouts.level0`: the Liger/IRIS level-0 layout (DATA/DQ/TIMES + ASDF tree).

Both feed the same numpy core (`dqinit.core`) and share the primary-header dialect
(`dqinit.layouts.primary`), the HDU reader and the streaming writer.
"""

from __future__ import annotations

import os

from dqinit.errors import RampFormatError
from dqinit.layouts import hdus as fitsio
from dqinit.layouts.base import RampFile
from dqinit.layouts.jwst import JwstRamp
from dqinit.layouts.level0 import Level0Ramp

LAYOUTS: tuple[type[RampFile], ...] = (JwstRamp, Level0Ramp)


def open_ramp(path: str | os.PathLike) -> RampFile:
    """Read a ramp's headers and return the adapter of its layout (no data loaded).

    Raises
    ------
    RampFormatError
        Not FITS, a layout we do not know, or DQ arrays of the wrong shape or type.
    """
    hdus = fitsio.scan(path)
    for layout in LAYOUTS:
        if layout.matches(hdus):
            return layout(path, hdus)
    names = ", ".join(hdu.name for hdu in hdus[1:]) or "none"
    raise RampFormatError(
        f"{path}: not a ramp: needs a 4D SCI extension (JWST layout) or a 4D DATA "
        f"extension (Liger/IRIS level-0 layout); extensions found: {names}")


__all__ = ["LAYOUTS", "JwstRamp", "Level0Ramp", "RampFile", "open_ramp"]
