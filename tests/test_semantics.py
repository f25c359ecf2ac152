"""Semantic validation rules: each broken alone, with its name, severity and key words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import subarray_reference
from typer.testing import CliRunner

from dqref import DQModel, flags
from dqref.cli import app
from dqref.model import Subarray
from dqref.reffile import to_hdulist
from dqref.semantics import ValidationConfig, ValidationConfigError
from dqref.validation import validate


def interior_model(size=64) -> DQModel:
    """A clean subarray away from the reference border."""
    model = DQModel(np.zeros((size, size), np.uint32), name="IRIS", detector="IRIS1")
    model.meta.subarray = Subarray(f"SUB{size}", 101, 201, size, size)
    return model


@pytest.fixture(autouse=True)
def _folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def findings_of(model, rule_name, config=None):
    """Write the model as a FITS file (errors included), read it back, validate the file."""
    path = Path(f"{rule_name}-{len(list(Path().iterdir()))}.fits")
    to_hdulist(model).writeto(path, checksum=True)
    return [f for f in validate(DQModel.read(path), config=config) if f.rule == rule_name]


def test_a_clean_reference_raises_no_semantic_finding():
    model = interior_model()
    model.flag([[3, 4]], "DEAD|DO_NOT_USE")
    assert validate(model) == []


def test_unknown_dq_def_names_are_errors():
    model = interior_model()
    model.dq_def[20] = (20, 2**20, b"SPARKLY", b"")
    [finding] = findings_of(model, "dq-def-known-names")
    assert finding.is_error and "SPARKLY" in finding.message and finding.where == "DQ_DEF row 21"


def test_group_only_flags_in_a_static_mask_are_errors():
    model = interior_model()
    model.flag([[7, 8]], "JUMP_DET")
    [finding] = findings_of(model, "group-only-flags")
    assert finding.is_error and "JUMP_DET" in finding.message
    assert finding.where == "pixel (y=7, x=8)"


def test_dead_and_hot_on_one_pixel_is_a_warning():
    model = interior_model()
    model.flag([[1, 2]], "DEAD|HOT|DO_NOT_USE")
    [finding] = findings_of(model, "dead-and-hot")
    assert not finding.is_error and finding.where == "pixel (y=1, x=2)"


def test_adj_open_needs_an_open_neighbour():
    model = interior_model()
    model.flag([[10, 10]], "OPEN|DO_NOT_USE")
    model.flag([[10, 11], [11, 11]], "ADJ_OPEN")
    assert findings_of(model, "adj-open-without-open") == []
    model.flag([[30, 30]], "ADJ_OPEN")
    [finding] = findings_of(model, "adj-open-without-open")
    assert "1 ADJ_OPEN" in finding.message and finding.where == "pixel (y=30, x=30)"


def test_reference_pixels_off_the_border_and_an_incomplete_border_are_warnings():
    model = interior_model()
    model.flag([[5, 5]], "REFERENCE_PIXEL")
    [stray] = findings_of(model, "reference-pixel-border")
    assert "off the 4-pixel border" in stray.message
    corner = DQModel(np.zeros((16, 16), np.uint32), name="IRIS", detector="IRIS1")
    corner.meta.subarray = Subarray("SUB16", 1, 1, 16, 16)
    corner.dq[:4, :] = corner.dq[:, :4] = flags.PIXEL["REFERENCE_PIXEL"]
    assert findings_of(corner, "reference-pixel-border") == []
    corner.dq[0, 9] = 0
    [missing] = findings_of(corner, "reference-pixel-border")
    assert "lacks REFERENCE_PIXEL" in missing.message and missing.where == "pixel (y=0, x=9)"


def test_do_not_use_policy_is_configurable():
    model = interior_model()
    model.flag([[2, 3]], "DEAD")
    [finding] = findings_of(model, "do-not-use-policy")
    assert finding.message == "1 DEAD pixels lack DO_NOT_USE" and not finding.is_error
    relaxed = ValidationConfig(must_be_do_not_use=("HOT",))
    assert findings_of(model, "do-not-use-policy", relaxed) == []


def test_flagged_fraction_above_the_limit_is_a_warning():
    model = interior_model(size=10)
    model.flag(np.array([[0, i] for i in range(6)]), "WARM")
    [finding] = findings_of(model, "flagged-fraction")
    assert "6.00% of pixels are flagged (limit 5.00%)" in finding.message
    assert findings_of(model, "flagged-fraction", ValidationConfig(max_flagged_fraction=0.1)) \
        == []


def test_bad_settings_are_refused_naming_the_key(tmp_path):
    with pytest.raises(ValidationConfigError, match="max_flagged_fraction"):
        ValidationConfig(max_flagged_fraction=0)
    with pytest.raises(ValidationConfigError, match="NOPE"):
        ValidationConfig(must_be_do_not_use=("NOPE",))
    (tmp_path / "v.toml").write_text("colour = 'red'\n")
    with pytest.raises(ValidationConfigError, match="unknown setting"):
        ValidationConfig.from_toml(tmp_path / "v.toml")


def test_strict_turns_warnings_into_failures(tmp_path):
    model = interior_model()
    model.flag([[2, 3]], "DEAD")
    model.write(tmp_path / "warn.fits")
    runner = CliRunner()
    lenient = runner.invoke(app, ["validate", str(tmp_path / "warn.fits")])
    assert lenient.exit_code == 0 and "valid (1 warnings)" in lenient.output
    strict = runner.invoke(app, ["validate", "--strict", str(tmp_path / "warn.fits")])
    assert strict.exit_code == 1 and "do-not-use-policy" in strict.output
    (tmp_path / "v.toml").write_text("must_be_do_not_use = ['HOT']\n")
    configured = runner.invoke(app, ["validate", "--strict", "--config",
                                     str(tmp_path / "v.toml"), str(tmp_path / "warn.fits")])
    assert configured.exit_code == 0


def test_clean_file_passes_strict(tmp_path):
    path = subarray_reference(tmp_path / "clean.fits", flags={"HOT|DO_NOT_USE": [(1, 1)]})
    assert CliRunner().invoke(app, ["validate", "--strict", str(path)]).exit_code == 0
