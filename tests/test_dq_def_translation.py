"""Semantic rules read a mask through its own DQ_DEF, as stdatamodels does when JWST opens it.

JWST's dq_init tests build masks whose DQ_DEF numbers the flags from bit 0 (DEAD is bit 1,
value 2, which the standard table calls SATURATED). Every semantic rule must find in such a
mask exactly what it finds in the same mask written in the standard bits, and such a mask
must pass `dqref validate`, `DQModel.write` and `LocalCache.add`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from typer.testing import CliRunner

from dqref import DQModel, flags
from dqref.cache.local_cache import LocalCache
from dqref.cli import app
from dqref.model import Subarray
from dqref.validation import RULES

SEMANTIC_RULES = ("dq-def-known-names", "group-only-flags", "dead-and-hot",
                  "adj-open-without-open", "reference-pixel-border", "do-not-use-policy",
                  "flagged-fraction")

# jwst/dq_init/tests/test_dq_init.py, make_maskmodel: (BIT, VALUE, NAME, DESCRIPTION)
JWST_DQ_INIT_TEST_DQ_DEF = [(0, 1, "DO_NOT_USE", "Bad Pixel do not use"),
                            (1, 2, "DEAD", "Dead Pixel"),
                            (2, 4, "HOT", "Hot pixel"),
                            (3, 8, "UNRELIABLE_SLOPE", "Large slope variance"),
                            (4, 16, "RC", "RC pixel"),
                            (5, 32, "REFERENCE_PIXEL", "Reference Pixel")]


def _jwst_like_bit_order() -> list[int]:
    """Standard bit -> file bit: JWST's test numbering first, every other flag after it."""
    first = [flags.flag(name).bit for _, _, name, _ in JWST_DQ_INIT_TEST_DQ_DEF]
    rest = [bit for bit in range(32) if bit not in first]
    file_bit = {standard: index for index, standard in enumerate(first + rest)}
    return [file_bit[bit] for bit in range(32)]


FILE_BIT = _jwst_like_bit_order()


def renumbered(model: DQModel) -> DQModel:
    """Return ``model`` with every DQ_DEF row and DQ bit moved to the JWST-like numbering
    (names, including unknown ones, travel with their row)."""
    other = model.copy()
    dq = np.zeros_like(model.dq)
    for bit in range(32):
        dq |= ((model.dq >> np.uint32(bit)) & np.uint32(1)) << np.uint32(FILE_BIT[bit])
    other.dq = dq
    table = model.dq_def.copy()
    for row in table:
        row["BIT"] = FILE_BIT[int(row["BIT"])]
        row["VALUE"] = 1 << int(row["BIT"])
    other.dq_def = table
    return other


def interior(size: int = 64, xstart: int = 101, ystart: int = 201) -> DQModel:
    """A clean subarray reference of IRIS1 (1-indexed origin), off the reference border."""
    model = DQModel(np.zeros((size, size), np.uint32), name="IRIS", detector="IRIS1",
                    useafter="2020-01-01")
    model.meta.subarray = Subarray(f"SUB{size}", xstart, ystart, size, size)
    return model


def findings_of(model: DQModel, rule: str):
    return [f for f in model.validate() if f.rule == rule]


# One mask per semantic rule, in standard bits, that the rule reports.
def _unknown_dq_def_name() -> DQModel:
    model = interior()
    model.dq_def[20] = (20, 2**20, b"SPARKLY", b"")
    return model


def _group_only() -> DQModel:
    model = interior()
    model.flag([[7, 8], [9, 1]], "JUMP_DET")
    model.flag([[20, 2]], "SATURATED|DO_NOT_USE")
    return model


def _dead_and_hot() -> DQModel:
    model = interior()
    model.flag([[1, 2], [40, 3]], "DEAD|HOT|DO_NOT_USE")
    return model


def _orphan_adj_open() -> DQModel:
    model = interior()
    model.flag([[10, 10]], "OPEN|DO_NOT_USE")
    model.flag([[11, 11], [30, 30]], "ADJ_OPEN")
    return model


def _stray_reference_pixel() -> DQModel:
    model = interior()
    model.flag([[5, 5], [6, 6]], "REFERENCE_PIXEL")
    return model


def _incomplete_border() -> DQModel:
    corner = interior(size=16, xstart=1, ystart=1)  # rows and columns 0..3 are border
    corner.dq[:4, :] = corner.dq[:, :4] = flags.PIXEL["REFERENCE_PIXEL"]
    corner.dq[0, 9] = corner.dq[12, 2] = 0
    return corner


