"""The structural validation rules, each broken on purpose.

Rules covered: dq-array, required-metadata, known-detector, geometry, dq-def-consistent,
bits-defined. Semantic rules are tested elsewhere (tests/test_semantic_rules.py,
tests/test_dq_def_translation.py); assertions here look only at the findings of the rule
under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from dqref import DQModel, flags
from dqref.model import Subarray
from dqref.validation import ERROR, RULES, WARNING, Finding, errors, rule, validate

STRUCTURAL_RULES = {"dq-array", "required-metadata", "known-detector", "geometry",
                    "dq-def-consistent", "bits-defined"}


def sub64(xstart: int = 101, ystart: int = 201, shape=(64, 64), size: int = 64,
          subarray: str = "SUB64", **meta) -> DQModel:
    """A small subarray reference of IRIS1; valid with the defaults."""
    fields = {"name": "IRIS", "detector": "IRIS1", "useafter": "2020-01-01"}
    model = DQModel(np.zeros(shape, np.uint32), **{**fields, **meta})
    model.meta.subarray = Subarray(subarray, xstart, ystart, size, size)
    return model


def findings(model: DQModel, rule: str) -> list[tuple[str, str]]:
    """(where, message) of the errors that ``rule`` reports for ``model``."""
    return [(f.where, f.message) for f in validate(model) if f.rule == rule and f.is_error]


def test_a_valid_subarray_reference_has_no_structural_findings():
    model = sub64()
    model.flag([[0, 0]], "DEAD|DO_NOT_USE")
    assert [f for f in validate(model) if f.rule in STRUCTURAL_RULES] == []


def test_a_valid_full_frame_reference_has_no_structural_findings():
    model = DQModel.blank("IRIS", "IRIS1")
    assert [f for f in validate(model) if f.rule in STRUCTURAL_RULES] == []


# -- dq-array -----------------------------------------------------------------------------------
def test_a_model_without_a_dq_array_is_an_error():
    model = DQModel(name="IRIS", detector="IRIS1")
    assert findings(model, "dq-array") == [("DQ", "no DQ array")]


# -- required-metadata --------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "keyword"), [
    ("name", "INSTRUME"), ("detector", "DETECTOR"), ("useafter", "USEAFTER"),
    ("pedigree", "PEDIGREE"),
])
def test_missing_required_metadata_names_the_keyword(field, keyword):
    model = sub64(**{field: None})
    assert (keyword, f"{keyword} is missing") in findings(model, "required-metadata")


def test_an_impossible_useafter_date_is_an_error():
    assert findings(sub64(useafter="2020-13-01"), "required-metadata") == [
        ("USEAFTER", "'2020-13-01' is not a real date-time")]


def test_a_useafter_that_is_not_iso_is_an_error():
    assert findings(sub64(useafter="01/02/2020"), "required-metadata") == [
        ("USEAFTER", "'01/02/2020' is not an ISO date-time (YYYY-MM-DDTHH:MM:SS)")]


@pytest.mark.parametrize("useafter", ["2020-01-01", "2020-01-01T12:30:00",
                                      "2020-01-01 12:30:00"])
def test_iso_dates_and_date_times_are_valid_useafters(useafter):
    assert findings(sub64(useafter=useafter), "required-metadata") == []


def test_an_unknown_pedigree_is_an_error_listing_the_choices():
    assert findings(sub64(pedigree="FLIGHT"), "required-metadata") == [
        ("PEDIGREE", "PEDIGREE 'FLIGHT' must be one of GROUND, SIMULATION, DUMMY or "
                     "'INFLIGHT YYYY-MM-DD YYYY-MM-DD'")]


def test_an_inflight_pedigree_ending_before_it_starts_is_an_error():
    assert findings(sub64(pedigree="INFLIGHT 2021-01-01 2020-01-01"), "required-metadata") == [
        ("PEDIGREE", "PEDIGREE 'INFLIGHT 2021-01-01 2020-01-01': the end date is before the "
                     "start date")]


@pytest.mark.parametrize("pedigree", ["GROUND", "simulation", "DUMMY",
                                      "INFLIGHT 2020-01-01 2020-06-30"])
def test_valid_pedigrees_are_accepted(pedigree):
    assert findings(sub64(pedigree=pedigree), "required-metadata") == []


@pytest.mark.parametrize("detector", ["IRIS1'), ('X", "IRIS1\nimport os", "IRIS 1", ""])
def test_a_detector_name_with_unsafe_characters_is_an_error(detector):
    found = findings(sub64(detector=detector), "required-metadata")
    assert [where for where, _ in found] == ["DETECTOR"]


def test_a_subarray_name_with_unsafe_characters_is_an_error():
    found = findings(sub64(subarray="SUB'64"), "required-metadata")
    assert found == [("SUBARRAY", "subarray \"SUB'64\" may only contain letters, digits, '_' "
                                  "and '-' (at most 40 characters)")]


def test_a_subarray_name_ending_in_a_newline_is_an_error():
    assert [where for where, _ in findings(sub64(subarray="SUB64\n"), "required-metadata")] == [
        "SUBARRAY"]


def test_a_reftype_other_than_dq_or_mask_is_an_error():
    model = sub64()
    model.meta.reftype = "FLAT"
    assert findings(model, "required-metadata") == [
        ("REFTYPE", "REFTYPE is 'FLAT', expected 'DQ'")]


def test_a_jwst_mask_reftype_is_accepted():
    model = sub64()
    model.meta.reftype = "MASK"
    assert findings(model, "required-metadata") == []


# -- known-detector ----------------------------------------------------------------------------
def test_an_unknown_detector_names_the_detector_table_and_the_choices():
    assert findings(sub64(detector="IRIS9"), "known-detector") == [
        ("INSTRUME/DETECTOR", "unknown detector 'IRIS9' for IRIS; dqref/detectors.toml lists "
                              "IFU, IMG1, IMG2, IMG3, IMG4, IRIS1, IRIS2, IRIS3, IRIS4")]


def test_an_unknown_instrument_names_the_detector_table():
    assert findings(sub64(name="NIRCAM", detector="NRCA1"), "known-detector") == [
        ("INSTRUME/DETECTOR", "unknown instrument 'NIRCAM'; dqref/detectors.toml lists IRIS, "
                              "LIGER")]


def test_a_detector_of_the_other_instrument_is_unknown():
    found = findings(sub64(name="LIGER", detector="IRIS1"), "known-detector")
    assert found == [("INSTRUME/DETECTOR", "unknown detector 'IRIS1' for LIGER; "
                                           "dqref/detectors.toml lists IFU, IMG")]


def test_detector_names_are_case_insensitive():
    assert findings(sub64(name="iris", detector="iris1"), "known-detector") == []


# -- geometry ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("xstart", "ystart"), [(4034, 1), (1, 4034), (0, 1), (1, 0),
                                                (5000, 5000)])
def test_a_subarray_outside_the_detector_is_an_error(xstart, ystart):
    assert findings(sub64(xstart, ystart), "geometry") == [
        ("SUBSTRT1/SUBSTRT2", f"subarray SUB64 (SUBSTRT1={xstart}, SUBSTRT2={ystart}, 64 x 64) "
                              "lies outside the 4096 x 4096 detector")]


def test_a_subarray_touching_the_far_corner_is_inside():
    assert findings(sub64(4033, 4033), "geometry") == []


def test_a_subarray_at_the_origin_is_inside():
    assert findings(sub64(1, 1), "geometry") == []


def test_a_dq_shape_differing_from_the_declared_subarray_size_is_an_error():
    assert findings(sub64(shape=(32, 64)), "geometry") == [
        ("SUBSIZE1/SUBSIZE2", "SUBSIZE2 x SUBSIZE1 = 64 x 64 but DQ is 32 x 64")]


def test_a_full_reference_must_have_the_full_frame_shape():
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IRIS1")
    assert findings(model, "geometry") == [
        ("DQ", "DQ shape 64 x 64 differs from the 4096 x 4096 full frame of IRIS1")]


def test_a_full_reference_must_start_at_the_origin():
    model = DQModel.blank("IRIS", "IRIS1")
    model.meta.subarray.xstart = 2
    assert findings(model, "geometry") == [
        ("SUBSTRT1/SUBSTRT2", "a FULL reference must start at (1, 1)")]


def test_geometry_is_not_checked_for_an_unknown_detector():
    assert findings(sub64(4034, 1, detector="IRIS9"), "geometry") == []


# -- dq-def-consistent -------------------------------------------------------------------------
def _with_dq_def(rows) -> DQModel:
    model = sub64()
    model.dq_def = np.array(rows, dtype=flags.DQ_DEF_DTYPE)
    return model


def test_a_dq_def_value_that_is_not_two_to_the_bit_is_an_error():
    model = sub64()
    table = flags.dq_def_rows()
    table[10]["VALUE"] = 2048
    model.dq_def = table
    assert ("DQ_DEF row 11 (DEAD)", "VALUE 2048 != 2**BIT = 1024") in \
        findings(model, "dq-def-consistent")


def test_a_bit_defined_twice_is_an_error_naming_both_rows():
    model = _with_dq_def([(10, 1024, "DEAD", ""), (10, 1024, "HOT", "")])
    assert findings(model, "dq-def-consistent") == [
        ("DQ_DEF row 2 (HOT)", "BIT 10 is also defined in row 1")]


def test_a_name_defined_twice_is_an_error_naming_both_rows():
    model = _with_dq_def([(10, 1024, "DEAD", ""), (11, 2048, "DEAD", "")])
    assert findings(model, "dq-def-consistent") == [
        ("DQ_DEF row 2 (DEAD)", "NAME DEAD is also defined in row 1")]


def test_a_bit_outside_0_to_31_is_an_error():
    model = _with_dq_def([(32, 0, "DEAD", "")])
    assert findings(model, "dq-def-consistent") == [
        ("DQ_DEF row 1 (DEAD)", "BIT 32 is outside 0..31")]


def test_an_empty_dq_def_is_an_error():
    assert findings(_with_dq_def([]), "dq-def-consistent") == [("DQ_DEF", "no DQ_DEF table")]


def test_a_jwst_style_dq_def_numbering_dead_as_bit_1_is_consistent():
    model = _with_dq_def([(0, 1, "DO_NOT_USE", ""), (1, 2, "DEAD", "")])
    model.dq[3, 3] = 3
    assert findings(model, "dq-def-consistent") == []
    assert findings(model, "bits-defined") == []


# -- bits-defined ------------------------------------------------------------------------------
def test_a_set_bit_missing_from_dq_def_is_an_error_naming_a_pixel():
    model = _with_dq_def([(0, 1, "DO_NOT_USE", "")])
    model.flag([[5, 6], [9, 9]], "DEAD|DO_NOT_USE")
    assert findings(model, "bits-defined") == [
        ("pixel (y=5, x=6)", "bit 10 (value 1024) is set but not defined in DQ_DEF")]


def test_each_undefined_bit_is_reported_once():
    model = _with_dq_def([(0, 1, "DO_NOT_USE", "")])
    model.flag([[1, 1]], "HOT")
    model.flag([[2, 2]], "REFERENCE_PIXEL")
    assert findings(model, "bits-defined") == [
        ("pixel (y=1, x=1)", "bit 11 (value 2048) is set but not defined in DQ_DEF"),
        ("pixel (y=2, x=2)", "bit 31 (value 2147483648) is set but not defined in DQ_DEF")]


# -- reporting ---------------------------------------------------------------------------------
def test_validate_collects_every_problem_in_one_run():
    model = sub64(4034, 1, shape=(32, 64), useafter="2020-13-01", pedigree="FLIGHT")
    model.dq_def = flags.dq_def_rows()[:1]
    model.flag([[0, 0]], "DEAD")
    rules = {f.rule for f in errors(validate(model))}
    assert rules >= {"required-metadata", "geometry", "bits-defined"}
    assert len(findings(model, "geometry")) == 2
    assert len(findings(model, "required-metadata")) == 2


@pytest.fixture
def late_rules():
    """Register a warning rule and then an error rule (run last); unregister afterwards."""
    before = list(RULES)

    @rule("test-late-warning", warnings_only=True)
    def _late_warning(model, config):
        yield Finding("test-late-warning", WARNING, "a doubt")

    @rule("test-late-error")
    def _late_error(model, config):
        yield Finding("test-late-error", ERROR, "a problem")

    yield
    RULES[:] = before


def test_validate_lists_errors_before_warnings(late_rules):
    ordered = [(f.rule, f.severity) for f in validate(sub64())
               if f.rule.startswith("test-late")]
    assert ordered == [("test-late-error", ERROR), ("test-late-warning", WARNING)]


def test_errors_only_skips_rules_that_can_only_warn(late_rules):
    rules = {f.rule for f in validate(sub64(), errors_only=True)}
    assert "test-late-error" in rules and "test-late-warning" not in rules


def test_errors_keeps_only_error_findings():
    kept = Finding("geometry", ERROR, "bad", "DQ")
    assert errors([Finding("x", "warning", "meh"), kept]) == [kept]


def test_a_finding_formats_as_one_line_with_its_rule():
    finding = Finding("geometry", ERROR, "DQ shape 64 x 64 differs", "DQ")
    assert finding.format("ref.fits") == "ref.fits: DQ: error: DQ shape 64 x 64 differs [geometry]"
    assert Finding("dq-array", ERROR, "no DQ array").format() == "error: no DQ array [dq-array]"


def test_model_validate_returns_the_same_findings():
    model = sub64(detector="IRIS9")
    assert model.validate() == validate(model)
