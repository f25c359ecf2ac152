"""The JWST ramp layout (what the seed describes): SCI, PIXELDQ, GROUPDQ, ERR.

``SCI`` is float32 (nints, ngroups, rows, columns); ``PIXELDQ`` 2D uint32 of the image
plane; ``GROUPDQ`` uint8 of the SCI shape. Missing DQ arrays are created right after
SCI, existing ones are replaced where they stand; every other HDU (ERR, JWST's ``ASDF``
table, anything else, also several with one name) is copied byte for byte. JWST's ASDF
tree is left as it is: its ``_fits_hash`` then no longer matches, which tells
stdatamodels to read the FITS keywords and arrays, as it does for any edited file.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dqinit import core
from dqinit.layouts import hdus as fitsio
from dqinit.layouts import patches
from dqinit.layouts.base import (
    NewHeader,
    PatchedHDU,
    RampFile,
    or_part,
    patch_in_place,
    pixeldq_part,
)
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
        pixeldq, groupdq = self._dq_parts(mask, in_place=False)
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
        """Rewrite what changes in PIXELDQ and GROUPDQ, and the primary header.

        Only the runs of pixels whose bytes change are written. Returns False (and
        writes nothing) when a DQ array is missing or the new primary header needs more
        2880-byte blocks than the old one. The header is written last, so a crash before
        it leaves the old status.
        """
        primary = self.hdus[0]
        header = fitsio.header_bytes(status_header(self.header, status))
        if self.pixeldq is None or self.groupdq is None or \
                len(header) != primary.data_offset - primary.header_offset:
            return False
        with open(self.path, "r+b") as handle:
            patch_in_place(handle, self._dq_parts(mask, in_place=True))
            handle.seek(primary.header_offset)
            handle.write(header)
        return True

    def _dq_parts(self, mask: np.ndarray, in_place: bool) -> tuple:
        """Return the parts of PIXELDQ and GROUPDQ (new headers, as JWST writes them)."""
        pixeldq = pixeldq_part(self.path, fitsio.image_header(PIXELDQ, self.image_shape,
                                                               np.uint32),
                               self.pixeldq, mask, in_place)
        return pixeldq, self._groupdq_part(patches.MaskPlanes.of(mask), in_place)

    def _groupdq_part(self, mask: patches.MaskPlanes, in_place: bool) -> PatchedHDU:
        """GROUPDQ: DO_NOT_USE ORed into every plane; a new one is a hole but for its runs."""
        header = fitsio.image_header(GROUPDQ, self.sci_shape, np.uint8)
        flat = mask.dnu
        planes = self.sci_shape[0] * self.sci_shape[1]
        runs = patches.touched_runs(mask.dnu_pixels, flat.size, 1, planes)
        if self.groupdq is None:
            def created() -> Iterator[tuple[int, np.ndarray]]:
                for start, stop in runs:
                    piece = flat[start % flat.size:start % flat.size + stop - start]
                    if piece.any():
                        yield start, piece
            return PatchedHDU(header, runs.length, None, created)

        def merge(buffer: np.ndarray, start: int) -> None:
            first = start % flat.size
            core.merge_groupdq_plane(buffer, flat[first:first + buffer.size])

        return or_part(self.path, header, self.groupdq, runs,
                       patches.whole_array(flat.size, 1, planes), merge, in_place)