def _without_do_not_use() -> DQModel:
    model = interior()
    model.flag([[2, 3], [4, 5]], "DEAD")
    model.flag([[6, 7]], "HOT|DO_NOT_USE")
    model.flag([[8, 9]], "OPEN")
    return model


def _too_many_flagged() -> DQModel:
    model = interior(size=10, xstart=1, ystart=1)  # border flagged, 6 interior pixels WARM
    model.dq[:4, :] = model.dq[:, :4] = flags.PIXEL["REFERENCE_PIXEL"]
    model.flag([[5, i] for i in range(4, 10)] + [[6, 4]], "WARM")
    return model


BROKEN: dict[str, Callable[[], DQModel]] = {
    "dq-def-known-names": _unknown_dq_def_name,
    "group-only-flags": _group_only,
    "dead-and-hot": _dead_and_hot,
    "adj-open-without-open": _orphan_adj_open,
    "reference-pixel-border": _stray_reference_pixel,
    "reference-pixel-border (incomplete)": _incomplete_border,
    "do-not-use-policy": _without_do_not_use,
    "flagged-fraction": _too_many_flagged,
}


def test_every_semantic_rule_has_a_case_here():
    registered = {name for name, _ in RULES}
    assert set(SEMANTIC_RULES) <= registered
    assert {case.split(" ")[0] for case in BROKEN} == set(SEMANTIC_RULES)


def test_the_renumbering_is_the_jwst_dq_init_test_numbering():
    table = renumbered(interior()).dq_def
    by_name = {flags.decode_name(row["NAME"]): (int(row["BIT"]), int(row["VALUE"]))
               for row in table}
    for bit, value, name, _ in JWST_DQ_INIT_TEST_DQ_DEF:
        assert by_name[name] == (bit, value)
    assert sorted(bit for bit, _ in by_name.values()) == list(range(32))


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_rule_finds_the_same_in_a_renumbered_mask(case):
    rule = case.split(" ")[0]
    standard = BROKEN[case]()
    expected = findings_of(standard, rule)
    assert expected, f"the {case} case does not break its rule"
    other = renumbered(standard)
    if rule == "dq-def-known-names":  # the message names the bit as the file numbers it
        expected = [dataclasses.replace(f, message=f.message.replace(
            "bit 20", f"bit {FILE_BIT[20]}")) for f in expected]
    else:
        assert not np.array_equal(other.dq, standard.dq)
    assert findings_of(other, rule) == expected
    # and no other rule is misled by the numbering
    assert [f for f in other.validate() if f.rule != rule] == \
        [f for f in standard.validate() if f.rule != rule]


def test_a_clean_renumbered_mask_has_no_finding_although_its_raw_bits_look_group_only():
    model = interior()
    model.flag([[3, 4]], "DEAD|DO_NOT_USE")
    model.flag([[10, 10]], "OPEN|DO_NOT_USE")
    model.flag([[11, 11]], "ADJ_OPEN")
    model.flag([[20, 20]], "HOT|DO_NOT_USE")
    other = renumbered(model)
    assert other.dq[3, 4] == 2 | 1 and other.dq[20, 20] == 4 | 1  # SATURATED, JUMP_DET raw
    assert other.validate() == []


def test_a_non_standard_dq_def_still_drives_the_do_not_use_rule_by_its_own_names():
    # DO_NOT_USE itself renumbered: the rule must look for the file's DO_NOT_USE bit
    model = interior()
    model.dq_def = np.array([(3, 8, "DO_NOT_USE", ""), (0, 1, "DEAD", "")],
                            dtype=flags.DQ_DEF_DTYPE)
    model.dq[2, 2] = 1 | 8
    assert findings_of(model, "do-not-use-policy") == []
    model.dq[4, 4] = 1
    [finding] = findings_of(model, "do-not-use-policy")
    assert (finding.message, finding.where) == ("1 DEAD pixels lack DO_NOT_USE",
                                                "pixel (y=4, x=4)")


# -- the JWST dq_init test mask through what users run ----------------------------------------
def jwst_dq_init_test_mask() -> DQModel:
    """An IRIS1 subarray mask with JWST's dq_init test DQ_DEF, one pixel of each flag."""
    model = interior()
    model.dq_def = np.array(JWST_DQ_INIT_TEST_DQ_DEF, dtype=flags.DQ_DEF_DTYPE)
    model.dq[3, 4] = 2 | 1  # DEAD | DO_NOT_USE
    model.dq[5, 6] = 4 | 1  # HOT | DO_NOT_USE
    model.dq[7, 8] = 8  # UNRELIABLE_SLOPE
    model.dq[9, 9] = 16  # RC
    return model


