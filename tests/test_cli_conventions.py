"""The conventions both command lines follow (dqref.cli_conventions, docs/conventions.md):
--version, one-line usage errors, one table of exit codes, --json, --crds-path, completion,
--show-config, and imports that stay light until a command needs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dqinit.cli import app as dqinit_app
from dqref.cli import app as dqref_app
from dqref.cli_conventions import EXIT_CODES, to_toml

runner = CliRunner()
BIN = Path(sys.executable).parent


@pytest.fixture
def small_reference(tmp_path):
    """A valid SUB64 reference file."""
    import numpy as np

    from dqref.model import DQModel, Subarray

    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IMG1")
    model.meta.subarray = Subarray("SUB64", 1, 1, 64, 64)
    model.flag([[3, 4]], "DEAD|DO_NOT_USE")
    model.write(tmp_path / "sub64.fits")
    return tmp_path / "sub64.fits"


@pytest.fixture
def small_ramp(tmp_path):
    """A JWST-layout SUB64 ramp of 2 groups."""
    from dqinit.simulate import ramp_header, write_raw_ramp

    header = ramp_header(detector="IMG1", subarray=("SUB64", 1, 1, 64, 64))
    return write_raw_ramp(tmp_path / "ramp_uncal.fits", header, ngroups=2)


def run_program(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run an installed console script, as a user does."""
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


# -- --version ---------------------------------------------------------------------------
@pytest.mark.parametrize("app, program", [(dqref_app, "dqref"), (dqinit_app, "dqinit")])
def test_version_comes_from_the_installed_distribution(app, program):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"{program} {version('ligeriri-dq')}\n"


def test_the_package_version_has_one_source():
    import dqref

    assert dqref.__version__ == version("ligeriri-dq")
    assert "__version__ =" not in Path(dqref.__file__).read_text()


