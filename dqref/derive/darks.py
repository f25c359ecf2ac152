"""Bad pixels from dark count rates: HOT, WARM and UNRELIABLE_SLOPE (numpy only)."""

from __future__ import annotations

import numpy as np
from astropy.stats import mad_std


def dark_defects(mean_rate: np.ndarray, scatter: np.ndarray | None, config) -> dict[str,
                                                                                  np.ndarray]:
    """Return boolean masks {flag name: pixels} from the mean dark rate and its scatter.

    HOT: rate > hot_threshold; WARM: warm_threshold < rate <= hot_threshold;
    UNRELIABLE_SLOPE: scatter across the darks more than noisy_sigma robust sigmas above
    its median (only when a scatter is given: three or more darks).
    """
    rate = np.nan_to_num(mean_rate, nan=0.0)
    found = {"HOT": rate > config.hot_threshold,
             "WARM": (rate > config.warm_threshold) & (rate <= config.hot_threshold)}
    if scatter is not None:
        typical = float(np.median(scatter))
        spread = float(mad_std(scatter))
        found["UNRELIABLE_SLOPE"] = scatter > typical + config.noisy_sigma * spread \
            if spread > 0 else np.zeros(scatter.shape, bool)
    return found
