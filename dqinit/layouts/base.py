"""What every ramp layout adapter offers the step, and the streaming writer they share.

An adapter is built from a file's HDU table (`dqinit.layouts.hdus.scan`) and knows where
its layout keeps the science cube and the DQ arrays. The step gives it a mask (reference
flags in standard bits, already cut to the science region) and a `StepStatus`; the
adapter writes a new file through a temporary name (or updates the DQ arrays in place)
without ever loading the science cube. The input file is never changed, except by
`RampFile.update_in_place`, which the user asks for.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from astropy.io import fits

from dqinit import core
from dqinit.errors import RampFormatError
from dqinit.layouts import hdus as fitsio
from dqinit.layouts import patches
from dqinit.layouts.primary import StepStatus
from dqref.atomic import atomic_output

Chunks = Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class NewHDU:
    """An HDU the writer creates: its header, and a source of its data bytes (unpadded)."""

    header: fits.Header
    data: Chunks | None = None


@dataclass(frozen=True)
class PatchedHDU:
    """An HDU whose data are a base with runs of bytes written over it (`patches`).

    The base is the data of the input HDU ``base``, copied by the kernel, or, when
    ``base`` is None, zeros left as a file hole. ``patches()`` yields ``(offset in the
    data, bytes)``. An update in place writes only the patches, over ``base``.
    """

    header: fits.Header
    length: int
    base: fitsio.HDU | None
    patches: Callable[[], Iterable[tuple[int, object]]]


@dataclass(frozen=True)
class NewHeader:
    """An input HDU written with a new header (its data bytes copied as they are)."""

    hdu: fitsio.HDU
    header: fits.Header


class RampFile:
    """A ramp of one layout, described from its headers (no data loaded).

    Subclasses set ``layout`` (a short name for messages) and implement `matches`,
    `image_shape`, `existing_pixeldq`, `plan` and optionally `update_in_place`.
    """

    layout: ClassVar[str] = ""

    def __init__(self, path: Path, hdus: list[fitsio.HDU]):
        self.path = Path(path)
        self.hdus = hdus

    # -- what the step asks ---------------------------------------------------------
    @classmethod
    def matches(cls, hdus: list[fitsio.HDU]) -> bool:
        """Whether this layout's arrays are in the file (chosen by content, not name)."""
        raise NotImplementedError

    @property
    def header(self) -> fits.Header:
        """The primary header."""
        return self.hdus[0].header

    @property
    def image_shape(self) -> tuple[int, int]:
        """(rows, columns) of the science image plane."""
        raise NotImplementedError

    def existing_pixeldq(self) -> np.ndarray | None:
        """Return the file's existing 2D uint32 pixel flags, or None."""
        raise NotImplementedError

    def plan(self, status: StepStatus, mask: np.ndarray | None) -> list:
        """Return the output's HDUs in order: input `HDU` (copied), `NewHeader`, `NewHDU`.

        ``mask`` None records the status only (a SKIPPED run).
        """
        raise NotImplementedError

    def update_in_place(self, status: StepStatus, mask: np.ndarray) -> bool:
        """Overwrite only the DQ arrays and headers; return False if that is impossible."""
        return False

    # -- shared -----------------------------------------------------------------------
    def arrays_to_create(self) -> list[str]:
        """Return the names of the DQ arrays this file lacks and the step creates."""
        raise NotImplementedError

    def write(self, target: str | os.PathLike, status: StepStatus, mask: np.ndarray | None,
              overwrite: bool = False, mode: int | None = None) -> Path:
        """Write the output through a temporary file and a rename (see `plan`).

        ``mode`` gives the new file those permission bits (an in-place rewrite keeps the
        input's).
        """
        parts = self.plan(status, mask)
        with atomic_output(target, overwrite=overwrite) as temporary:
            with open(self.path, "rb") as source, open(temporary, "wb") as sink:
                for part in parts:
                    if isinstance(part, NewHDU):
                        _write_new(sink, part)
                    elif isinstance(part, PatchedHDU):
                        _write_patched(source, sink, part)
                    elif isinstance(part, NewHeader):
                        sink.write(fitsio.header_bytes(part.header))
                        fitsio.copy_range(source, sink, part.hdu.data_offset,
                                          part.hdu.data_span)
                    else:
                        fitsio.copy_hdu(source, sink, part)
                sink.truncate()  # the file may end in a hole: give it its full length
            if mode is not None:
                os.chmod(temporary, stat.S_IMODE(mode))
        return Path(target)

    def only(self, name: str) -> fitsio.HDU | None:
        """Return the one HDU called ``name``, None if absent; several are an error."""
        found = [hdu for hdu in self.hdus[1:] if hdu.name == name]
        if len(found) > 1:
            raise RampFormatError(
                f"{self.path}: {len(found)} extensions are named {name} (HDUs "
                f"{', '.join(str(hdu.index) for hdu in found)}); the step would not know "
                "which one to use")
        return found[0] if found else None

    def require_image(self, hdu: fitsio.HDU, role: str, dtype=None,
                      shape: tuple[int, ...] | None = None) -> None:
        """Raise RampFormatError unless an existing array is a plain image of this kind."""
        what = f"{self.path}: existing {role} ({hdu.describe()})"
        if hdu.kind == fitsio.COMPRESSED:
            raise RampFormatError(f"{what} is tile-compressed; the step reads and writes "
                                  "uncompressed images only (funpack the file first)")
        if hdu.kind != fitsio.IMAGE:
            raise RampFormatError(f"{what} is a table, not an image")
        if (shape is not None and tuple(hdu.shape) != tuple(shape)) or \
                (dtype is not None and hdu.dtype != np.dtype(dtype)):
            found = "scaled (BSCALE/BZERO)" if hdu.dtype is None else hdu.dtype
            raise RampFormatError(
                f"{self.path}: existing {role} is {found} {tuple(hdu.shape)}; expected "
                f"{np.dtype(dtype)} {tuple(shape)} (it is never replaced or reinterpreted "
                "silently)")

    def require_cube(self, hdu: fitsio.HDU | None, role: str, axes: str) -> None:
        """Raise RampFormatError unless the science cube is a plain 4D image."""
        if hdu is None or hdu.kind != fitsio.IMAGE or len(hdu.shape) != 4:
            found = "none" if hdu is None else f"{hdu.kind} {hdu.shape}"
            raise RampFormatError(f"{self.path}: needs a 4D {role} extension ({axes}); "
                                  f"found {found}")
        if hdu.dtype is None:
            raise RampFormatError(f"{self.path}: {role} holds scaled values (BSCALE/BZERO)")