# -- usage errors --------------------------------------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (["creat"], "dqref: error: No such command 'creat'."),
    (["create", "out.fits"], "dqref create: error: Missing option '--instrument' / '-i'."),
    (["cache", "bestref", "--bogus"], "dqref cache bestref: error: No such option: --bogus"),
    (["histogram"], "dqref histogram: error: Missing argument 'file'."),
])
def test_a_usage_error_is_one_line_naming_the_command_and_exits_2(args, expected):
    result = runner.invoke(dqref_app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(expected)
    assert "╭" not in result.stderr and "Usage:" not in result.stderr


def test_a_usage_error_of_the_installed_dqinit_is_one_line():
    completed = run_program("dqinit", "run", "--workers", "zero")
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("dqinit run: error: Invalid value for '--workers' / '-j'")
    assert completed.stderr.rstrip().endswith("(see 'dqinit run --help')")
    assert "Traceback" not in completed.stderr


# -- exit codes -----------------------------------------------------------------------------
def test_the_exit_code_table_is_what_the_docs_print():
    page = (Path(__file__).parent.parent / "docs" / "conventions.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in page


def test_a_missing_input_exits_2_from_every_command(tmp_path):
    missing = str(tmp_path / "missing.fits")
    results = {
        "histogram": runner.invoke(dqref_app, ["histogram", missing]),
        "validate": runner.invoke(dqref_app, ["validate", missing]),
        "dqinit run": runner.invoke(dqinit_app, ["run", missing, "-j", "1"]),
        "cache add": runner.invoke(dqref_app, ["cache", "add", missing,
                                               "--crds-path", str(tmp_path / "cache")]),
    }
    for command, result in results.items():
        assert result.exit_code == 2, (command, result.output)
        assert "missing.fits" in result.stderr, command


def test_dqinit_run_blames_the_missing_input_not_the_cache(tmp_path):
    result = runner.invoke(dqinit_app, ["run", str(tmp_path / "missing.fits"),
                                        "--crds-path", str(tmp_path / "no-cache")])
    assert result.exit_code == 2
    assert result.stderr == (f"dqinit: error: {tmp_path / 'missing.fits'}: no such file; "
                             "nothing was processed\n")
    assert "cache" not in result.stderr


def test_dqinit_processes_nothing_when_one_named_input_is_missing(tmp_path, small_ramp,
                                                                  small_reference):
    result = runner.invoke(dqinit_app, ["run", str(small_ramp), str(tmp_path / "gone.fits"),
                                        "--override-dq", str(small_reference),
                                        "--output-dir", str(tmp_path / "out"), "-j", "1"])
    assert result.exit_code == 2
    assert "gone.fits: no such file" in result.stderr
    assert not (tmp_path / "out").exists()


# -- --json -------------------------------------------------------------------------------
def test_dqinit_run_json_is_the_report(tmp_path, small_ramp, small_reference):
    report = tmp_path / "report.json"
    result = runner.invoke(dqinit_app, ["run", str(small_ramp), "--override-dq",
                                        str(small_reference), "-o", str(tmp_path / "out.fits"),
                                        "-j", "1", "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["schema_version"] == 1
    assert printed["summary"]["COMPLETE"] == 1 and printed["summary"]["total"] == 1
    (record,) = printed["files"]
    assert (record["status"], record["output"]) == ("COMPLETE", str(tmp_path / "out.fits"))
    assert set(record) >= {"input", "output", "status", "reference", "context", "message",
                           "seconds", "error"}
    written = json.loads(report.read_text())
    assert written["files"][0]["status"] == "COMPLETE"
    assert written["schema_version"] == 1


def test_dqinit_statuses_are_the_steps():
    import dqinit.cli
    import dqinit.step

    assert (dqinit.cli.COMPLETE, dqinit.cli.SKIPPED, dqinit.cli.FAILED) == (
        dqinit.step.COMPLETE, dqinit.step.SKIPPED, dqinit.step.FAILED)


# -- one name for the cache option ------------------------------------------------------------
@pytest.mark.parametrize("option", ["--crds-path", "--path"])
def test_dqinit_takes_crds_path_and_its_alias(option, tmp_path, small_ramp):
    result = runner.invoke(dqinit_app, ["run", str(small_ramp), option,
                                        str(tmp_path / "no-cache"), "-j", "1"])
    assert result.exit_code == 2
    assert f"{tmp_path / 'no-cache'} is not an initialised cache" in result.stderr


# -- SKIPPED says so once ---------------------------------------------------------------------
def test_a_skipped_run_says_so_once(tmp_path, small_ramp):
    completed = run_program("dqinit", "run", str(small_ramp), "--override-dq", "N/A",
                            "-o", str(tmp_path / "out.fits"), "-j", "1")
    assert completed.returncode == 0
    said = completed.stdout + completed.stderr
    assert said.count("SKIPPED") == 1, said
    assert completed.stdout == (f"{small_ramp}: SKIPPED (override_dq = N/A) context=N/A -> "
                                f"{tmp_path / 'out.fits'}\n")
    assert completed.stdout.count("override_dq = N/A") + \
        completed.stderr.count("override_dq = N/A") == 1


# -- --show-config -----------------------------------------------------------------------------
def test_derive_show_config_prints_the_defaults_without_other_arguments():
    result = runner.invoke(dqref_app, ["derive", "--show-config"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "[flats]" in lines and "smoothing_size = 15" in lines
    assert 'reference_border = "detector"' in lines


def test_derive_show_config_puts_a_user_file_on_top(tmp_path):
    (tmp_path / "mine.toml").write_text("[darks]\nhot_threshold = 2.5\n")
    result = runner.invoke(dqref_app, ["derive", "--config", str(tmp_path / "mine.toml"),
                                       "--show-config"])
    assert result.exit_code == 0
    assert "hot_threshold = 2.5" in result.stdout.splitlines()


def test_show_config_output_is_a_config_file_the_command_accepts(tmp_path):
    printed = runner.invoke(dqref_app, ["derive", "--show-config"]).stdout
    (tmp_path / "all.toml").write_text(printed)
    again = runner.invoke(dqref_app, ["derive", "--config", str(tmp_path / "all.toml"),
                                      "--show-config"])
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[1:] == printed.splitlines()[1:]


def test_to_toml_writes_keys_then_sections():
    assert to_toml({"a": 1, "s": {"b": [1.5, "x"], "c": True}}, comment="c") == (
        '# c\na = 1\n\n[s]\nb = [1.5, "x"]\nc = true\n')


# -- shell completion -----------------------------------------------------------------------------
def test_shell_completion_is_enabled():
    completed = run_program("dqref", env={"_DQREF_COMPLETE": "complete_bash",
                                          "COMP_WORDS": "dqref ca", "COMP_CWORD": "1"})
    assert completed.returncode == 0
    assert completed.stdout.split() == ["cache"]
    assert "--install-completion" in runner.invoke(dqinit_app, ["--help"]).stdout


# -- start-up imports only what a command uses ----------------------------------------------------
@pytest.mark.parametrize("module", ["dqref.cli", "dqinit.cli"])
def test_building_the_command_tree_imports_no_heavy_package(module):
    code = (f"import sys, {module}; heavy = {{'numpy', 'astropy', 'crds', 'scipy', "
            "'matplotlib', 'dask'}; print(sorted(heavy & {m.split('.')[0] for m in "
            "sys.modules}))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


# -- help texts cite what is installed ------------------------------------------------------
def _command_paths(command, path=()):
    """Every command path of a click tree: (), ("cache",), ("cache", "add"), ..."""
    yield path
    if hasattr(command, "list_commands"):
        context = command.context_class(command, info_name="x")
        for name in command.list_commands(context):
            yield from _command_paths(command.get_command(context, name), (*path, name))


def test_no_help_text_cites_a_repository_path():
    import re

    from typer.main import get_command

    for app in (dqref_app, dqinit_app):
        paths = list(_command_paths(get_command(app)))
        assert len(paths) >= 2
        for path in paths:
            text = runner.invoke(app, [*path, "--help"], terminal_width=200).stdout
            assert "--help" in text, path
            cited = re.findall(r"\b(?:dqref|dqinit|docs|rmaps|scripts)/\S+", text)
            assert not cited, (path, cited)
