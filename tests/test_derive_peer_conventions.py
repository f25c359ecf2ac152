"""Where `dqref derive` follows jwst_reffiles and where it chooses otherwise, on purpose.

docs/derive.md ("Conventions shared with jwst_reffiles, and where we differ") gives the
reasons; each test here pins one of those statements.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dqref.derive import DeriveConfig
from dqref.derive.combine import clipped_mean
from dqref.derive.darks import dark_defects
from dqref.derive.flats import flat_defects, normalise_flat

CONFIG = DeriveConfig()


def noisy_flat(shape=(64, 64), noise=0.005, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (1.0 + noise * rng.standard_normal(shape)).astype(np.float32)


# -- OPEN: all 4 edge neighbours above the threshold, as jwst_reffiles -------------------------
def test_open_needs_all_four_edge_neighbours_above_the_threshold_not_their_mean():
    normalised = noisy_flat()
    normalised[20, 20] = 0.3
    normalised[19, 20] = normalised[21, 20] = normalised[20, 19] = 1.3  # mean of 8 > 1.05
    normalised[20, 21] = 1.0  # but one edge neighbour is ordinary
    masks, _ = flat_defects(normalised, CONFIG)
    assert not masks["OPEN"][20, 20] and masks["LOW_QE"][20, 20]


def test_open_with_four_bright_edge_neighbours_and_dim_diagonals():
    normalised = noisy_flat()
    normalised[30, 30] = 0.3
    for y, x in ((29, 30), (31, 30), (30, 29), (30, 31)):
        normalised[y, x] = 1.08
    for y, x in ((29, 29), (29, 31), (31, 29), (31, 31)):
        normalised[y, x] = 0.9  # the mean of the 8 neighbours is below 1.05
    masks, _ = flat_defects(normalised, CONFIG)
    assert masks["OPEN"][30, 30] and not masks["LOW_QE"][30, 30]


def test_open_at_the_edge_of_the_searched_region_needs_only_its_inside_neighbours():
    # jwst_reffiles' get_adjacent_pixels returns only the neighbours inside the array
    normalised = noisy_flat()
    normalised[0, 10] = 0.3
    normalised[1, 10] = normalised[0, 9] = normalised[0, 11] = 1.2
    masks, _ = flat_defects(normalised, CONFIG)
    assert masks["OPEN"][0, 10]


# -- normalise: edges reflected, not filled with the image median ------------------------------
def vignetted_flat(shape=(64, 256)) -> np.ndarray:
    """Illumination falling from 1 at the centre to 0.7 at the left and right edges."""
    x = np.linspace(-1.0, 1.0, shape[1], dtype=np.float32)
    return np.broadcast_to(1.0 - 0.3 * x**2, shape).astype(np.float32) * 1000.0


def test_a_vignetted_edge_normalises_to_about_one():
    # 30% of fall-off over 128 columns, much steeper than a real flat: still within 2.5%
    normalised = normalise_flat(vignetted_flat(), "box", 15)
    assert np.abs(normalised - 1.0).max() < 0.025


def test_filling_the_edge_with_the_median_would_make_a_vignetted_edge_look_low():
    # What jwst_reffiles' Box2D smoothing does (boundary="fill", the image median): the
    # edge columns come out about 10% low, far below a 1% flat's detection cut.
    flat = vignetted_flat()
    filled = ndimage.uniform_filter(flat, size=15, mode="constant", cval=np.median(flat))
    assert (flat / filled)[:, 0].max() < 0.92


def test_a_low_qe_column_on_the_edge_is_still_found():
    # With mode="nearest" the edge column would fill 8 of its window's 15 columns and
    # normalise itself back towards 1 (0.4 -> 0.59, not LOW_QE); reflected, it fills 2.
    flat = noisy_flat(seed=5) * 1000.0
    flat[:, 0] *= 0.4
    masks, _ = flat_defects(normalise_flat(flat, "box", 15), CONFIG)
    assert masks["LOW_QE"][:, 0].all()
    nearest = flat / ndimage.uniform_filter(flat, size=15, mode="nearest")
    assert (nearest[:, 0] > CONFIG.low_qe_threshold).all()


# -- the dark scatter: sample standard deviation (ddof=1) ---------------------------------------
def test_the_dark_scatter_is_the_sample_standard_deviation():
    darks = [np.full((2, 2), value, np.float32) for value in (1.0, 2.0, 3.0, 4.0, 5.0)]
    combined = clipped_mean(darks, sigma=10.0, with_scatter=True)
    np.testing.assert_allclose(combined.scatter, np.std([1, 2, 3, 4, 5], ddof=1), rtol=1e-6)


def test_the_noise_rule_does_not_depend_on_the_ddof_when_every_pixel_has_all_its_darks():
    # ddof scales every pixel's scatter by the same factor, and the cut scales with it.
    rng = np.random.default_rng(8)
    scatter = np.abs(rng.normal(0.01, 0.002, (128, 128))).astype(np.float32)
    scatter[5, 5] = scatter[60, 70] = 0.05
    mean_rate = np.full(scatter.shape, 0.01, np.float32)
    ddof1, _ = dark_defects(mean_rate, scatter, CONFIG)
    ddof0, _ = dark_defects(mean_rate, scatter * np.float32(np.sqrt(4 / 5)), CONFIG)
    np.testing.assert_array_equal(ddof0["UNRELIABLE_SLOPE"], ddof1["UNRELIABLE_SLOPE"])
    assert ddof1["UNRELIABLE_SLOPE"][5, 5] and ddof1["UNRELIABLE_SLOPE"][60, 70]
