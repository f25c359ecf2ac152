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
from dqinit.layouts import asdf_tree
from dqinit.layouts import hdus as fitsio
from dqinit.layouts.base import NewHDU, NewHeader, RampFile, pixeldq_chunks
from dqinit.layouts.primary import StepStatus, status_header

DATA, DQ, TIMES, PIXELDQ = "DATA", "DQ", "TIMES", "PIXELDQ"
#: Where the pipeline's schema keeps what the step records (FITS keyword -> tree path).
TREE_PATHS = {"status": "meta.drs_step.dq_init", "reference": "meta.ref_file.data_quality.name",
              "context": "meta.ref_file.crds.context_used"}
_BLOCK_BYTES = 8 << 20  # DQ rows are streamed in blocks of about this size


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
        primary = NewHeader(self.hdus[0], status_header(self.header, status))
        new_arrays = {}
        if mask is not None:
            # An existing array keeps its header (EXTVER, comments); its type was checked.
            new_arrays[DQ] = NewHDU(
                self._header_of(self.dq, DQ, self.data.shape, np.uint16),
                self._dq_chunks(core.do_not_use_plane(mask)))
            new_arrays[PIXELDQ] = NewHDU(
                self._header_of(self.pixeldq, PIXELDQ, self.image_shape, np.uint32),
                pixeldq_chunks(self._new_pixeldq(mask)))
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

    def update_in_place(self, status: StepStatus, mask: np.ndarray) -> bool:
        """Overwrite DQ, PIXELDQ, the tree and the primary header of a ramp that has all.

        Possible when DQ and PIXELDQ exist, the new primary header fits in the old one's
        blocks and the ``ASDF`` table is the last HDU (it may change length). The primary
        header is written last. Returns False (and writes nothing) otherwise.
        """
        primary = self.hdus[0]
        header = status_header(self.header, status)
        if self.dq is None or self.pixeldq is None or \
                len(fitsio.header_bytes(header)) != primary.data_offset - primary.header_offset:
            return False
        if self.tree_hdu is not None and self.tree_hdu is not self.hdus[-1]:
            return False
        parts = self.plan(status, mask)
        with open(self.path, "r+b") as handle:
            for old, new in ((self.dq, parts[self.dq.index]),
                             (self.pixeldq, parts[self.pixeldq.index])):
                handle.seek(old.data_offset)
                for chunk in new.data():
                    handle.write(chunk)
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

    # -- arrays -----------------------------------------------------------------------
    @staticmethod
    def _header_of(hdu, name: str, shape, dtype):
        return hdu.header if hdu is not None else fitsio.image_header(name, shape, dtype)

    def _new_pixeldq(self, mask: np.ndarray) -> np.ndarray:
        existing = self.existing_pixeldq()
        return mask if existing is None else core.merge_pixeldq(existing, mask)

    def _dq_chunks(self, dnu_plane: np.ndarray):
        ny, nx, ngroups, nreads = self.data.shape
        rows_per_block = max(1, _BLOCK_BYTES // max(1, nx * ngroups * nreads * 2))
        dq = self.dq

        def chunks() -> Iterator[bytes]:
            for start in range(0, ny, rows_per_block):
                count = min(rows_per_block, ny - start)
                block = np.zeros((count, nx, ngroups, nreads), np.uint16) if dq is None \
                    else fitsio.read_block(self.path, dq, start, count)
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
