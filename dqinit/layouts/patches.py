"""DQ arrays written as patches: only the runs of pixels that a mask touches.

After the step a DQ array is its old content with a mask ORed in, and the masks are
mostly zero (DO_NOT_USE, the only flag that reaches GROUPDQ and the level-0 DQ, is set
on few pixels). So the writer need not produce every byte of those arrays: it copies the
old bytes with the kernel (`hdus.copy_range`), or leaves a new array of zeros as a file
hole, and writes only the runs of pixels the mask touches. A hole reads back as zeros on
every file system (one without sparse files stores the zeros), so the output's bytes are
those of writing every byte. An update in place writes only the runs whose bytes change.

When the mask touches most of an array (`Runs.dense`), copying the old bytes first
would be work thrown away: the array is then streamed through, read, merged and written
in pieces, and pieces of zero bytes are still left as holes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from dqinit import core
from dqinit.layouts import hdus as fitsio

#: Touched bytes closer than this are one run: fewer calls, and a hole shorter than a
#: few file-system blocks saves nothing.
GAP_BYTES = 16 << 10
#: Runs are cut into pieces of at most this size, so memory stays small and an update in
#: place rewrites only the pieces that change.
PIECE_BYTES = 1 << 20
#: From this fraction of touched bytes on, streaming beats copy + patch (measured: the
#: copy costs about as much as writing the bytes again).
DENSE_FRACTION = 0.5

#: ``merge(buffer, start)``: OR the mask into ``buffer`` (a writable uint8 array holding
#: the stored bytes of the array from byte ``start``), in place.
Merge = Callable[[np.ndarray, int], None]


@dataclass(frozen=True)
class Runs:
    """The byte ranges ``[start, stop)`` of an array's data that a mask touches."""

    starts: np.ndarray
    stops: np.ndarray
    length: int

    @property
    def touched(self) -> int:
        """Bytes inside the runs."""
        return int(np.sum(self.stops - self.starts))

    @property
    def dense(self) -> bool:
        """Whether the runs cover so much that streaming the whole array is cheaper."""
        return self.touched > DENSE_FRACTION * self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.starts.tolist(), self.stops.tolist(), strict=True)


def touched_runs(pixels: np.ndarray, plane_pixels: int, pixel_bytes: int, planes: int = 1,
                 gap_bytes: int = GAP_BYTES, piece_bytes: int = PIECE_BYTES) -> Runs:
    """Return the byte runs of the touched pixels, in every plane.

    Parameters
    ----------
    pixels : numpy.ndarray of int
        Sorted indices of the touched pixels of one plane, in file order (flattened C
        order), as `numpy.flatnonzero` gives them.
    plane_pixels : int
        Pixels in one plane.
    pixel_bytes : int
        Stored bytes per pixel in one plane (GROUPDQ 1; level-0 DQ 2 x ngroups x nreads).
    planes : int
        How many planes of that geometry follow each other (GROUPDQ: nints x ngroups); the
        runs repeat in each and never cross from one plane into the next.
    gap_bytes, piece_bytes : int
        Runs closer than ``gap_bytes`` are merged; longer than ``piece_bytes`` are cut.
    """
    plane_bytes = plane_pixels * pixel_bytes
    if pixels.size == 0:
        empty = np.zeros(0, np.int64)
        return Runs(empty, empty, plane_bytes * planes)
    gap = max(1, gap_bytes // pixel_bytes)
    breaks = np.flatnonzero(np.diff(pixels) > gap)
    first = np.concatenate(([pixels[0]], pixels[breaks + 1])).astype(np.int64)
    last = np.concatenate((pixels[breaks], [pixels[-1]])).astype(np.int64) + 1
    piece = max(1, piece_bytes // pixel_bytes)
    counts = -(-(last - first) // piece)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    starts = np.repeat(first, counts) + within * piece
    stops = np.minimum(starts + piece, np.repeat(last, counts))
    offsets = np.arange(planes, dtype=np.int64)[:, None] * plane_bytes
    return Runs((offsets + starts * pixel_bytes).ravel(), (offsets + stops * pixel_bytes).ravel(),
                plane_bytes * planes)


def whole_array(plane_bytes: int, pixel_bytes: int, planes: int = 1,
                piece_bytes: int = PIECE_BYTES) -> Runs:
    """Return runs that cover every plane whole, in pieces that hold whole pixels."""
    piece = max(1, piece_bytes // pixel_bytes) * pixel_bytes
    within = np.arange(0, plane_bytes, piece, dtype=np.int64)
    offsets = np.arange(planes, dtype=np.int64)[:, None] * plane_bytes
    starts = offsets + within
    stops = np.minimum(starts + piece, offsets + plane_bytes)
    return Runs(starts.ravel(), stops.ravel(), plane_bytes * planes)


def merged_runs(path, old: fitsio.HDU | None, runs: Runs, merge: Merge,
                keep: str) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(offset in the data, new bytes)`` for each run, the mask merged in.

    Parameters
    ----------
    path : path-like
        The file that holds ``old``.
    old : HDU or None
        The existing array whose stored bytes are read; None: the array is new and its
        old bytes are zeros.
    runs : Runs
        Where to merge.
    merge : callable
        ``merge(buffer, start)`` ORs the mask into the stored bytes, in place.
    keep : ``"changed"`` or ``"nonzero"``
        Yield only the runs whose bytes change (the old bytes are already in place), or
        only those with a non-zero byte (the rest of the array is a hole of zeros).
    """
    handle = os.open(path, os.O_RDONLY) if old is not None else None
    try:
        for start, stop in runs:
            if handle is None:
                buffer = np.zeros(stop - start, np.uint8)
            else:
                buffer = np.frombuffer(fitsio.read_exactly(handle, stop - start,
                                                           old.data_offset + start, path),
                                       np.uint8)
            before = buffer.copy() if keep == "changed" else None
            merge(buffer, start)
            if keep == "changed" and np.array_equal(buffer, before):
                continue
            if keep == "nonzero" and not buffer.any():
                continue
            yield start, buffer
    finally:
        if handle is not None:
            os.close(handle)


class MaskPlanes:
    """What the writers derive from one science mask, computed once while files share it.

    In a batch every ramp of one geometry gets the same mask object from the step, so its
    DO_NOT_USE plane and the indices of its flagged pixels are derived for the first file
    only (`of`).
    """

    _last: MaskPlanes | None = None

    def __init__(self, mask: np.ndarray):
        self.mask = mask  # held, so that ``is`` below can never match a new array
        self.flat = np.ravel(mask)
        self.dnu = np.ravel(core.do_not_use_plane(mask))

    @classmethod
    def of(cls, mask: np.ndarray) -> MaskPlanes:
        """Return the planes of ``mask``: the last ones if it is the same array."""
        last = cls._last
        if last is None or last.mask is not mask:
            last = cls._last = cls(mask)
        return last

    @functools.cached_property
    def dnu_pixels(self) -> np.ndarray:
        """Indices of the pixels that get DO_NOT_USE."""
        return np.flatnonzero(self.dnu != 0)

    @functools.cached_property
    def flagged_pixels(self) -> np.ndarray:
        """Indices of the pixels with any flag."""
        return np.flatnonzero(self.flat != 0)
