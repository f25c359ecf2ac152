"""`dqref derive` command line: ``--flats``/``--darks`` take file lists (a shell glob) or
repeated options, and both forms can be mixed."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

import dqref.derive.api as derive_api
from dqref.cli import app as dqref_app
from dqref.derive.command import DeriveCommand, derive_command, spread_file_lists
from dqref.derive.inputs import DeriveInputError


def app() -> typer.Typer:
    """The derive command on an app of its own, registered as `dqref` should register it."""
    application = typer.Typer(add_completion=False)
    application.callback()(lambda: None)  # a group, so the command is called by its name
    application.command("derive", cls=DeriveCommand)(derive_command)
    return application


@pytest.fixture
def received(monkeypatch):
    """Replace the library call; record the flats and darks the command passes on."""
    calls = {}

    def fake(instrument, detector, flats, darks, *args, **kwargs):
        calls.update(flats=[str(p) for p in flats], darks=[str(p) for p in darks])
        raise DeriveInputError("stopped by the test")

    monkeypatch.setattr(derive_api, "derive_reference", fake)  # the command imports it late
    return calls


def said(result) -> str:
    """The output on one line, without the frame typer may draw around an error."""
    return " ".join(result.output.replace("│", " ").split())


def run(application, *args: str):
    return CliRunner().invoke(application, ["derive", "out.fits", "-i", "IRIS", "-d", "IRIS1",
                                            *args])


# -- the rewrite -------------------------------------------------------------------------------
def test_a_file_list_becomes_repeated_options():
    assert spread_file_lists(["OUT", "--flats", "a", "b", "c", "--darks", "d", "e"]) == (
        ["OUT", "--flats", "a", "--flats", "b", "--flats", "c", "--darks", "d", "--darks", "e"],
        True)


def test_values_of_other_options_are_left_alone():
    args = ["OUT", "-i", "IRIS", "--flats", "a", "--config", "x.toml", "--author", "Me"]
    assert spread_file_lists(args) == (args, False)


def test_the_equals_form_starts_a_list_too():
    assert spread_file_lists(["--flats=a", "b"]) == (["--flats=a", "--flats", "b"], True)


def test_nothing_after_a_double_dash_is_rewritten():
    assert spread_file_lists(["--flats", "a", "--", "b", "c"]) == (
        ["--flats", "a", "--", "b", "c"], False)


# -- the command ---------------------------------------------------------------------------------
def test_derive_takes_several_files_after_one_option_as_a_glob_expands(received):
    result = run(app(), "--flats", "f1.fits", "f2.fits", "f3.fits", "--darks", "d1.fits",
                 "d2.fits", "--overwrite")
    assert result.exit_code == 2 and "stopped by the test" in result.output
    assert received == {"flats": ["f1.fits", "f2.fits", "f3.fits"],
                        "darks": ["d1.fits", "d2.fits"]}


def test_repeated_options_still_work_and_mix_with_lists(received):
    run(app(), "--flats", "f1.fits", "--darks", "d1.fits", "--flats", "f2.fits", "f3.fits")
    assert received == {"flats": ["f1.fits", "f2.fits", "f3.fits"], "darks": ["d1.fits"]}


def test_an_output_after_the_file_lists_is_a_clear_error(received):
    result = CliRunner().invoke(app(), ["derive", "-i", "IRIS", "-d", "IRIS1", "--flats",
                                        "f1.fits", "f2.fits", "out.fits"])
    assert result.exit_code == 2
    assert "Missing argument 'OUTPUT': give it before --flats/--darks" in said(result)
    assert received == {}


def test_an_option_without_files_is_a_usage_error(received):
    result = run(app(), "--flats", "--darks", "d1.fits")
    assert result.exit_code == 2 and received == {}


def test_a_stray_argument_elsewhere_is_still_refused(received):
    result = run(app(), "--overwrite", "stray.fits", "--darks", "d1.fits")
    assert result.exit_code == 2 and "extra argument" in said(result)
    assert "(stray.fits)" in said(result)


def test_the_dqref_app_takes_file_lists(received):
    result = run(dqref_app, "--flats", "f1.fits", "f2.fits", "--darks", "d1.fits", "d2.fits")
    assert result.exit_code == 2 and "stopped by the test" in result.output, result.output
    assert received == {"flats": ["f1.fits", "f2.fits"], "darks": ["d1.fits", "d2.fits"]}