def test_the_jwst_dq_init_test_mask_is_valid():
    assert jwst_dq_init_test_mask().validate() == []


def test_the_jwst_dq_init_test_mask_is_written_as_it_is(tmp_path):
    model = jwst_dq_init_test_mask()
    model.write(tmp_path / "mask.fits")
    back = DQModel.read(tmp_path / "mask.fits")
    assert np.array_equal(back.dq, model.dq)
    assert [(int(r["BIT"]), flags.decode_name(r["NAME"])) for r in back.dq_def] == \
        [(bit, name) for bit, _, name, _ in JWST_DQ_INIT_TEST_DQ_DEF]


def test_dqref_validate_accepts_the_jwst_dq_init_test_mask(tmp_path):
    jwst_dq_init_test_mask().write(tmp_path / "mask.fits")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "mask.fits")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("mask.fits: valid")


def test_the_cache_accepts_the_jwst_dq_init_test_mask(tmp_path):
    jwst_dq_init_test_mask().write(tmp_path / "mask.fits")
    cache = LocalCache(tmp_path / "cache")
    cache.init()
    added = cache.add(tmp_path / "mask.fits")
    assert added.reference.exists()


# -- what histogram and show report of it: the file's flags by their own names -------------
def test_the_histogram_of_the_jwst_dq_init_test_mask_counts_its_flags_by_their_names():
    counts = jwst_dq_init_test_mask().histogram()
    # Raw bits would say SATURATED (2), JUMP_DET (4), DROPOUT (8) and OUTLIER (16).
    assert counts.nonzero() == {"DO_NOT_USE": 2, "DEAD": 1, "HOT": 1,
                                "UNRELIABLE_SLOPE": 1, "RC": 1}
    assert (counts.flagged, counts.good) == (4, 64 * 64 - 4)


def test_the_histogram_of_a_renumbered_mask_equals_that_of_the_standard_one():
    model = interior()
    model.flag([[3, 4], [5, 5]], "DEAD|DO_NOT_USE")
    model.flag([[10, 10]], "OPEN|DO_NOT_USE")
    model.flag([[11, 11], [12, 12], [13, 13]], "ADJ_OPEN")
    model.flag([[20, 20]], "HOT|DO_NOT_USE")
    other = renumbered(model)
    assert not np.array_equal(other.dq, model.dq)
    assert other.histogram().to_dict() == model.histogram().to_dict()


def test_an_unknown_dq_def_flag_keeps_its_bit_in_the_standard_view():
    model = jwst_dq_init_test_mask()
    model.dq_def = np.concatenate([model.dq_def, np.array([(20, 2**20, "SPARKLY", "")],
                                                          dtype=flags.DQ_DEF_DTYPE)])
    model.dq[30, 30] = 2**20
    standard = model.standard_dq()
    assert standard[30, 30] == 2**20
    assert standard[3, 4] == flags.value("DEAD|DO_NOT_USE")
    assert model.dq[3, 4] == 2 | 1  # the model's own array is the file's raw integers


def test_a_standard_mask_is_its_own_standard_view():
    model = interior()
    model.flag([[3, 4]], "DEAD|DO_NOT_USE")
    assert model.standard_dq() is model.dq


def test_dqref_histogram_json_of_the_jwst_dq_init_test_mask(tmp_path):
    import json

    jwst_dq_init_test_mask().write(tmp_path / "mask.fits")
    result = CliRunner().invoke(app, ["histogram", str(tmp_path / "mask.fits"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {name: n for name, n in report["flags"].items() if n} == \
        {"DO_NOT_USE": 2, "DEAD": 1, "HOT": 1, "UNRELIABLE_SLOPE": 1, "RC": 1}


def test_dqref_show_draws_the_jwst_dq_init_test_mask_with_its_own_flag_names(tmp_path):
    pytest.importorskip("matplotlib")
    from dqref import pictures

    model = jwst_dq_init_test_mask()
    legend = [flags.FLAGS[bit - 1].name for bit in
              np.unique(pictures.highest_flag(model.standard_dq())) if bit]
    assert sorted(legend) == ["DEAD", "HOT", "RC", "UNRELIABLE_SLOPE"]
    model.write(tmp_path / "mask.fits")
    result = CliRunner().invoke(app, ["show", str(tmp_path / "mask.fits"),
                                      "--png", str(tmp_path / "mask.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mask.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
