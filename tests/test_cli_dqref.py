"""The ``dqref`` command: create, validate and histogram, and how user errors look."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from dqref import DQModel
from dqref.cli import app
from dqref.model import Subarray
from dqref.reffile import to_hdulist

runner = CliRunner()

FLAG_LIST = """\
# x      y       flag
12       7       DEAD|DO_NOT_USE
100:102  4000    HOT|DO_NOT_USE
"""


def assert_one_line_user_error(result, *words: str) -> None:
    """Exit 2, nothing on stdout, one ``dqref: error:`` line on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dqref: error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def created(tmp_path_factory):
    """``dqref create`` with a manual flag list; returns (result, output path)."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "flags.txt").write_text(FLAG_LIST)
    output = folder / "iris1_dq.fits"
    result = runner.invoke(app, ["create", str(output), "--instrument", "IRIS",
                                 "--detector", "IRIS1", "--flags", str(folder / "flags.txt"),
                                 "--useafter", "2024-03-01", "--author", "A. Tester"])
    return result, output


@pytest.fixture
def small_reference(tmp_path):
    """A valid SUB64 reference file (cheap, for commands that only read)."""
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IRIS1")
    model.meta.subarray = Subarray("SUB64", 1, 1, 64, 64)
    model.flag([[3, 4]], "DEAD|DO_NOT_USE")
    model.write(tmp_path / "sub64.fits")
    return tmp_path / "sub64.fits"


# -- create ---------------------------------------------------------------------------------
def test_create_reports_what_it_wrote(created):
    result, output = created
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{output}: IRIS IMG1, 4 flagged of 16777216 pixels\n"  # canonical name


def test_create_writes_the_manual_flags_into_a_full_frame(created):
    _, output = created
    model = DQModel.read(output)
    assert model.shape == (4096, 4096)
    assert np.argwhere(model.dq).tolist() == [[7, 12], [4000, 100], [4000, 101], [4000, 102]]
    assert model.dq[7, 12] == 1025 and model.dq[4000, 101] == 2049


def test_create_records_metadata_and_history(created):
    _, output = created
    header = fits.getheader(output)
    assert (header["INSTRUME"], header["DETECTOR"], header["USEAFTER"], header["AUTHOR"]) == (
        "IRIS", "IMG1", "2024-03-01T00:00:00", "A. Tester")  # canonical name
    assert list(header["HISTORY"]) == ["Created by dqref 0.1.0",
                                       "Manual flags: flags.txt (2 entries)"]


def test_create_never_overwrites_an_existing_file(created):
    _, output = created
    before = output.stat().st_mtime_ns
    result = runner.invoke(app, ["create", str(output), "--instrument", "IRIS",
                                 "--detector", "IRIS1"])
    assert_one_line_user_error(result, str(output), "exists; refusing to overwrite it")
    assert output.stat().st_mtime_ns == before


def test_create_with_overwrite_replaces_the_file(tmp_path):
    output = tmp_path / "ref.fits"
    output.write_bytes(b"old")
    result = runner.invoke(app, ["create", str(output), "-i", "LIGER", "-d", "IMG",
                                 "--overwrite"])
    assert result.exit_code == 0, result.output
    assert DQModel.read(output).meta.detector == "IMG"


def test_create_for_an_unknown_detector_names_the_detector_table(tmp_path):
    result = runner.invoke(app, ["create", str(tmp_path / "x.fits"), "--instrument", "IRIS",
                                 "--detector", "IRIS9"])
    assert_one_line_user_error(result, "unknown detector 'IRIS9'", "dqref/detectors.toml")
    assert list(tmp_path.iterdir()) == []


def test_create_with_a_bad_flag_line_names_the_file_and_line(tmp_path):
    (tmp_path / "flags.txt").write_text("1 1 DEAD\n5000 1 HOT\n")
    result = runner.invoke(app, ["create", str(tmp_path / "x.fits"), "-i", "IRIS", "-d", "IRIS1",
                                 "--flags", str(tmp_path / "flags.txt")])
    assert_one_line_user_error(result, f"{tmp_path / 'flags.txt'}:2: x '5000' is outside "
                                       "0..4095")
    assert not (tmp_path / "x.fits").exists()


def test_create_with_an_impossible_useafter_is_refused(tmp_path):
    result = runner.invoke(app, ["create", str(tmp_path / "x.fits"), "-i", "IRIS", "-d", "IRIS1",
                                 "--useafter", "2020-13-01"])
    assert_one_line_user_error(result, "USEAFTER: '2020-13-01' is not a real date-time")
    assert not (tmp_path / "x.fits").exists()


def test_create_with_a_missing_flag_file_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["create", str(tmp_path / "x.fits"), "-i", "IRIS", "-d", "IRIS1",
                                 "--flags", str(tmp_path / "absent.txt")])
    assert_one_line_user_error(result, "absent.txt", "no such file")


def test_create_with_a_non_ascii_author_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["create", str(tmp_path / "x.fits"), "-i", "IRIS", "-d", "IRIS1",
                                 "--author", "José Müller"])
    assert_one_line_user_error(result, "AUTHOR")


# -- validate -------------------------------------------------------------------------------
def test_validate_a_created_reference_says_valid(created):
    _, output = created
    result = runner.invoke(app, ["validate", str(output)])
    assert result.exit_code == 0, result.output
    last = result.stdout.splitlines()[-1]
    assert last.startswith(f"{output}: valid")


def test_validate_a_missing_file_exits_2_with_the_reason_on_stderr(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.fits")])
    assert result.exit_code == 2
    assert result.stderr == f"{tmp_path / 'missing.fits'}: error: no such file\n"
    assert result.stdout == f"{tmp_path / 'missing.fits'}: unreadable\n"


def test_validate_a_file_that_is_not_fits_exits_2(tmp_path):
    (tmp_path / "notes.fits").write_text("not FITS at all\n")
    result = runner.invoke(app, ["validate", str(tmp_path / "notes.fits")])
    assert result.exit_code == 2
    assert "cannot be read as FITS" in result.stderr
    assert ": valid" not in result.stdout


def test_validate_an_invalid_reference_prints_its_findings_on_stderr_and_exits_1(tmp_path):
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IRIS9")
    model.meta.subarray = Subarray("SUB64", 1, 1, 64, 64)
    to_hdulist(model).writeto(tmp_path / "bad.fits", checksum=True)
    result = runner.invoke(app, ["validate", str(tmp_path / "bad.fits")])
    assert result.exit_code == 1
    assert (f"{tmp_path / 'bad.fits'}: INSTRUME/DETECTOR: error: unknown detector 'IRIS9' for "
            "IRIS; dqref/detectors.toml lists IFU, IMG1, IMG2, IMG3, IMG4, IRIS1, IRIS2, IRIS3, "
            "IRIS4 "
            "[known-detector]") in result.stderr.splitlines()
    assert result.stdout.startswith(f"{tmp_path / 'bad.fits'}: invalid (")


def test_validate_checks_every_file_and_fails_if_any_fails(small_reference, tmp_path):
    result = runner.invoke(app, ["validate", str(small_reference), str(tmp_path / "gone.fits")])
    assert result.exit_code == 2
    assert f"{small_reference}: valid" in result.stdout
    assert f"{tmp_path / 'gone.fits'}: error: no such file" in result.stderr


def test_validate_json_reports_every_file_with_its_findings(small_reference, tmp_path):
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IRIS9")
    model.meta.subarray = Subarray("SUB64", 1, 1, 64, 64)
    to_hdulist(model).writeto(tmp_path / "bad.fits", checksum=True)
    result = runner.invoke(app, ["validate", "--json", str(small_reference),
                                 str(tmp_path / "bad.fits")])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["schema_version"] == 1 and report["valid"] is False
    good, bad = report["files"]
    assert (good["path"], good["valid"], good["errors"]) == (str(small_reference), True, 0)
    assert bad["valid"] is False and bad["errors"] >= 1
    assert {"rule": "known-detector", "severity": "error"}.items() <= \
        next(f for f in bad["findings"] if f["rule"] == "known-detector").items()


def test_validate_show_config_prints_the_settings_in_effect(tmp_path):
    (tmp_path / "mine.toml").write_text("max_flagged_fraction = 0.25\n")
    result = runner.invoke(app, ["validate", "--show-config", "--config",
                                 str(tmp_path / "mine.toml")])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "max_flagged_fraction = 0.25" in lines
    assert 'must_be_do_not_use = ["DEAD", "HOT", "OPEN"]' in lines


# -- histogram ------------------------------------------------------------------------------
def test_histogram_json_has_total_good_and_per_flag_counts(created):
    _, output = created
    result = runner.invoke(app, ["histogram", "--json", str(output)])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert set(counts) == {"schema_version", "total", "good", "flags"}
    assert (counts["total"], counts["good"]) == (16777216, 16777212)
    assert {k: v for k, v in counts["flags"].items() if v} == {
        "DO_NOT_USE": 4, "DEAD": 1, "HOT": 3}
    assert len(counts["flags"]) == 32


def test_histogram_table_lists_the_flags_that_occur(small_reference):
    result = runner.invoke(app, ["histogram", str(small_reference)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(small_reference)
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert rows["DEAD"][:2] == ["1024", "1"]
    assert rows["DO_NOT_USE"][:2] == ["1", "1"]
    assert "HOT" not in rows


def test_histogram_of_a_missing_file_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["histogram", str(tmp_path / "missing.fits")])
    assert_one_line_user_error(result, "missing.fits: no such file")
