"""The reference-pixel border of H4RG detectors, and the science region inside it (numpy only).

H4RG detectors carry rows and columns of reference pixels on each edge (4 wide on the
H4RG-15s of IRIS and Liger): they are not light-sensitive, so they are flagged
REFERENCE_PIXEL and left out of the flat and dark searches.
"""

from __future__ import annotations

import numpy as np


def reference_border(shape: tuple[int, int], width: int) -> np.ndarray:
    """Return a boolean mask that is True on the ``width``-pixel border of each edge.

    Parameters
    ----------
    shape : (int, int)
        Rows and columns of the array.
    width : int
        Border width in pixels; 0 gives an all-False mask.

    Raises
    ------
    ValueError
        ``width`` is negative or leaves no pixel inside the border.
    """
    rows, columns = science_region(shape, width)
    border = np.ones(shape, dtype=bool)
    border[rows, columns] = False
    return border


def science_region(shape: tuple[int, int], width: int) -> tuple[slice, slice]:
    """Return the (rows, columns) slices of the pixels inside a ``width``-pixel border.

    Raises
    ------
    ValueError
        ``width`` is negative or leaves no pixel inside the border.
    """
    rows, columns = shape
    if width < 0 or 2 * width >= min(rows, columns):
        raise ValueError(f"a reference border of {width} pixels does not fit a "
                         f"{rows} x {columns} array")
    return slice(width, rows - width), slice(width, columns - width)
