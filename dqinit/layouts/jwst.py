"""The JWST ramp layout (what the seed describes): SCI, PIXELDQ, GROUPDQ, ERR.

``SCI`` is float32 (nints, ngroups, rows, columns); ``PIXELDQ`` 2D uint32 of the image
plane; ``GROUPDQ`` uint8 of the SCI shape. Missing DQ arrays are created right after
SCI, existing ones are replaced where they stand; every other HDU (ERR, JWST's ``ASDF``
table, anything else, also several with one name) is copied byte for byte. JWST's ASDF
tree is left as it is: its ``_fits_hash`` then no longer matches, which tells
stdatamodels to read the FITS keywords and arrays, as it does for any edited file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from dqinit import core
from dqinit.errors import RampFormatError
from dqinit.layouts import hdus as fitsio
from dqinit.layouts.base import NewHDU, NewHeader, RampFile, pixeldq_chunks
from dqinit.layouts.primary import StepStatus, status_header

SCI, PIXELDQ, GROUPDQ, ERR = "SCI", "PIXELDQ", "GROUPDQ", "ERR"


class JwstRamp(RampFile):
    """A JWST-style ramp file (see the module docstring)."""

    layout = "JWST ramp (SCI/PIXELDQ/GROUPDQ)"

    def __init__(self, path, hdus):
        super().__init__(path, hdus)
        self.sci = self.only(SCI)
        self.require_cube(self.sci, SCI, "nints, ngroups, rows, columns")
        self.pixeldq = self.only(PIXELDQ)
        self.groupdq = self.only(GROUPDQ)
        if self.pixeldq is not None:
            self.require_image(self.pixeldq, PIXELDQ, np.uint32, self.image_shape)
        if self.groupdq is not None:
            self.require_image(self.groupdq, GROUPDQ, np.uint8, self.sci.shape)

    @classmethod
    def matches(cls, hdus) -> bool:
        return any(hdu.name == SCI for hdu in hdus[1:])

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.sci.shape[-2:])

    @property
    def sci_shape(self) -> tuple[int, int, int, int]:
        return tuple(self.sci.shape)

    def existing_pixeldq(self) -> np.ndarray | None:
        if self.pixeldq is None:
            return None
        return fitsio.read_block(self.path, self.pixeldq, 0, self.image_shape[0])

    def arrays_to_create(self) -> list[str]:
        return [name for name, hdu in ((PIXELDQ, self.pixeldq), (GROUPDQ, self.groupdq))
                if hdu is None]

    # -- writing ----------------------------------------------------------------------
    def plan(self, status: StepStatus, mask: np.ndarray | None) -> list:
        primary = NewHeader(self.hdus[0], status_header(self.header, status))
        if mask is None:
            return [primary, *self.hdus[1:]]
        pixeldq = NewHDU(fitsio.image_header(PIXELDQ, self.image_shape, np.uint32),
                         pixeldq_chunks(self._new_pixeldq(mask)))
        groupdq = NewHDU(fitsio.image_header(GROUPDQ, self.sci_shape, np.uint8),
                         self._groupdq_chunks(core.do_not_use_plane(mask)))
        parts = [primary]
        for hdu in self.hdus[1:]:
            if hdu is self.pixeldq:
                parts.append(pixeldq)
            elif hdu is self.groupdq:
                parts.append(groupdq)
            else:
                parts.append(hdu)
                if hdu is self.sci:  # JWST order: SCI, PIXELDQ, GROUPDQ, then the rest
                    parts += [new for new, old in ((pixeldq, self.pixeldq),
                                                   (groupdq, self.groupdq)) if old is None]
        return parts

    def update_in_place(self, status: StepStatus, mask: np.ndarray) -> bool:
        """Overwrite PIXELDQ, GROUPDQ and the primary header of a ramp that has both.

        Returns False (and writes nothing) when a DQ array is missing or the new
        primary header needs more 2880-byte blocks than the old one. The header is
        written last, so a crash before it leaves the old status.
        """
        primary = self.hdus[0]
        header = fitsio.header_bytes(status_header(self.header, status))
        if self.pixeldq is None or self.groupdq is None or \
                len(header) != primary.data_offset - primary.header_offset:
            return False
        dnu_plane = core.do_not_use_plane(mask)
        with open(self.path, "r+b") as handle:
            handle.seek(self.pixeldq.data_offset)
            for chunk in pixeldq_chunks(self._new_pixeldq(mask))():
                handle.write(chunk)
            handle.seek(self.groupdq.data_offset)
            for chunk in self._groupdq_chunks(dnu_plane)():
                handle.write(chunk)
            handle.seek(primary.header_offset)
            handle.write(header)
        return True

    def _new_pixeldq(self, mask: np.ndarray) -> np.ndarray:
        existing = self.existing_pixeldq()
        # Without an existing PIXELDQ the output is the mask itself: it is only read.
        return mask if existing is None else core.merge_pixeldq(existing, mask)

    def _groupdq_chunks(self, dnu_plane: np.ndarray) -> Callable[[], Iterator[bytes]]:
        nints, ngroups = self.sci_shape[:2]
        groupdq = self.groupdq

        def chunks() -> Iterator[bytes]:
            for plane_index in range(nints * ngroups):
                if groupdq is None:
                    yield dnu_plane.tobytes()
                else:
                    plane = _plane(self.path, groupdq, plane_index)
                    yield core.merge_groupdq_plane(plane, dnu_plane).tobytes()
        return chunks


def _plane(path, groupdq: fitsio.HDU, index: int) -> np.ndarray:
    rows, columns = groupdq.shape[-2:]
    values = np.fromfile(path, dtype=np.uint8, count=rows * columns,
                         offset=groupdq.data_offset + index * rows * columns)
    if values.size != rows * columns:
        raise RampFormatError(f"{path}: {groupdq.describe()} is truncated")
    return values.reshape(rows, columns)
