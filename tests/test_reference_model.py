"""The DQ reference model: flags, the seed walkthrough, the dq guard, histogram, manual flags."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dqref import DQModel, flags
from dqref.errors import ManualFlagsError, UnknownDetectorError, UnknownFlagError
from dqref.histogram import flag_histogram
from dqref.manual_flags import apply_manual_flags, parse_manual_flags


# -- flags -------------------------------------------------------------------------------
def test_flag_table_has_the_jwst_values():
    assert len(flags.FLAGS) == 32
    assert flags.PIXEL["GOOD"] == 0
    assert flags.PIXEL["DO_NOT_USE"] == 1
    assert flags.PIXEL["DEAD"] == 1024
    assert flags.PIXEL["HOT"] == 2048
    assert flags.PIXEL["WARM"] == 4096
    assert flags.PIXEL["LOW_QE"] == 8192
    assert flags.PIXEL["REFERENCE_PIXEL"] == 2**31


def test_flag_specifications_in_every_form_give_the_or_of_the_bits():
    assert flags.value("DEAD|HOT") == 3072
    assert flags.value("dead, do_not_use") == 1025
    assert flags.value(["HOT", "WARM"]) == 6144
    assert flags.value(2048) == 2048
    assert flags.value("1024") == 1024


@pytest.mark.parametrize("spec", ["DEADISH", "DEAD|NOPE", 2**32, -1, ""])
def test_unknown_or_out_of_range_flags_are_refused(spec):
    with pytest.raises(UnknownFlagError):
        flags.value(spec)


def test_names_lists_the_bits_of_a_value():
    assert flags.names(3072) == ["DEAD", "HOT"]
    assert flags.names(0) == ["GOOD"]


def test_dq_def_rows_match_the_table():
    rows = flags.dq_def_rows()
    assert rows.dtype.names == ("BIT", "VALUE", "NAME", "DESCRIPTION")
    assert int(rows[10]["VALUE"]) == 1024 and rows[10]["NAME"] == b"DEAD"
    assert all(int(r["VALUE"]) == 2 ** int(r["BIT"]) for r in rows)


def test_translation_moves_bits_by_name_and_keeps_the_rest():
    table = flags.dq_def_rows()
    table[1] = (1, 2, b"DEAD", b"moved")        # this file calls bit 1 DEAD
    table[10] = (10, 1024, b"SATURATED", b"x")  # and bit 10 SATURATED
    dq = np.array([[2 | 1, 1024, 4096]], np.uint32)
    original = dq.copy()
    translated = flags.translate(dq, flags.translation_table(table))
    assert translated.tolist() == [[1024 | 1, 2, 4096]]
    assert np.array_equal(dq, original)


# -- the seed walkthrough, typed with its typos fixed ---------------------------------------
def test_seed_walkthrough_writes_a_valid_reference(tmp_path):
    model = DQModel()
    model.meta.name = "IRIS"
    model.meta.detector = "IRIS1"
    model.dq = np.zeros((4096, 4096))
    model.dq[np.random.randint(0, 4096, size=(10, 2))] = 1024  # noqa: NPY002 - as typed
    model.dq[np.random.randint(0, 4096, size=(10, 2))] = 2048  # noqa: NPY002 - as typed
    counts, edges = np.histogram(model.dq, bins=3)
    assert counts.sum() == 4096 * 4096 and edges[-1] == 2048
    path = tmp_path / "crds_cache" / "references" / "ligeriri" / "iris" / "iris_dq_0001.fits"
    model.write(path)
    again = DQModel.read(path)
    assert again.dq.dtype == np.uint32
    assert np.array_equal(again.dq, model.dq)
    assert not [f for f in again.validate() if f.is_error]


def test_seed_indexing_trap_flags_whole_rows_but_flag_sets_exact_pixels():
    model = DQModel.blank("IRIS", "IRIS1")
    rows = np.array([[5, 7], [9, 11]])
    trap = model.copy()
    trap.dq[rows] = 1024                         # what the seed did: rows 5, 7, 9, 11
    assert np.count_nonzero(trap.dq) == 4 * 4096
    model.dq[5, 7] = flags.PIXEL["HOT"]
    model.flag(rows, "DEAD")
    assert np.count_nonzero(model.dq) == 2
    assert model.dq[5, 7] == 1024 | 2048         # ORed, the HOT bit kept
    assert model.dq[9, 11] == 1024


def test_flag_refuses_positions_outside_the_array():
    model = DQModel.blank("IRIS", "IRIS1")
    with pytest.raises(ValueError, match=r"position \(y=4096, x=3\) is outside"):
        model.flag([[4096, 3]], "DEAD")


# -- the dq guard -----------------------------------------------------------------------
def test_integral_floats_are_stored_as_uint32_copies():
    source = np.full((4, 4), 3.0)
    model = DQModel(source)
    assert model.dq.dtype == np.uint32
    model.dq[0, 0] = 7
    assert source[0, 0] == 3.0


@pytest.mark.parametrize(("value", "words"), [
    (np.nan, "non-finite"), (-1, "negative"), (1.5, "fractional"), (2**32, ">= 2**32")])
def test_bad_dq_values_name_the_problem_and_a_pixel(value, words):
    array = np.zeros((3, 4), dtype=np.float64 if isinstance(value, float) else np.int64)
    array[2, 1] = value
    with pytest.raises(ValueError, match="at pixel") as error:
        DQModel().dq = array
    assert words in str(error.value)
    assert "(y=2, x=1)" in str(error.value)


def test_dq_must_be_two_dimensional():
    with pytest.raises(ValueError, match="2D"):
        DQModel().dq = np.zeros((2, 3, 4))


def test_unknown_detector_names_the_table_file():
    with pytest.raises(UnknownDetectorError, match="detectors.toml"):
        DQModel.blank("IRIS", "IRIS9")


# -- histogram ----------------------------------------------------------------------------
def test_histogram_counts_each_bit_separately():
    dq = np.zeros((10, 10), np.uint32)
    dq[0, 0] = 1024 | 1
    dq[0, 1] = 1024
    counts = flag_histogram(dq)
    assert counts.total == 100 and counts.good == 98
    assert counts.flags["DEAD"] == 2 and counts.flags["DO_NOT_USE"] == 1
    assert set(counts.to_dict()) == {"total", "good", "flags"}
    assert len(counts.to_dict()["flags"]) == 32


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint32, st.tuples(st.integers(1, 30), st.integers(1, 30)),
              elements=st.sampled_from([0, 0, 0, 1, 1024, 1025, 2048, 2**31, 2**32 - 1])))
def test_histogram_agrees_with_a_per_bit_loop(dq):
    counts = flag_histogram(dq)
    for flag in flags.FLAGS:
        assert counts.flags[flag.name] == int(np.count_nonzero(dq & np.uint32(flag.value)))
    assert counts.good == int(np.count_nonzero(dq == 0))


# -- manual flags -------------------------------------------------------------------------
def test_manual_flags_ranges_are_inclusive_and_colon_means_all():
    entries = parse_manual_flags("# x y flag\n1:2 3 DEAD\n: 0 HOT|DO_NOT_USE  # row 0\n",
                                 (4, 5), "m.txt")
    dq = apply_manual_flags(np.zeros((4, 5), np.uint32), entries)
    assert dq[3, 1] == dq[3, 2] == 1024 and dq[3, 3] == 0
    assert (dq[0] == 2048 | 1).all()


@pytest.mark.parametrize(("text", "words"), [
    ("1 2\n", "m.txt:1: expected 'x y FLAG'"),
    ("\n9 0 DEAD\n", "m.txt:2: x '9' is outside"),
    ("0 0 NOPE\n", "m.txt:1: unknown flag"),
    ("a 0 DEAD\n", "m.txt:1: x 'a' is not an integer"),
])
def test_malformed_manual_flag_lines_name_file_and_line(text, words):
    with pytest.raises(ManualFlagsError) as error:
        parse_manual_flags(text, (4, 5), "m.txt")
    assert words in str(error.value)


def test_flag_names_follow_current_jwst_and_accept_historical_aliases():
    assert flags.names(256) == ["RESERVED"]
    assert flags.value("UNRELIABLE_ERROR") == 256
    assert flags.value("UNRELIABLE_RESET") == flags.PIXEL["FLUX_ESTIMATED"] == 2**28
    old_style = flags.dq_def_rows()
    old_style[8] = (8, 256, b"UNRELIABLE_ERROR", b"as older JWST MASK files name bit 8")
    assert flags.translation_table(old_style) == {}
