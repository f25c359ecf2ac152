"""`dqref derive` on FITS files: inputs checked, defects found, provenance kept, output usable.

One full-frame derivation (2 flats in SCI extensions, a 3-plane dark stack in a primary
HDU) is run once through the command and shared read-only; every error path fails before
any pixel is combined, so it uses small files.
"""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
import typer
from astropy.io import fits
from typer.testing import CliRunner

from dqref import DQModel, __version__, flags
from dqref.cache.local_cache import LocalCache
from dqref.derive import DeriveConfig, DeriveConfigError, DeriveInputError, derive_reference
from dqref.derive.command import DeriveCommand, derive_command
from dqref.derive.inputs import SlopeFile, disagreements, open_slope_file
from dqref.detectors import get_detector
from dqref.errors import ManualFlagsError, UnknownDetectorError

FULL = (4096, 4096)
DEAD, LOW_QE, HOT, WARM, NOISY, MANUAL = (2000, 3000), (1000, 1000), (3000, 2000), \
    (100, 100), (1500, 1500), (6, 5)
DNU = flags.value("DO_NOT_USE")
HEADER = {"INSTRUME": "IRIS", "DETECTOR": "IRIS1"}


def app() -> typer.Typer:
    """The derive command on an app of its own, as `dqref` registers it."""
    application = typer.Typer(add_completion=False)
    application.callback()(lambda: None)  # a group, so the command is called by its name
    application.command("derive", cls=DeriveCommand)(derive_command)
    return application