def pixeldq_chunks(pixeldq: np.ndarray, rows_per_chunk: int = 256) -> Chunks:
    """Return a source of PIXELDQ's FITS bytes, a block of rows at a time."""
    def chunks() -> Iterator[memoryview]:
        for start in range(0, pixeldq.shape[0], rows_per_chunk):
            yield fitsio.to_fits_bytes(np.asarray(pixeldq[start:start + rows_per_chunk],
                                                  dtype=np.uint32))
    return chunks


def pixeldq_part(path: Path, header: fits.Header, existing: fitsio.HDU | None,
                 mask: np.ndarray, in_place: bool = False) -> NewHDU | PatchedHDU:
    """Return the output part of PIXELDQ: ``mask``, or ``mask`` ORed into ``existing``."""
    if existing is None:
        return NewHDU(header, pixeldq_chunks(mask))
    planes = patches.MaskPlanes.of(mask)
    top_bit = np.uint32(1 << 31)

    def merge(buffer: np.ndarray, start: int) -> None:
        stored = buffer.view(">u4")
        values = stored ^ top_bit  # the unsigned offset (BZERO) undone
        core.merge_pixeldq(values, planes.flat[start // 4:start // 4 + values.size])
        np.bitwise_xor(values, top_bit, out=stored)

    runs = patches.touched_runs(planes.flagged_pixels, planes.flat.size, 4)
    return or_part(path, header, existing, runs, patches.whole_array(runs.length, 4), merge,
                   in_place)


def or_part(path: Path, header: fits.Header, existing: fitsio.HDU, runs: patches.Runs,
            whole: patches.Runs, merge: patches.Merge, in_place: bool) -> PatchedHDU:
    """Return the part that ORs a mask into the ``existing`` array (`dqinit.layouts.patches`).

    In place, or when the mask touches little of the array, the old bytes stay (the
    writer copies them) and only the runs that change are written; otherwise the whole
    array is read, merged and written.
    """
    if in_place or not runs.dense:
        return PatchedHDU(header, runs.length, existing,
                          lambda: patches.merged_runs(path, existing, runs, merge, "changed"))
    return PatchedHDU(header, runs.length, None,
                      lambda: patches.merged_runs(path, existing, whole, merge, "nonzero"))


def patch_in_place(handle, parts: Iterable[PatchedHDU]) -> None:
    """Write each part's patches over its ``base`` HDU in the file open as ``handle``."""
    for part in parts:
        for offset, data in part.patches():
            handle.seek(part.base.data_offset + offset)
            handle.write(data)


def _write_patched(source, sink, part: PatchedHDU) -> None:
    sink.write(fitsio.header_bytes(part.header))
    start = sink.tell()
    if part.base is not None:
        fitsio.copy_range(source, sink, part.base.data_offset, part.length)
    for offset, data in part.patches():
        sink.seek(start + offset)
        sink.write(data)
    # The padding is zeros: nothing need be written there.
    sink.seek(start + part.length + len(fitsio.padding(part.length)))


def _write_new(sink, part: NewHDU) -> None:
    sink.write(fitsio.header_bytes(part.header))
    length = 0
    for chunk in part.data() if part.data else ():
        sink.write(chunk)
        length += len(chunk)
    sink.write(fitsio.padding(length))
