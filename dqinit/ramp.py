"""A JWST-layout ramp held in memory (small data, tests, pipelines that loaded one).

Files are read and written by the layout adapters (`dqinit.layouts`); this is only the
in-memory value. The step runs it through a temporary file, so it takes the same path
as every file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqinit.errors import RampFormatError
from dqinit.layouts import JwstRamp, open_ramp
from dqinit.layouts.jwst import ERR, GROUPDQ, PIXELDQ, SCI
from dqref.atomic import atomic_output


@dataclass
class Ramp:
    """A ramp in the JWST layout: primary header, SCI, and optional PIXELDQ/GROUPDQ/ERR."""

    header: fits.Header
    sci: np.ndarray
    pixeldq: np.ndarray | None = None
    groupdq: np.ndarray | None = None
    err: np.ndarray | None = None

    @classmethod
    def read(cls, path: str | os.PathLike) -> Ramp:
        """Load a whole JWST-layout ramp file into memory (shapes and types checked)."""
        if not isinstance(open_ramp(path), JwstRamp):
            raise RampFormatError(f"{path}: not a JWST-layout ramp (no SCI extension)")
        with fits.open(path, memmap=False) as hdulist:
            def data(name):
                return np.array(hdulist[name].data) if name in hdulist else None
            return cls(hdulist[0].header.copy(), data(SCI), data(PIXELDQ), data(GROUPDQ),
                       data(ERR))

    def to_hdulist(self) -> fits.HDUList:
        """Return the ramp as an HDU list in JWST order."""
        hdus = [fits.PrimaryHDU(header=self.header), fits.ImageHDU(self.sci, name=SCI)]
        for name, array in ((PIXELDQ, self.pixeldq), (GROUPDQ, self.groupdq), (ERR, self.err)):
            if array is not None:
                hdus.append(fits.ImageHDU(array, name=name))
        return fits.HDUList(hdus)

    def write(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the ramp atomically (temporary file + rename)."""
        if self.sci is None or np.ndim(self.sci) != 4:
            raise RampFormatError("in-memory ramp: needs a 4D SCI array (nints, ngroups, "
                                  f"rows, columns); found {np.shape(self.sci)}")
        with atomic_output(path, overwrite=overwrite) as temporary:
            self.to_hdulist().writeto(temporary)
        return Path(path)
