"""Bad pixels from dark count rates: HOT, WARM, UNRELIABLE_SLOPE and UNRELIABLE_DARK (numpy only).

* HOT: mean dark rate above ``hot_threshold``.
* WARM: mean dark rate above ``warm_threshold`` and not above ``hot_threshold``.
* UNRELIABLE_SLOPE: the pixel's rate scatters across the darks more than ``noisy_sigma``
  sigma above the clipped mean scatter of all pixels (jwst_reffiles
  ``badpix_from_darks``); only when a scatter is given (enough dark images).
* UNRELIABLE_DARK: no finite rate in any dark (nothing was measured).
"""

from __future__ import annotations

import numpy as np

from dqref.derive.combine import clipped_statistics


def dark_defects(mean_rate: np.ndarray, scatter: np.ndarray | None,
                 config) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Find the bad pixels of a mean dark rate image and its scatter.

    Parameters
    ----------
    mean_rate : numpy.ndarray
        Sigma-clipped mean of the dark slope images (NaN: no measurement). Not modified.
    scatter : numpy.ndarray or None
        Per-pixel standard deviation of the dark rates across the images; None skips the
        UNRELIABLE_SLOPE search. Not modified.
    config : DeriveConfig
        Uses ``hot_threshold``, ``warm_threshold``, ``noisy_sigma``, ``clip_sigma`` and
        ``clip_iterations``.

    Returns
    -------
    masks : dict of str to numpy.ndarray of bool
        ``{"HOT", "WARM", "UNRELIABLE_DARK"}`` and, with a scatter, ``"UNRELIABLE_SLOPE"``.
    levels : dict of str to float
        The clipped mean and sigma of the scatter and the UNRELIABLE_SLOPE cut (with a
        scatter), for the summary and HISTORY.
    """
    masks = {
        "HOT": mean_rate > config.hot_threshold,
        "WARM": (mean_rate > config.warm_threshold) & (mean_rate <= config.hot_threshold),
        "UNRELIABLE_DARK": ~np.isfinite(mean_rate),
    }
    levels: dict[str, float] = {}
    if scatter is not None:
        mean, sigma = clipped_statistics(scatter, config.clip_sigma, config.clip_iterations)
        cut = mean + config.noisy_sigma * sigma
        masks["UNRELIABLE_SLOPE"] = scatter > cut
        levels = {"dark scatter mean": mean, "dark scatter sigma": sigma,
                  "UNRELIABLE_SLOPE cut": cut}
    return masks, levels
