"""Bad pixels from a flat field: DEAD, LOW_QE, OPEN, ADJ_OPEN and UNRELIABLE_FLAT (numpy only).

The mean flat is divided by a smoothed copy of itself, so illumination and large-scale QE
variations disappear and 1 means "responds like its surroundings". The rules then read
this normalised flat (after jwst_reffiles ``badpix_from_flats``; docs/derive.md):

* detection: only pixels more than ``low_sigma`` sigma below the clipped mean of the
  normalised flat can be DEAD, LOW_QE or OPEN (noise is never a defect).
* DEAD: detected and below ``dead_threshold`` (``dead_search = "threshold"``), or every
  detected pixel (``"sigma"``, jwst_reffiles "sigma_rate").
* OPEN: detected, below ``low_qe_threshold``, and its 4 nearest neighbours all above
  ``open_adjacent_threshold`` (the charge went next door); its 8 neighbours are ADJ_OPEN.
  OPEN takes precedence: such a pixel is neither DEAD nor LOW_QE.
* LOW_QE: detected, below ``low_qe_threshold``, neither DEAD nor OPEN.
* UNRELIABLE_FLAT: no finite value in any flat (nothing was measured).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dqref.derive.combine import clipped_statistics

# The 4 nearest neighbours (not the pixel itself), as in jwst_reffiles' OPEN search.
_NEAREST = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=bool)
_AROUND = np.ones((3, 3), dtype=bool)


def normalise_flat(flat: np.ndarray, smoothing: str = "box", size: int = 15) -> np.ndarray:
    """Return the flat divided by a smoothed copy of itself (float32; 1 = typical).

    Parameters
    ----------
    flat : numpy.ndarray
        A 2D mean flat (count rates). Not modified.
    smoothing : {"box", "median"}
        `scipy.ndimage.uniform_filter` or `scipy.ndimage.median_filter`.
    size : int
        Width of the smoothing window in pixels.

    Returns
    -------
    numpy.ndarray of float32
        NaN where the flat is not finite or the smoothed flat is not positive.
    """
    flat = np.asarray(flat, dtype=np.float32)
    finite = np.isfinite(flat)
    # A missing pixel would spread NaN over its whole window: stand in the typical value.
    typical = np.float32(np.median(flat[finite])) if finite.any() else np.float32(0)
    filled = np.where(finite, flat, typical)
    if smoothing == "median":
        smooth = ndimage.median_filter(filled, size=size, mode="reflect")
    elif smoothing == "box":
        smooth = ndimage.uniform_filter(filled, size=size, mode="reflect")
    else:
        raise ValueError(f"smoothing must be 'box' or 'median', not {smoothing!r}")
    del filled
    normalised = np.full(flat.shape, np.nan, dtype=np.float32)
    np.divide(flat, smooth, out=normalised, where=finite & (smooth > 0))
    return normalised


def flat_defects(normalised: np.ndarray, config) -> tuple[dict[str, np.ndarray],
                                                         dict[str, float]]:
    """Find the bad pixels of a normalised flat.

    Parameters
    ----------
    normalised : numpy.ndarray
        From `normalise_flat` (NaN: no measurement). Not modified.
    config : DeriveConfig
        Uses ``low_sigma``, ``dead_search``, ``dead_threshold``, ``low_qe_threshold``,
        ``open_adjacent_threshold``, ``clip_sigma`` and ``clip_iterations``.

    Returns
    -------
    masks : dict of str to numpy.ndarray of bool
        ``{"DEAD", "LOW_QE", "OPEN", "ADJ_OPEN", "UNRELIABLE_FLAT"}``: the pixels each rule
        found, of the shape of ``normalised``.
    levels : dict of str to float
        What the rules measured: the clipped mean and sigma of the normalised flat and the
        detection cut, for the summary and HISTORY.
    """
    finite = np.isfinite(normalised)
    mean, sigma = clipped_statistics(normalised, config.clip_sigma, config.clip_iterations)
    cut = mean - config.low_sigma * sigma
    detected = normalised < cut
    dead = detected & (normalised < config.dead_threshold) if config.dead_search == "threshold" \
        else detected
    low = detected & (normalised < config.low_qe_threshold)
    # Neighbours outside the array do not count against OPEN; unmeasured ones do.
    neighbours = np.where(finite, normalised, -np.inf)
    lowest_neighbour = ndimage.minimum_filter(neighbours, footprint=_NEAREST, mode="constant",
                                              cval=np.inf)
    del neighbours
    open_pixels = low & (lowest_neighbour > config.open_adjacent_threshold)
    del lowest_neighbour
    adjacent = ndimage.binary_dilation(open_pixels, structure=_AROUND) & ~open_pixels
    masks = {
        "DEAD": dead & ~open_pixels,
        "LOW_QE": low & ~dead & ~open_pixels,
        "OPEN": open_pixels,
        "ADJ_OPEN": adjacent,
        "UNRELIABLE_FLAT": ~finite,
    }
    levels = {"flat normalised mean": mean, "flat normalised sigma": sigma,
              "flat detection cut": cut}
    return masks, levels