def write_slopes(path, data, header=HEADER, extension="SCI"):
    """Write slope data to ``path``: in an ``extension`` HDU, or the primary if None."""
    primary_header = fits.Header(header)
    if extension is None:
        fits.PrimaryHDU(data, header=primary_header).writeto(path)
    else:
        fits.HDUList([fits.PrimaryHDU(header=primary_header),
                      fits.ImageHDU(data, name=extension)]).writeto(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two full-frame flats and one 3-plane dark stack, with planted defects (read-only)."""
    folder = tmp_path_factory.mktemp("derive_inputs")
    rng = np.random.default_rng(11)
    flats = []
    for index in range(2):
        flat = rng.standard_normal(FULL, dtype=np.float32)
        flat *= 10.0
        flat += 1000.0
        flat[DEAD] = 0.0
        flat[LOW_QE] *= 0.3
        flats.append(write_slopes(folder / f"flat{index}.fits", flat))
        del flat
    darks = rng.standard_normal((3, *FULL), dtype=np.float32)
    darks *= 0.005
    darks += 0.01
    darks[:, HOT[0], HOT[1]] = 5.0
    darks[:, WARM[0], WARM[1]] = 0.5
    darks[:, NOISY[0], NOISY[1]] = [0.11, -0.09, 0.11]
    dark_stack = write_slopes(folder / "darks.fits", darks, extension=None)
    del darks
    manual = folder / "manual.txt"
    manual.write_text(f"# x y flag\n{MANUAL[1]} {MANUAL[0]} WARM\n"
                      f"{HOT[1]} {HOT[0]} TELEGRAPH\n")
    settings = folder / "derive.toml"
    settings.write_text("[darks]\nwarm_threshold = 0.2\n")
    return folder, flats, dark_stack, manual, settings


@pytest.fixture(scope="module")
def derived(inputs):
    """Run ``dqref derive`` once; return (CLI result, written model, output path)."""
    folder, flats, dark_stack, manual, settings = inputs
    output = folder / "iris1_mask.fits"
    result = CliRunner().invoke(app(), [
        "derive", str(output), "--instrument", "IRIS", "--detector", "IRIS1",
        "--flats", str(flats[0]), str(flats[1]), "--darks", str(dark_stack),  # as a glob expands
        "--flags", str(manual), "--config", str(settings), "--useafter", "2026-01-01",
        "--pedigree", "GROUND", "--author", "Test Author", "--description", "derived in a test"])
    assert result.exit_code == 0, result.output
    return result, DQModel.read(output), output


# -- the derived reference --------------------------------------------------------------------
def test_planted_defects_in_files_get_their_flags(derived):
    _, model, _ = derived
    assert model.dq[DEAD] == flags.value("DEAD") | DNU
    assert model.dq[LOW_QE] == flags.value("LOW_QE")
    assert model.dq[WARM] == flags.value("WARM")
    assert model.dq[NOISY] == flags.value("UNRELIABLE_SLOPE")


def test_manual_flags_are_ored_in_last(derived):
    _, model, _ = derived
    assert model.dq[MANUAL] == flags.value("WARM")
    assert model.dq[HOT] == flags.value("HOT") | DNU | flags.value("TELEGRAPH")


def test_the_detector_reference_border_is_flagged(derived):
    _, model, _ = derived
    reference = flags.value("REFERENCE_PIXEL")
    assert (model.dq[:4] & reference).all() and (model.dq[:, -4:] & reference).all()
    assert not (model.dq[4:-4, 4:-4] & reference).any()


def test_the_reference_is_valid_and_carries_the_metadata(derived):
    _, model, _ = derived
    assert not [f for f in model.validate() if f.is_error]
    # IRIS1 (asked for, and in the inputs' headers) is an alias of IMG1
    assert (model.meta.name, model.meta.detector, model.shape) == ("IRIS", "IMG1", FULL)
    assert model.meta.useafter.startswith("2026-01-01")
    assert (model.meta.author, model.meta.description) == ("Test Author", "derived in a test")


def test_history_records_version_inputs_every_setting_and_what_was_found(derived):
    _, model, _ = derived
    history = model.meta.history
    folder = derived[2].parent
    assert history[0].startswith(f"Derived by dqref {__version__} (dqref derive) from 2 flat "
                                 "and 3 dark images")
    assert f"flat: {folder / 'flat0.fits'} [SCI] 1 image" in history
    assert f"dark: {folder / 'darks.fits'} [PRIMARY] 3 images" in history
    for line in DeriveConfig(warm_threshold=0.2, reference_border=4).history():
        assert line in history
    assert "derive setting [darks] warm_threshold = 0.2" in history
    assert "rule DEAD found 1 pixels" in history and "rule HOT found 1 pixels" in history
    assert any(line.startswith("measured flat detection cut = ") for line in history)
    assert f"manual flags ORed in last: {folder / 'manual.txt'} (2 entries)" in history


def test_the_command_prints_what_each_rule_found_and_the_histogram(derived):
    result, model, output = derived
    text = result.output
    assert text.startswith(f"{output}: IRIS IMG1, derived from 2 flat and 3 dark images")
    assert "pixels found per rule:" in text and "levels measured:" in text
    assert re.search(r"^  DEAD +1$", text, re.MULTILINE)
    assert re.search(r"^  REFERENCE_PIXEL +65472$", text, re.MULTILINE)
    assert model.histogram().format_table() in text


def test_the_reference_goes_straight_into_a_cache(derived, tmp_path):
    _, _, output = derived
    cache = LocalCache(tmp_path / "cache")
    cache.init()
    added = cache.add(output)
    model = DQModel.read(output)
    assert cache.current_reference_for(model) == added.reference
    np.testing.assert_array_equal(DQModel.read(added.reference).dq, model.dq)


def test_an_existing_output_is_refused_before_any_work(derived):
    _, _, output = derived
    result = CliRunner().invoke(app(), ["derive", str(output), "-i", "IRIS", "-d", "IRIS1",
                                        "--darks", "does-not-matter.fits"])
    assert result.exit_code == 2
    assert "exists; refusing to overwrite it" in result.output


# -- reading slope files ----------------------------------------------------------------------
def test_a_slope_image_is_read_from_sci_a_block_of_rows_at_a_time(tmp_path):
    data = np.arange(12 * 5, dtype=np.float32).reshape(12, 5)
    path = write_slopes(tmp_path / "slope.fits", data)
    with _stack() as stack:
        slope_file = open_slope_file(path, stack)
        (image,) = slope_file.images
        assert (slope_file.extension, slope_file.detector, image.shape) == ("SCI", "IRIS1",
                                                                             (12, 5))
        np.testing.assert_array_equal(image[3:7], data[3:7])
        assert image[3:7].dtype == np.float32


def test_a_3d_stack_in_the_primary_hdu_gives_one_image_per_plane(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=np.float64).reshape(3, 4, 5)
    path = write_slopes(tmp_path / "stack.fits", data, extension=None)
    with _stack() as stack:
        slope_file = open_slope_file(path, stack)
        assert slope_file.extension == "PRIMARY" and len(slope_file.images) == 3
        np.testing.assert_array_equal(slope_file.images[2][1:3], data[2, 1:3])


def test_scaled_integer_slopes_are_read_as_physical_values(tmp_path):
    hdu = fits.ImageHDU(np.array([[0, 1], [2, 3]], dtype=np.int16), name="SCI")
    hdu.header.update({"BSCALE": 0.5, "BZERO": 10.0})
    path = tmp_path / "scaled.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with _stack() as stack:
        (image,) = open_slope_file(path, stack).images
        np.testing.assert_array_equal(image[0:2], [[10.0, 10.5], [11.0, 11.5]])


# -- inputs that are refused, naming the file ---------------------------------------------------
def test_an_input_of_another_detector_is_refused_by_name(tmp_path):
    other = write_slopes(tmp_path / "other.fits", np.zeros((8, 8), np.float32),
                         header={"INSTRUME": "IRIS", "DETECTOR": "IRIS2"})
    with pytest.raises(DeriveInputError) as error:
        derive_reference("IRIS", "IRIS1", darks=[other])
    assert f"{other}: DETECTOR is IRIS2, expected IMG1" in str(error.value)


def test_an_input_of_another_instrument_is_refused_by_name(tmp_path):
    other = write_slopes(tmp_path / "liger.fits", np.zeros((8, 8), np.float32),
                         header={"INSTRUME": "LIGER", "DETECTOR": "IMG"})
    with pytest.raises(DeriveInputError) as error:
        derive_reference("IRIS", "IRIS1", flats=[other])
    assert f"{other}: INSTRUME is LIGER, expected IRIS" in str(error.value)


def test_an_input_that_is_not_the_full_frame_is_refused_by_name(tmp_path):
    small = write_slopes(tmp_path / "small.fits", np.zeros((10, 12), np.float32))
    with pytest.raises(DeriveInputError) as error:
        derive_reference("IRIS", "IRIS1", flats=[small])
    assert f"{small}: image shape 10 x 12 differs from the IMG1 full frame 4096 x 4096" \
        in str(error.value)


def test_every_bad_input_is_reported_at_once(tmp_path, inputs):
    _, flats, _, _, _ = inputs
    other = write_slopes(tmp_path / "other.fits", np.zeros((8, 8), np.float32),
                         header={"INSTRUME": "IRIS", "DETECTOR": "IRIS2"})
    text = tmp_path / "notes.fits"
    text.write_text("not FITS at all\n" * 200)
    with pytest.raises(DeriveInputError) as error:
        derive_reference("IRIS", "IRIS1", flats=[flats[0], other],
                         darks=[text, tmp_path / "missing.fits", flats[0]])
    message = str(error.value)
    assert message.startswith("5 input problems: ")
    assert f"{other}: DETECTOR is IRIS2" in message and f"{other}: image shape 8 x 8" in message
    assert f"{text}: cannot be read as FITS" in message
    assert f"{tmp_path / 'missing.fits'}: no such file" in message
    assert f"{flats[0]}: given twice (as a flat and as a dark)" in message


def test_an_input_without_an_image_is_refused(tmp_path):
    cube = write_slopes(tmp_path / "ramp.fits", np.zeros((2, 2, 4, 4), np.float32))
    with pytest.raises(DeriveInputError, match=r"ramp.fits: SCI has 4D data; expected a 2D "
                                               "slope image or a 3D stack"):
        derive_reference("IRIS", "IRIS1", darks=[cube])
    empty = tmp_path / "empty.fits"
    fits.PrimaryHDU().writeto(empty)
    with pytest.raises(DeriveInputError, match="empty.fits: PRIMARY has no data"):
        derive_reference("IRIS", "IRIS1", darks=[empty])


def test_a_truncated_input_is_refused_before_combining(tmp_path):
    path = write_slopes(tmp_path / "cut.fits", np.ones((100, 100), np.float32))
    with open(path, "r+b") as stream:
        stream.truncate(path.stat().st_size - 20000)
    with pytest.raises(DeriveInputError, match="cut.fits: the SCI data cannot be read; is the "
                                               "file truncated"):
        derive_reference("IRIS", "IRIS1", darks=[path])


def test_nothing_to_derive_from_is_an_error():
    with pytest.raises(DeriveInputError, match="nothing to derive from"):
        derive_reference("IRIS", "IRIS1")


def test_unknown_detector_and_bad_metadata_fail_before_reading(tmp_path):
    with pytest.raises(UnknownDetectorError, match="unknown detector 'IRIS9'"):
        derive_reference("IRIS", "IRIS9", darks=[tmp_path / "never-read.fits"])
    with pytest.raises(DeriveInputError, match="useafter: 'yesterday' is not an ISO date"):
        derive_reference("IRIS", "IRIS1", darks=[tmp_path / "never-read.fits"],
                         useafter="yesterday")


def test_a_bad_manual_flag_list_fails_before_reading(tmp_path):
    manual = tmp_path / "manual.txt"
    manual.write_text("10 10 DEADISH\n")
    with pytest.raises(ManualFlagsError, match=r"manual.txt:1: unknown flag 'DEADISH'"):
        derive_reference("IRIS", "IRIS1", darks=[tmp_path / "never-read.fits"],
                         manual_flags=manual)


# -- configuration files ------------------------------------------------------------------------
def test_a_config_file_overrides_only_its_keys(tmp_path):
    path = tmp_path / "derive.toml"
    path.write_text("[flats]\nlow_qe_threshold = 0.4\n[flags]\ndo_not_use = ['dead']\n"
                    "reference_border = 0\n")
    config = DeriveConfig.from_toml(path)
    assert (config.low_qe_threshold, config.do_not_use, config.reference_border) == \
        (0.4, ("DEAD",), 0)
    assert config.hot_threshold == DeriveConfig().hot_threshold


def test_the_settings_written_as_toml_read_back_the_same(tmp_path):
    config = DeriveConfig(smoothing="median", reference_border=4, do_not_use=("HOT",))
    (tmp_path / "all.toml").write_text(config.to_toml())
    assert DeriveConfig.from_toml(tmp_path / "all.toml") == config


@pytest.mark.parametrize(("text", "words"), [
    ("[flats]\ncolour = 1\n", "unknown key 'colour' in [flats]"),
    ("[flats]\nhot_threshold = 2.0\n", "unknown key 'hot_threshold' in [flats]; it belongs "
                                       "in [darks]"),
    ("hot_threshold = 2.0\n", "unknown key 'hot_threshold' outside any section (it belongs "
                              "in [darks])"),
    ("[nope]\nx = 1\n", "unknown section [nope]"),
    ("[flats]\nlow_qe_threshold = 2.0\n", "[flats] low_qe_threshold = 2.0: must be a number"),
    ("[darks]\nnoisy_sigma = -5\n", "[darks] noisy_sigma = -5: must be a number > 0"),
    ("[flags]\ndo_not_use = ['DEADISH']\n", "'DEADISH' is not a known flag"),
    ("[flats]\nsmoothing = 'gaussian'\n", "smoothing = \"gaussian\""),
    ("[flats\n", "not valid TOML"),
])
def test_bad_config_files_are_clear_errors_naming_file_and_key(tmp_path, text, words):
    path = tmp_path / "derive.toml"
    path.write_text(text)
    with pytest.raises(DeriveConfigError) as error:
        DeriveConfig.from_toml(path)
    assert str(error.value).startswith(f"{path}: ")
    assert words in str(error.value)


def test_the_command_reports_a_bad_config_as_one_line(tmp_path):
    path = tmp_path / "derive.toml"
    path.write_text("[darks]\nhot_threshold = 'high'\n")
    result = CliRunner().invoke(app(), ["derive", str(tmp_path / "out.fits"), "-i", "IRIS",
                                        "-d", "IRIS1", "--darks", "x.fits", "--config",
                                        str(path)])
    assert result.exit_code == 2
    assert result.output.startswith(f"dqref: error: {path}: [darks] hot_threshold = \"high\"")
    assert not (tmp_path / "out.fits").exists()


def _stack() -> contextlib.ExitStack:
    return contextlib.ExitStack()


def test_an_input_naming_its_detector_by_an_alias_fits():
    detector = get_detector("IRIS", "IMG1")
    for name in ("IMG1", "IRIS1", "iris1"):
        slope_file = SlopeFile(path="f.fits", extension="SCI", instrument="IRIS",
                               detector=name, data_shape=FULL, images=())
        assert disagreements(slope_file, detector) == []
    other = SlopeFile(path="f.fits", extension="SCI", instrument="IRIS", detector="IRIS2",
                      data_shape=FULL, images=())
    assert disagreements(other, detector) == ["f.fits: DETECTOR is IRIS2, expected IMG1"]
