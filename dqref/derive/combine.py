"""Combine several slope images pixel by pixel: a sigma-clipped mean, a block of rows at a time.

Only ``rows_per_block`` rows of every image are in memory at once: ten 4096 x 4096 float32
images read from files never become a 671 MB stack (nor its float64 copies).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clip, sigma_clipped_stats
from astropy.utils.exceptions import AstropyUserWarning

#: Image statistics use at most this many pixels: a clipped mean and sigma of 2**22 values
#: are known to 0.1%, and clipping all 16.7 million pixels of a full frame took 1.6 s.
STATISTICS_SAMPLE = 2**22
#: ``progress(items, description)`` -> the same items (e.g. wrapped in a progress bar).
Progress = Callable[[Iterable, str], Iterable]


@dataclass(frozen=True)
class CombinedImage:
    """The per-pixel result of combining ``count`` images.

    Attributes
    ----------
    mean : numpy.ndarray of float32
        Sigma-clipped mean; NaN where no image has a finite value.
    scatter : numpy.ndarray of float32 or None
        Sample standard deviation (ddof=1) of each pixel's values across the images; NaN
        where fewer than two are finite. None unless asked for.
    count : int
        Number of images combined.
    """

    mean: np.ndarray
    scatter: np.ndarray | None
    count: int


def clipped_mean(images: Sequence, sigma: float = 3.0, iterations: int = 5,
                 rows_per_block: int = 256, with_scatter: bool = False,
                 progress: Progress | None = None,
                 description: str = "combining") -> CombinedImage:
    """Return the sigma-clipped mean (and scatter) of 2D images of one shape.

    Each pixel's values across the images are clipped with `astropy.stats.sigma_clip`
    (median centre, at most ``iterations`` passes); non-finite values are ignored.

    * The mean is clipped with the MAD-based sigma (``mad_std``). With the standard
      deviation as sigma, one outlier among N values lies at most (N - 1) / sqrt(N) sigma
      from the rest (2.85 for N = 10), so a 3-sigma clip would never reject a lone cosmic
      ray among ten images or fewer.
    * The scatter is clipped with the standard deviation as sigma. A robust sigma would
      clip away the very thing the noise search looks for: a pixel that jumps between two
      levels (random telegraph noise) has a MAD of its quieter level only.

    Parameters
    ----------
    images : sequence of 2D array-likes
        Anything with a ``shape`` and row slicing (``image[start:stop]``): numpy arrays,
        memory maps, or `dqref.derive.inputs.SlopeImage` readers. Not modified.
    sigma, iterations : float, int
        Clipping threshold and maximum number of passes.
    rows_per_block : int
        Rows of every image held in memory at once.
    with_scatter : bool
        Also return the per-pixel scatter (needs at least two images).
    progress : callable, optional
        ``progress(blocks, description)`` wrapper for a progress bar.

    Raises
    ------
    ValueError
        No images, an image that is not 2D, or images of different shapes (the message
        gives the index of the first odd one).
    """
    images = list(images)
    shape = common_shape(images)
    rows, columns = shape
    mean = np.empty(shape, dtype=np.float32)
    scatter = np.empty(shape, dtype=np.float32) if with_scatter and len(images) > 1 else None
    blocks = range(0, rows, rows_per_block)
    for start in progress(blocks, description) if progress else blocks:
        stop = min(rows, start + rows_per_block)
        block = np.stack([np.asarray(image[start:stop], dtype=np.float32) for image in images])
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            # NaN slopes (failed ramp fits) are expected: sigma_clip masks them, and says so.
            warnings.simplefilter("ignore", AstropyUserWarning)
            clipped = _clip(block, sigma, iterations, "mad_std")
            mean[start:stop] = clipped.mean(axis=0).filled(np.nan)
            if scatter is not None:
                clipped = _clip(block, sigma, iterations, "std")
                scatter[start:stop] = clipped.std(axis=0, ddof=1).filled(np.nan)
        del block, clipped
    return CombinedImage(mean, scatter, len(images))


def _clip(block: np.ndarray, sigma: float, iterations: int, stdfunc: str) -> np.ma.MaskedArray:
    return sigma_clip(block, sigma=sigma, maxiters=iterations, axis=0, cenfunc="median",
                      stdfunc=stdfunc, masked=True, copy=False)


def common_shape(images: Sequence) -> tuple[int, int]:
    """Return the shape shared by every image, or raise ValueError naming the odd one."""
    if not images:
        raise ValueError("no images to combine")
    shape = tuple(images[0].shape)
    for index, image in enumerate(images):
        if len(image.shape) != 2:
            raise ValueError(f"image {index} is not 2D: shape {tuple(image.shape)}")
        if tuple(image.shape) != shape:
            raise ValueError(f"image {index} has shape {tuple(image.shape)}; image 0 has "
                             f"{shape}")
    return shape


def clipped_statistics(image: np.ndarray, sigma: float = 3.0, iterations: int = 5,
                       sample_size: int = STATISTICS_SAMPLE) -> tuple[float, float]:
    """Return the sigma-clipped mean and standard deviation of an image's finite pixels.

    `astropy.stats.sigma_clipped_stats` (median centre) of at most ``sample_size`` finite
    pixels: a regular sample with an odd step, which visits every column of an
    even-width image. (NaN, NaN) if no pixel is finite.
    """
    values = image[np.isfinite(image)]
    if values.size == 0:
        return float("nan"), float("nan")
    step = -(-values.size // sample_size)
    values = values[::step + 1 - step % 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        mean, _, deviation = sigma_clipped_stats(values, sigma=sigma, maxiters=iterations)
    return float(mean), float(deviation)
