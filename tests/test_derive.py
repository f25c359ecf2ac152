"""Deriving masks: planted defects are found with the right flags; clean noise stays clean."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from dqref import DQModel, flags
from dqref.cli import app
from dqref.derive import (
    DeriveConfig,
    DeriveConfigError,
    DeriveInputError,
    derive_flags,
    derive_reference,
)

SHAPE = (256, 256)
DEAD, LOW_QE, OPEN, ADJ_OPEN = (200, 30), (40, 50), (100, 100), (101, 101)
HOT, WARM, NOISY = (10, 200), (220, 20), (128, 64)


def planted_flats(count=5, seed=0, plant=True):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SHAPE[0], :SHAPE[1]]
    illumination = 1000.0 * (1 + 0.2 * x / SHAPE[1])      # a smooth gradient
    images = []
    for _ in range(count):
        image = illumination * rng.normal(1.0, 0.01, SHAPE)
        if plant:
            image[DEAD] = 0.0
            image[LOW_QE] *= 0.3
            image[OPEN] *= 0.2
            image[OPEN[0] - 1:OPEN[0] + 2, OPEN[1] - 1:OPEN[1] + 2] *= 1.3
            image[OPEN] = illumination[OPEN] * 0.2
        images.append(image.astype(np.float32))
    return images


def planted_darks(count=5, seed=1, plant=True):
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        image = rng.normal(0.01, 0.005, SHAPE)
        if plant:
            image[HOT] = 5.0
            image[WARM] = 0.5
            image[NOISY] = 0.01 + (0.5 if index % 2 else -0.5)
        images.append(image.astype(np.float32))
    return images


@pytest.fixture(scope="module")
def config():
    return DeriveConfig.load()


def test_each_planted_defect_gets_its_flag(config):
    result = derive_flags(planted_flats(), planted_darks(), config, SHAPE, border_width=4)
    dq = result.dq
    dnu = flags.PIXEL["DO_NOT_USE"]
    assert dq[DEAD] == flags.PIXEL["DEAD"] | dnu
    assert dq[LOW_QE] == flags.PIXEL["LOW_QE"]
    assert dq[OPEN] == flags.PIXEL["OPEN"] | dnu
    assert dq[ADJ_OPEN] == flags.PIXEL["ADJ_OPEN"]
    assert dq[HOT] == flags.PIXEL["HOT"] | dnu
    assert dq[WARM] == flags.PIXEL["WARM"]
    assert dq[NOISY] & flags.PIXEL["UNRELIABLE_SLOPE"]
    assert (dq[:4, :] & flags.PIXEL["REFERENCE_PIXEL"]).all()
    assert not (dq[4:-4, 4:-4] & flags.PIXEL["REFERENCE_PIXEL"]).any()
    assert result.rule_counts["ADJ_OPEN"] == 8 and result.rule_counts["OPEN"] == 1


def test_false_positives_on_clean_noise_are_rare(config):
    result = derive_flags(planted_flats(plant=False), planted_darks(plant=False), config, SHAPE)
    false_positives = int(np.count_nonzero(result.dq))
    print(f"false positives on {SHAPE[0] * SHAPE[1]} clean pixels: {false_positives}")
    assert false_positives <= 5   # 65536 pixels at 5-sigma thresholds


def test_dead_by_sigma_finds_the_dead_pixel(config):
    sigma = DeriveConfig(**{**vars(config), "dead_search": "sigma"})
    result = derive_flags(planted_flats(), [], sigma, SHAPE)
    assert result.dq[DEAD] & flags.PIXEL["DEAD"]


def test_inputs_are_not_modified(config):
    flats = planted_flats(count=3)
    copies = [f.copy() for f in flats]
    derive_flags(flats, [], config, SHAPE)
    assert all(np.array_equal(a, b) for a, b in zip(flats, copies, strict=True))


@pytest.mark.parametrize(("text", "words"), [
    ("[flats]\nlow_qe_threshold = 2.0\n", "low_qe_threshold"),
    ("[flats]\ncolour = 1\n", "unknown key 'colour'"),
    ("[nope]\nx = 1\n", "unknown section [nope]"),
    ("[flags]\ndo_not_use = ['DEADISH']\n", "DEADISH"),
    ("[flats]\nsmoothing = 'gaussian'\n", "smoothing"),
])
def test_bad_config_values_are_clear_errors(tmp_path, text, words):
    (tmp_path / "derive.toml").write_text(text)
    with pytest.raises(DeriveConfigError) as error:
        DeriveConfig.load(tmp_path / "derive.toml")
    assert words in str(error.value) and "derive.toml" in str(error.value)


# -- files ------------------------------------------------------------------------------
def full_frame_images(folder, kind, count, detector="IRIS1", seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        if kind == "flat":
            image = rng.normal(1000.0, 10.0, (4096, 4096)).astype(np.float32)
            image[2000, 3000] = 0.0
        else:
            image = rng.normal(0.01, 0.005, (4096, 4096)).astype(np.float32)
            image[1000, 1000] = 5.0
        header = fits.Header({"INSTRUME": "IRIS", "DETECTOR": detector})
        path = folder / f"{kind}{index}.fits"
        fits.HDUList([fits.PrimaryHDU(header=header),
                      fits.ImageHDU(image, name="SCI")]).writeto(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("derive")
    return folder, full_frame_images(folder, "flat", 2), full_frame_images(folder, "dark", 2)


def test_cli_derive_writes_a_valid_reference_with_provenance(files):
    folder, flat_paths, dark_paths = files
    (folder / "manual.txt").write_text("5 6 WARM\n")
    out = folder / "derived.fits"
    result = CliRunner().invoke(app, ["derive", str(out), "-i", "IRIS", "-d", "IRIS1",
                                      "--flats", str(flat_paths[0]), "--flats",
                                      str(flat_paths[1]), "--darks", str(dark_paths[0]),
                                      "--darks", str(dark_paths[1]), "--flags",
                                      str(folder / "manual.txt"), "--useafter", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "pixels found per rule:" in result.output and "HOT" in result.output
    model = DQModel.read(out)
    assert model.dq[2000, 3000] & flags.PIXEL["DEAD"]
    assert model.dq[1000, 1000] == flags.PIXEL["HOT"] | flags.PIXEL["DO_NOT_USE"]
    assert model.dq[6, 5] & flags.PIXEL["WARM"]
    history = "\n".join(model.meta.history)
    assert "flat: flat0.fits" in history and "dark: dark1.fits" in history
    assert "derive setting hot_threshold = 1.0" in history and "dqref" in history
    assert not [f for f in model.validate() if f.is_error]
    assert CliRunner().invoke(app, ["validate", str(out)]).exit_code == 0


def test_inputs_of_another_detector_or_shape_are_refused_by_name(files, tmp_path):
    _, flat_paths, _ = files
    other = full_frame_images(tmp_path, "flat", 1, detector="IRIS2")[0]
    with pytest.raises(DeriveInputError, match=r"flat0.fits: DETECTOR is IRIS2"):
        derive_reference("IRIS", "IRIS1", flats=[flat_paths[0], other])
    fits.PrimaryHDU(np.zeros((10, 10), np.float32)).writeto(tmp_path / "tiny.fits")
    with pytest.raises(DeriveInputError, match="tiny.fits: image shape"):
        derive_reference("IRIS", "IRIS1", darks=[tmp_path / "tiny.fits"])


def test_noisy_pixels_are_only_searched_with_three_darks_or_more(config):
    two = derive_flags([], planted_darks(count=2), config, SHAPE)
    assert "UNRELIABLE_SLOPE" not in two.rule_counts
    assert not (two.dq & flags.PIXEL["UNRELIABLE_SLOPE"]).any()
    three = derive_flags([], planted_darks(count=3), config, SHAPE)
    assert "UNRELIABLE_SLOPE" in three.rule_counts


def test_a_3d_stack_counts_as_several_images(tmp_path):
    rng = np.random.default_rng(5)
    stack = rng.normal(0.01, 0.005, (3, 4096, 4096)).astype(np.float32)
    stack[:, 1000, 1000] = 5.0
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"INSTRUME": "IRIS", "DETECTOR": "IRIS1"})),
                  fits.ImageHDU(stack, name="SCI")]).writeto(tmp_path / "darks.fits")
    model, summary = derive_reference("IRIS", "IRIS1", darks=[tmp_path / "darks.fits"])
    assert model.dq[1000, 1000] == flags.PIXEL["HOT"] | flags.PIXEL["DO_NOT_USE"]
    assert "UNRELIABLE_SLOPE" in summary.rule_counts     # 3 images: the noise search ran
