"""Derive a DQ array from flats and darks: arrays in, flags out (no files, no CLI).

`derive_flags` combines each kind of image into a sigma-clipped mean (`combine`), runs the
flat rules (`flats`) and the dark rules (`darks`) inside the reference-pixel border
(`refpix`), and ORs each rule's flag, plus DO_NOT_USE where configured, into one uint32
array. Any pipeline can call it with numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from dqref import flags
from dqref.derive.combine import Progress, clipped_mean
from dqref.derive.config import DeriveConfig
from dqref.derive.darks import dark_defects
from dqref.derive.flats import flat_defects, normalise_flat
from dqref.derive.refpix import reference_border, science_region


@dataclass(frozen=True)
class DerivationResult:
    """The derived flags and what each rule found.

    Attributes
    ----------
    dq : numpy.ndarray of uint32
        The flags (each rule's flag, plus DO_NOT_USE for the flags in
        ``config.do_not_use``).
    rule_counts : dict of str to int
        Pixels each rule found, by flag name, in the order the rules ran; a pixel found
        by two rules counts for both. Rules that did not run (no flats, no darks, too few
        darks for the noise search, no border) are absent.
    levels : dict of str to float
        Levels the rules measured (clipped mean and sigma of the normalised flat and of the
        dark scatter, and the cuts derived from them).
    flat_count, dark_count : int
        Number of flat and dark images combined.
    """

    dq: np.ndarray
    rule_counts: dict[str, int] = field(default_factory=dict)
    levels: dict[str, float] = field(default_factory=dict)
    flat_count: int = 0
    dark_count: int = 0


def derive_flags(flat_images: Iterable = (), dark_images: Iterable = (),
                 config: DeriveConfig | None = None, shape: tuple[int, int] | None = None, *,
                 progress: Progress | None = None) -> DerivationResult:
    """Search flat and dark slope images for bad pixels; return a uint32 DQ array.

    Parameters
    ----------
    flat_images, dark_images : iterables of 2D array-likes
        Slope images (count rates); either may be empty. Each kind is combined by a
        sigma-clipped mean a block of rows at a time, so the images may be memory maps or
        lazy readers (anything with ``shape`` and row slicing). Not modified.
    config : DeriveConfig, optional
        Thresholds; the defaults of ``dqref/derive/defaults.toml`` if not given. A
        ``reference_border`` of None (the detector's width) means no border here: this
        function knows no detector.
    shape : (int, int), optional
        The output shape; every image must have it. Taken from the images if not given.
    progress : callable, optional
        ``progress(items, description)``, to show progress while combining.

    Returns
    -------
    DerivationResult

    Raises
    ------
    ValueError
        No images and no shape, images of different shapes or not of ``shape``, or a
        border too wide for the shape.

    Examples
    --------
    >>> import numpy as np
    >>> from dqref import flags
    >>> from dqref.derive import derive_flags
    >>> rng = np.random.default_rng(1)
    >>> flats = [rng.normal(1000, 10, (64, 64)).astype(np.float32) for _ in range(3)]
    >>> for flat in flats:
    ...     flat[20, 30] = 0.0
    >>> result = derive_flags(flats, [])
    >>> flags.names(int(result.dq[20, 30]))
    ['DO_NOT_USE', 'DEAD']
    """
    config = config or DeriveConfig()
    flat_images, dark_images = list(flat_images), list(dark_images)
    shape = _output_shape(flat_images, dark_images, shape)
    width = config.reference_border or 0
    science = science_region(shape, width)
    dq = np.zeros(shape, dtype=np.uint32)
    inside = dq[science]  # a view: flags ORed here land in dq
    rule_counts: dict[str, int] = {}
    levels: dict[str, float] = {}

    def apply(masks: dict[str, np.ndarray], where: np.ndarray) -> None:
        for name, pixels in masks.items():
            bits = flags.value(name)
            if name in config.do_not_use:
                bits |= flags.PIXEL["DO_NOT_USE"]
            where[pixels] |= np.uint32(bits)
            rule_counts[name] = int(np.count_nonzero(pixels))

    if flat_images:
        flat = clipped_mean(flat_images, config.clip_sigma, config.clip_iterations,
                            config.rows_per_block, progress=progress,
                            description="combining flats")
        normalised = normalise_flat(flat.mean[science], config.smoothing, config.smoothing_size)
        del flat
        masks, found = flat_defects(normalised, config)
        del normalised
        apply(masks, inside)
        levels.update(found)
        del masks
    if dark_images:
        noise_search = len(dark_images) >= config.noisy_min_images
        dark = clipped_mean(dark_images, config.clip_sigma, config.clip_iterations,
                            config.rows_per_block, with_scatter=noise_search,
                            progress=progress, description="combining darks")
        scatter = dark.scatter[science] if noise_search else None
        masks, found = dark_defects(dark.mean[science], scatter, config)
        del dark, scatter
        apply(masks, inside)
        levels.update(found)
        del masks
    if width:
        apply({"REFERENCE_PIXEL": reference_border(shape, width)}, dq)
    return DerivationResult(dq, rule_counts, levels, len(flat_images), len(dark_images))


def _output_shape(flat_images: list, dark_images: list,
                  shape: tuple[int, int] | None) -> tuple[int, int]:
    """Return the shape every image shares (and ``shape``, if given), or raise naming one."""
    for kind, images in (("flat", flat_images), ("dark", dark_images)):
        for index, image in enumerate(images):
            found = tuple(np.shape(image))
            if len(found) != 2:
                raise ValueError(f"{kind} image {index} is not 2D: shape {found}")
            if shape is None:
                shape = found
            elif found != tuple(shape):
                raise ValueError(f"{kind} image {index} has shape {found}, expected "
                                 f"{tuple(shape)}")
    if shape is None:
        raise ValueError("give at least one image, or the shape of the output")
    return tuple(shape)
