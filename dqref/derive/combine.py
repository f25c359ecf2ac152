"""Combine a stack of 2D images by a sigma-clipped mean, a block of rows at a time.

Only ``rows_per_block`` rows of every image are in memory at once, so ten 4096 x 4096
float32 images (memory-mapped from files) never become a 671 MB stack.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.stats import sigma_clip


def clipped_mean_and_scatter(images: Sequence[np.ndarray], clip_sigma: float = 3.0,
                             rows_per_block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Return the per-pixel sigma-clipped mean and standard deviation of ``images``.

    Parameters
    ----------
    images : sequence of 2D arrays of one shape
        May be memory maps; they are read a block of rows at a time and not modified.
    clip_sigma : float
        Clipping threshold (astropy ``sigma_clip`` along the stack, median centre).

    Returns
    -------
    mean, scatter : numpy.ndarray (float32)
        The scatter is 0 where fewer than two values survive.
    """
    rows, columns = images[0].shape
    mean = np.empty((rows, columns), np.float32)
    scatter = np.zeros((rows, columns), np.float32)
    for start in range(0, rows, rows_per_block):
        stop = min(rows, start + rows_per_block)
        block = np.stack([np.asarray(image[start:stop], dtype=np.float32) for image in images])
        if len(images) > 2:
            clipped = sigma_clip(block, sigma=clip_sigma, axis=0, masked=True, copy=False)
            mean[start:stop] = clipped.mean(axis=0).filled(np.nan)
            scatter[start:stop] = clipped.std(axis=0, ddof=1).filled(0)
        else:
            mean[start:stop] = block.mean(axis=0)
            if len(images) == 2:
                scatter[start:stop] = block.std(axis=0, ddof=1)
    return mean, scatter
