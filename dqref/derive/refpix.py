"""The reference-pixel border of H4RG detectors (numpy only)."""

from __future__ import annotations

import numpy as np


def reference_border(shape: tuple[int, int], width: int) -> np.ndarray:
    """Return a boolean mask of the ``width``-pixel border (all False for width 0)."""
    border = np.zeros(shape, bool)
    if width > 0:
        border[:width, :] = border[-width:, :] = True
        border[:, :width] = border[:, -width:] = True
    return border
