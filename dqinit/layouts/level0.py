"""The Liger/IRIS level-0 ramp layout, as that pipeline's ``RampModel`` writes it.

HDUs: ``PRIMARY``, ``TIMES`` (float64), ``DATA`` and ``DQ`` (uint16, numpy shape
(ny, nx, ngroups, nreads): one value per read) and ``ASDF`` (the stdatamodels tree).

What DQ initialization means here (see docs/step.md):

- the reference flags, at their full 32-bit width, go into a 2D uint32 ``PIXELDQ``
  extension (created after ``DQ`` when absent, ORed into when present) that the tree
  names as ``pixeldq``, so the pipeline's model sees it as ``model.pixeldq``;
- DO_NOT_USE (bit 0) is ORed into every group and read of ``DQ``; the flags already in
  ``DQ`` are kept; no 32-bit flag is ever narrowed into the uint16 ``DQ``;
- the status keywords (S_DQINIT, R_DQ, CRDS_CTX) go into the primary header and into the
  tree (``meta.drs_step.dq_init``, ``meta.ref_file.data_quality.name``,
  ``meta.ref_file.crds.context_used``), and the tree's ``_fits_hash`` is recomputed, so
  the pipeline's ``datamodels.open`` trusts the tree and shows the new content.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dqinit import core
from dqinit.layouts import asdf_tree, patches
from dqinit.layouts import hdus as fitsio
from dqinit.layouts.base import (
    NewHDU,
    NewHeader,
    PatchedHDU,
    RampFile,
    or_part,
    patch_in_place,
    pixeldq_part,
)
from dqinit.layouts.primary import StepStatus, status_header

DATA, DQ, TIMES, PIXELDQ = "DATA", "DQ", "TIMES", "PIXELDQ"
#: Where the pipeline's schema keeps what the step records (FITS keyword -> tree path).
TREE_PATHS = {"status": "meta.drs_step.dq_init", "reference": "meta.ref_file.data_quality.name",
              "context": "meta.ref_file.crds.context_used"}
_BLOCK_BYTES = 8 << 20  # a new DQ is streamed in blocks of rows of about this size


class Level0Ramp(RampFile):
    """A Liger/IRIS level-0 ramp file (see the module docstring)."""

    layout = "Liger/IRIS level-0 ramp (DATA/DQ/TIMES + ASDF)"

    def __init__(self, path, hdus):
        super().__init__(path, hdus)
        self.data = self.only(DATA)
        self.require_cube(self.data, DATA, "ny, nx, ngroups, nreads")
        self.dq = self.only(DQ)
        self.pixeldq = self.only(PIXELDQ)
        self.tree_hdu = self.only(asdf_tree.EXTENSION)
        if self.dq is not None:
            self.require_image(self.dq, DQ, np.uint16, self.data.shape)
        if self.pixeldq is not None:
            self.require_image(self.pixeldq, PIXELDQ, np.uint32, self.image_shape)

    @classmethod
    def matches(cls, hdus) -> bool:
        names = {hdu.name for hdu in hdus[1:]}
        return DATA in names and "SCI" not in names

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.data.shape[:2])

    def existing_pixeldq(self) -> np.ndarray | None:
        if self.pixeldq is None:
            return None
        return fitsio.read_block(self.path, self.pixeldq, 0, self.image_shape[0])

    def arrays_to_create(self) -> list[str]:
        return [name for name, hdu in ((DQ, self.dq), (PIXELDQ, self.pixeldq)) if hdu is None]

    # -- writing ----------------------------------------------------------------------
    def plan(self, status: StepStatus, mask: np.ndarray | None) -> list:
        return self._parts(status, mask, in_place=False)

    def update_in_place(self, status: StepStatus, mask: np.ndarray) -> bool:
        """Rewrite what changes in DQ and PIXELDQ, then the tree and the primary header.

        Possible when DQ and PIXELDQ exist, the new primary header fits in the old one's
        blocks and the ``ASDF`` table is the last HDU (it may change length). Only the
        runs of pixels whose bytes change are written; the primary header is written
        last. Returns False (and writes nothing) otherwise.
        """
        primary = self.hdus[0]
        header = status_header(self.header, status)
        if self.dq is None or self.pixeldq is None or \
                len(fitsio.header_bytes(header)) != primary.data_offset - primary.header_offset:
            return False
        if self.tree_hdu is not None and self.tree_hdu is not self.hdus[-1]:
            return False
        parts = self._parts(status, mask, in_place=True)
        with open(self.path, "r+b") as handle:
            patch_in_place(handle, (parts[self.dq.index], parts[self.pixeldq.index]))
            if self.tree_hdu is not None:
                tree = parts[self.tree_hdu.index]
                handle.seek(self.tree_hdu.header_offset)
                handle.write(fitsio.header_bytes(tree.header))
                length = sum(len(chunk) for chunk in tree.data())
                for chunk in tree.data():
                    handle.write(chunk)
                handle.write(fitsio.padding(length))
                handle.truncate()
            handle.seek(primary.header_offset)
            handle.write(fitsio.header_bytes(header))
        return True

    def _parts(self, status: StepStatus, mask: np.ndarray | None, in_place: bool) -> list:
        """The output's parts (see `plan`); ``in_place``: DQ parts that patch the input."""
        primary = NewHeader(self.hdus[0], status_header(self.header, status))
        new_arrays = {}
        if mask is not None:
            # An existing array keeps its header (EXTVER, comments); its type was checked.
            new_arrays[DQ] = self._dq_part(patches.MaskPlanes.of(mask), in_place)
            new_arrays[PIXELDQ] = pixeldq_part(
                self.path, self._header_of(self.pixeldq, PIXELDQ, self.image_shape, np.uint32),
                self.pixeldq, mask, in_place)
        replaced = {id(hdu): new_arrays[name] for name, hdu in ((DQ, self.dq),
                                                                  (PIXELDQ, self.pixeldq))
                    if hdu is not None and name in new_arrays}
        parts = [primary]
        for hdu in self.hdus[1:]:
            parts.append(replaced.get(id(hdu), hdu))
            if hdu is self.data and self.dq is None and DQ in new_arrays:
                parts.append(new_arrays[DQ])
            if hdu is (self.dq or self.data) and self.pixeldq is None and \
                    PIXELDQ in new_arrays:
                parts.append(new_arrays[PIXELDQ])
        if self.tree_hdu is None:
            return parts
        index = next(i for i, part in enumerate(parts) if part is self.tree_hdu)
        parts[index] = self._tree_part(status, parts, created=mask is not None)
        return parts

    # -- arrays -----------------------------------------------------------------------
    @staticmethod
    def _header_of(hdu, name: str, shape, dtype):
        return hdu.header if hdu is not None else fitsio.image_header(name, shape, dtype)

    def _dq_part(self, mask: patches.MaskPlanes, in_place: bool) -> NewHDU | PatchedHDU:
        """DQ: DO_NOT_USE ORed into every group and read (a new DQ is streamed)."""
        header = self._header_of(self.dq, DQ, self.data.shape, np.uint16)
        flat = mask.dnu
        if self.dq is None:
            return NewHDU(header, self._created_dq_chunks(flat.reshape(self.image_shape)))
        _, _, ngroups, nreads = self.data.shape
        pixel_bytes = 2 * ngroups * nreads

        def merge(buffer: np.ndarray, start: int) -> None:
            # DO_NOT_USE is bit 0 and the unsigned offset (BZERO) only flips the top bit,
            # so the flag is ORed into the stored big-endian values as they are.
            stored = buffer.view(">u2").reshape(1, -1, ngroups, nreads)
            first = start // pixel_bytes
            core.merge_read_dq(stored, flat[first:first + stored.shape[1]][None, :])

        runs = patches.touched_runs(mask.dnu_pixels, flat.size, pixel_bytes)
        return or_part(self.path, header, self.dq, runs,
                       patches.whole_array(runs.length, pixel_bytes), merge, in_place)

    def _created_dq_chunks(self, dnu_plane: np.ndarray):
        ny, nx, ngroups, nreads = self.data.shape
        rows_per_block = max(1, _BLOCK_BYTES // max(1, nx * ngroups * nreads * 2))

        def chunks() -> Iterator[memoryview]:
            for start in range(0, ny, rows_per_block):
                count = min(rows_per_block, ny - start)
                block = np.zeros((count, nx, ngroups, nreads), np.uint16)
                core.merge_read_dq(block, dnu_plane[start:start + count])
                yield fitsio.to_fits_bytes(block)
        return chunks

    def _tree_part(self, status: StepStatus, parts: list, created: bool) -> NewHDU:
        """Return the new ``ASDF`` HDU: the input's tree with the step's record and hash."""
        tree = asdf_tree.read_tree(self.path, self.tree_hdu)
        for field, path in TREE_PATHS.items():
            asdf_tree.set_path(tree, path, getattr(status, field))
        if created:
            tree["pixeldq"] = asdf_tree.array_node(PIXELDQ, self.image_shape, np.uint32)
            tree.setdefault("dq", asdf_tree.array_node(DQ, self.data.shape, np.uint16))
        headers = [part.header for part in parts if part is not self.tree_hdu]
        tree[asdf_tree.HASH_KEY] = asdf_tree.fits_hash(headers)
        header, data = asdf_tree.tree_hdu(tree)
        return NewHDU(header, lambda: [data])
