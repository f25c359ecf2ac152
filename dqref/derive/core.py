"""Derive a DQ array from flats and darks: arrays in, flags out (no files, no CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dqref import flags
from dqref.derive.combine import clipped_mean_and_scatter
from dqref.derive.darks import dark_defects
from dqref.derive.flats import flat_defects, normalise
from dqref.derive.refpix import reference_border

#: UNRELIABLE_SLOPE is searched only with at least this many dark images.
MIN_DARKS_FOR_NOISE = 3


@dataclass(frozen=True)
class DerivationResult:
    """The derived flags and how many pixels each rule found."""

    dq: np.ndarray
    rule_counts: dict[str, int] = field(default_factory=dict)


def derive_flags(flat_images: Sequence[np.ndarray], dark_images: Sequence[np.ndarray], config,
                 shape: tuple[int, int], border_width: int = 0) -> DerivationResult:
    """Search flats and darks for bad pixels and return a uint32 DQ array.

    Parameters
    ----------
    flat_images, dark_images : sequences of 2D arrays
        Slope images (count rates) of ``shape``; either may be empty. Combined by a
        sigma-clipped mean, a block of rows at a time; not modified.
    config : DeriveConfig
        Thresholds.
    shape : (int, int)
        The output shape.
    border_width : int
        Reference-pixel border to flag REFERENCE_PIXEL (0: none).

    Returns
    -------
    DerivationResult
        ``rule_counts`` has one entry per rule (pixels it found, before DO_NOT_USE).
    """
    found: dict[str, np.ndarray] = {}
    if flat_images:
        flat, _ = clipped_mean_and_scatter(flat_images, config.clip_sigma, config.rows_per_block)
        found.update(flat_defects(normalise(flat, config.smoothing, config.smoothing_size),
                                  config))
    if dark_images:
        rate, scatter = clipped_mean_and_scatter(dark_images, config.clip_sigma,
                                                 config.rows_per_block)
        # The scatter of two values is itself too noisy to judge a pixel by: 3 darks at least.
        noisy_search = len(dark_images) >= MIN_DARKS_FOR_NOISE
        found.update(dark_defects(rate, scatter if noisy_search else None, config))
    if border_width:
        found["REFERENCE_PIXEL"] = reference_border(shape, border_width)
    dq = np.zeros(shape, np.uint32)
    for name, pixels in found.items():
        bits = flags.value(name)
        if name in config.do_not_use:
            bits |= flags.PIXEL["DO_NOT_USE"]
        dq[pixels] |= np.uint32(bits)
    return DerivationResult(dq, {name: int(np.count_nonzero(p)) for name, p in found.items()})
