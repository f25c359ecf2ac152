"""The semantic validation rules, each broken alone: name, severity, key words, where.

Models are built in memory; a subarray of IRIS1 away from the detector edge has no
reference-pixel border, so it is clean unless a test breaks it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from dqref import DQModel, flags
from dqref.model import Subarray
from dqref.validation import (
    ERROR,
    RULES,
    WARNING,
    ValidationConfig,
    ValidationConfigError,
    rule,
    validate,
)

ERROR_RULES = {"dq-def-known-names", "group-only-flags"}
WARNING_RULES = {"dead-and-hot", "adj-open-without-open", "reference-pixel-border",
                 "do-not-use-policy", "flagged-fraction"}
REFERENCE_PIXEL = flags.PIXEL["REFERENCE_PIXEL"]


def interior(size: int = 64, xstart: int = 101, ystart: int = 201) -> DQModel:
    """A clean subarray reference of IRIS1 (1-indexed origin), off the reference border."""
    model = DQModel(np.zeros((size, size), np.uint32), name="IRIS", detector="IRIS1",
                    useafter="2020-01-01")
    model.meta.subarray = Subarray(f"SUB{size}", xstart, ystart, size, size)
    return model


def found(model: DQModel, name: str, config: ValidationConfig | None = None):
    return [f for f in validate(model, config) if f.rule == name]


def test_a_clean_reference_has_no_finding_at_all():
    model = interior()
    model.flag([[3, 4]], "DEAD|DO_NOT_USE")
    model.flag([[10, 10]], "OPEN|DO_NOT_USE")
    model.flag([[11, 11]], "ADJ_OPEN")
    assert validate(model) == []


def test_without_a_usable_array_only_dq_array_reports_it():
    model = interior()
    model._dq = np.zeros((4, 4), np.float64)  # bypasses the setter, as a careless caller might
    assert {f.rule for f in validate(model)} & (ERROR_RULES | WARNING_RULES) == set()
    assert [f.rule for f in validate(DQModel(name="IRIS", detector="IRIS1"))
            if f.rule in ERROR_RULES | WARNING_RULES | {"dq-array"}] == ["dq-array"]


def test_every_semantic_rule_is_registered_with_its_documented_severity():
    registered = [name for name, _ in RULES]
    assert set(registered) >= ERROR_RULES | WARNING_RULES
    assert len(registered) == len(set(registered))
    docs = (Path(__file__).resolve().parent.parent / "docs" / "validation.md").read_text()
    for name in ERROR_RULES:
        assert f"| {name} | error |" in docs
    for name in WARNING_RULES:
        assert f"| {name} | warning |" in docs


# -- DQ_DEF --------------------------------------------------------------------------------
def test_an_unknown_dq_def_name_is_an_error_naming_the_row():
    model = interior()
    model.dq_def[20] = (20, 2**20, b"SPARKLY", b"")
    [finding] = found(model, "dq-def-known-names")
    assert finding.severity == ERROR and finding.where == "DQ_DEF row 21"
    assert "'SPARKLY' is not a known flag" in finding.message and "bit 20" in finding.message


def test_historical_aliases_are_known_dq_def_names():
    model = interior()
    model.dq_def[8] = (8, 2**8, b"UNRELIABLE_ERROR", b"")
    assert found(model, "dq-def-known-names") == []


# -- group-only flags ---------------------------------------------------------------------------
def test_group_only_flags_in_a_static_mask_are_an_error_with_count_and_first_pixel():
    model = interior()
    model.flag([[7, 8], [9, 1]], "JUMP_DET")
    model.flag([[20, 2]], "SATURATED|DO_NOT_USE")
    [finding] = found(model, "group-only-flags")
    assert finding.severity == ERROR and finding.where == "pixel (y=7, x=8)"
    assert "SATURATED, JUMP_DET belong to groups or integrations" in finding.message
    assert "(3 pixels)" in finding.message


def test_rules_read_flags_through_the_files_own_dq_def():
    # JWST-style numbering: this file calls bit 1 (standard SATURATED) DEAD.
    model = interior()
    model.dq_def = np.array([(0, 1, "DO_NOT_USE", ""), (1, 2, "DEAD", "dead here")],
                            dtype=flags.DQ_DEF_DTYPE)
    model.dq[5, 6] = 2 | 1
    assert found(model, "group-only-flags") == []
    assert found(model, "do-not-use-policy") == []
    model.dq[8, 9] = 2  # DEAD without DO_NOT_USE, in this file's numbering
    [finding] = found(model, "do-not-use-policy")
    assert finding.message == "1 DEAD pixels lack DO_NOT_USE"
    assert (model.dq[5, 6], model.dq[8, 9]) == (3, 2)  # the model is not translated in place


# -- per-pixel doubts ---------------------------------------------------------------------------
def test_dead_and_hot_on_one_pixel_is_a_warning():
    model = interior()
    model.flag([[1, 2], [40, 3]], "DEAD|HOT|DO_NOT_USE")
    [finding] = found(model, "dead-and-hot")
    assert finding.severity == WARNING and finding.where == "pixel (y=1, x=2)"
    assert finding.message == "2 pixels are both DEAD and HOT"


def test_adj_open_with_an_open_neighbour_in_any_of_8_directions_is_fine():
    model = interior()
    model.flag([[10, 10]], "OPEN|DO_NOT_USE")
    ring = [[9, 9], [9, 10], [9, 11], [10, 9], [10, 11], [11, 9], [11, 10], [11, 11]]
    model.flag(ring, "ADJ_OPEN")
    assert found(model, "adj-open-without-open") == []


def test_adj_open_without_an_open_neighbour_is_a_warning():
    model = interior()
    model.flag([[10, 10]], "OPEN|DO_NOT_USE")
    model.flag([[10, 12], [0, 63]], "ADJ_OPEN")  # two columns away; a corner of the array
    [finding] = found(model, "adj-open-without-open")
    assert finding.severity == WARNING and finding.where == "pixel (y=0, x=63)"
    assert finding.message == "2 ADJ_OPEN pixels have no OPEN neighbour"


def test_an_open_pixel_is_not_its_own_neighbour():
    model = interior()
    model.flag([[30, 30]], "OPEN|ADJ_OPEN|DO_NOT_USE")
    [finding] = found(model, "adj-open-without-open")
    assert finding.where == "pixel (y=30, x=30)"


# -- reference pixels -----------------------------------------------------------------------
def test_reference_pixels_off_the_border_are_a_warning():
    model = interior()
    model.flag([[5, 5], [6, 6]], "REFERENCE_PIXEL")
    [finding] = found(model, "reference-pixel-border")
    assert finding.severity == WARNING and finding.where == "pixel (y=5, x=5)"
    assert "2 REFERENCE_PIXEL flags lie off the 4-pixel border of IMG1" in finding.message


def test_a_subarray_checks_only_the_part_of_the_border_inside_it():
    corner = interior(size=16, xstart=1, ystart=1)  # rows and columns 0..3 are border
    corner.dq[:4, :] = corner.dq[:, :4] = REFERENCE_PIXEL
    assert found(corner, "reference-pixel-border") == []
    corner.dq[0, 9] = corner.dq[12, 2] = 0
    [finding] = found(corner, "reference-pixel-border")
    assert finding.where == "pixel (y=0, x=9)"
    assert "the 4-pixel reference border lacks REFERENCE_PIXEL on 2 pixels" in finding.message


def test_a_subarray_on_the_far_edge_needs_the_last_columns_flagged():
    edge = interior(size=16, xstart=4096 - 15, ystart=2001)  # columns 4081..4096 (1-indexed)
    [finding] = found(edge, "reference-pixel-border")
    assert "lacks REFERENCE_PIXEL on 64 pixels" in finding.message
    assert finding.where == "pixel (y=0, x=12)"
    edge.dq[:, 12:] = REFERENCE_PIXEL
    assert found(edge, "reference-pixel-border") == []


def test_a_blank_full_frame_warns_that_its_border_is_not_set():
    model = DQModel.blank("IRIS", "IRIS1")
    [finding] = found(model, "reference-pixel-border")
    assert finding.severity == WARNING and finding.where == "pixel (y=0, x=0)"
    assert f"on {4096**2 - 4088**2} pixels" in finding.message
    model.dq[:4, :] = model.dq[-4:, :] = REFERENCE_PIXEL
    model.dq[:, :4] = model.dq[:, -4:] = REFERENCE_PIXEL
    assert found(model, "reference-pixel-border") == []
    assert validate(model) == []


# -- DO_NOT_USE policy and flagged fraction -----------------------------------------------------
def test_flags_that_must_be_do_not_use_are_a_warning_without_it():
    model = interior()
    model.flag([[2, 3], [4, 5]], "DEAD")
    model.flag([[6, 7]], "HOT|DO_NOT_USE")
    [finding] = found(model, "do-not-use-policy")
    assert finding.severity == WARNING and finding.where == "pixel (y=2, x=3)"
    assert finding.message == "2 DEAD pixels lack DO_NOT_USE"


def test_the_do_not_use_policy_is_configurable():
    model = interior()
    model.flag([[2, 3]], "DEAD")
    model.flag([[4, 4]], "WARM")
    config = ValidationConfig(must_be_do_not_use=("warm",))
    assert config.must_be_do_not_use == ("WARM",)
    [finding] = found(model, "do-not-use-policy", config)
    assert finding.message == "1 WARM pixels lack DO_NOT_USE"


def test_more_than_the_flagged_fraction_is_a_warning():
    model = interior(size=10)
    model.flag([[0, i] for i in range(6)], "WARM")
    [finding] = found(model, "flagged-fraction")
    assert finding.severity == WARNING and finding.where == "DQ"
    assert "6.00% of pixels are flagged (limit 5.00%)" in finding.message
    assert "6 of 100" in finding.message
    assert found(model, "flagged-fraction", ValidationConfig(max_flagged_fraction=0.1)) == []


def test_reference_pixels_do_not_count_towards_the_flagged_fraction():
    model = interior(size=10, xstart=1, ystart=1)  # the 4-pixel border covers 84 of 100
    model.dq[:4, :] = model.dq[:, :4] = REFERENCE_PIXEL
    assert found(model, "flagged-fraction") == []


# -- settings ----------------------------------------------------------------------------------
def test_defaults_come_from_the_packaged_toml():
    packaged = tomllib.loads(resources.files("dqref").joinpath("validation.toml").read_text())
    config = ValidationConfig()
    assert list(config.must_be_do_not_use) == packaged["must_be_do_not_use"]
    assert config.max_flagged_fraction == packaged["max_flagged_fraction"]
    assert config.strict is packaged.get("strict", False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.strict = True


@pytest.mark.parametrize(("settings", "words"), [
    ({"max_flagged_fraction": 0}, "max_flagged_fraction"),
    ({"max_flagged_fraction": 1.5}, "max_flagged_fraction"),
    ({"max_flagged_fraction": True}, "max_flagged_fraction"),
    ({"must_be_do_not_use": ("NOPE",)}, "'NOPE' is not a known flag"),
    ({"must_be_do_not_use": "DEAD"}, "must_be_do_not_use must be a list"),
    ({"strict": "yes"}, "strict must be true or false"),
])
def test_bad_settings_are_refused_naming_the_setting(settings, words):
    with pytest.raises(ValidationConfigError, match=words):
        ValidationConfig(**settings)


def test_a_settings_file_overrides_the_defaults_and_unknown_keys_are_refused(tmp_path):
    (tmp_path / "mine.toml").write_text("must_be_do_not_use = ['HOT']\nstrict = true\n")
    config = ValidationConfig.from_toml(tmp_path / "mine.toml")
    assert (config.must_be_do_not_use, config.strict) == (("HOT",), True)
    assert config.max_flagged_fraction == ValidationConfig().max_flagged_fraction
    (tmp_path / "typo.toml").write_text("colour = 'red'\n")
    with pytest.raises(ValidationConfigError, match="unknown setting.*colour"):
        ValidationConfig.from_toml(tmp_path / "typo.toml")
    (tmp_path / "bad.toml").write_text("max_flagged_fraction = 2\n")
    with pytest.raises(ValidationConfigError, match="bad.toml.*max_flagged_fraction"):
        ValidationConfig.from_toml(tmp_path / "bad.toml")


# -- strict ------------------------------------------------------------------------------------
def test_strict_reports_warnings_as_errors():
    model = interior()
    model.flag([[2, 3]], "DEAD")
    [lenient] = validate(model)
    [strict] = validate(model, ValidationConfig(strict=True))
    assert (lenient.severity, strict.severity) == (WARNING, ERROR)
    assert strict.rule == "do-not-use-policy" and "strict makes it an error" in strict.message
    assert validate(model, errors_only=True) == []
    assert validate(model, ValidationConfig(strict=True), errors_only=True) == [strict]


# -- the registry ------------------------------------------------------------------------------
def test_a_rule_name_cannot_be_taken_by_another_function():
    before = list(RULES)
    try:
        def _dead_and_hot(model, config):  # same function name: a re-import, ignored
            yield from ()

        rule("dead-and-hot", warnings_only=True)(_dead_and_hot)
        assert RULES == before

        def _something_else(model, config):
            yield from ()

        with pytest.raises(ValueError, match="'dead-and-hot' is already registered"):
            rule("dead-and-hot")(_something_else)
    finally:
        RULES[:] = before
