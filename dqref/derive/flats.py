"""Bad pixels from a flat field: DEAD, LOW_QE, OPEN and ADJ_OPEN (numpy only)."""

from __future__ import annotations

import numpy as np
from astropy.stats import mad_std
from scipy import ndimage

_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float32)


def normalise(flat: np.ndarray, smoothing: str = "box", size: int = 15) -> np.ndarray:
    """Return the flat divided by a smoothed version of itself (1 = typical response)."""
    flat = np.nan_to_num(np.asarray(flat, dtype=np.float32), nan=0.0)
    if smoothing == "median":
        smooth = ndimage.median_filter(flat, size=size, mode="nearest")
    else:
        smooth = ndimage.uniform_filter(flat, size=size, mode="nearest")
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = np.where(smooth > 0, flat / smooth, 0.0)
    return normalised.astype(np.float32)


def flat_defects(normalised: np.ndarray, config) -> dict[str, np.ndarray]:
    """Return boolean masks {flag name: pixels} found in a normalised flat.

    Parameters
    ----------
    normalised : numpy.ndarray
        From `normalise`.
    config : DeriveConfig
        dead_search, dead_threshold, dead_sigma, low_qe_threshold, open_threshold,
        adj_open_threshold.

    Notes
    -----
    An OPEN pixel is low (<= open_threshold) while the mean of its 8 neighbours exceeds
    adj_open_threshold: its charge went next door. Its neighbours get ADJ_OPEN and it is
    not also called DEAD or LOW_QE.
    """
    if config.dead_search == "sigma":
        valid = normalised[normalised > 0]
        centre = float(np.median(valid)) if valid.size else 1.0
        spread = float(mad_std(valid)) if valid.size else 0.0
        dead = normalised < centre - config.dead_sigma * spread
    else:
        dead = normalised < config.dead_threshold
    neighbour_mean = ndimage.convolve(normalised, _NEIGHBOURS / 8.0, mode="nearest")
    open_pixels = (normalised <= config.open_threshold) & \
        (neighbour_mean > config.adj_open_threshold)
    adjacent = ndimage.binary_dilation(open_pixels, structure=np.ones((3, 3), bool)) & \
        ~open_pixels
    low_qe = (normalised < config.low_qe_threshold) & ~dead
    return {"DEAD": dead & ~open_pixels, "LOW_QE": low_qe & ~open_pixels,
            "OPEN": open_pixels, "ADJ_OPEN": adjacent}
