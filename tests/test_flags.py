"""The flag table (JWST convention) and the name <-> value helpers of `dqref.flags`."""

from __future__ import annotations

import numpy as np
import pytest

from dqref import flags
from dqref.errors import UnknownFlagError


def test_the_table_defines_each_of_the_32_bits_once_with_value_two_to_the_bit():
    assert [f.bit for f in flags.FLAGS] == list(range(32))
    assert all(f.value == 2**f.bit for f in flags.FLAGS)
    assert len({f.name for f in flags.FLAGS}) == 32


@pytest.mark.parametrize(("name", "expected"), [
    ("DO_NOT_USE", 1), ("SATURATED", 2), ("JUMP_DET", 4), ("DEAD", 1024), ("HOT", 2048),
    ("WARM", 4096), ("LOW_QE", 8192), ("REFERENCE_PIXEL", 2**31),
])
def test_flag_values_follow_the_jwst_convention(name, expected):
    assert flags.PIXEL[name] == expected
    assert flags.value(name) == expected


def test_good_is_zero():
    assert flags.PIXEL["GOOD"] == 0
    assert flags.value("GOOD") == 0


def test_value_of_names_joined_by_a_bar_is_their_or():
    assert flags.value("DEAD|HOT") == 3072
    assert flags.value("DEAD|DO_NOT_USE") == 1025


def test_value_of_the_same_flag_twice_is_not_a_sum():
    assert flags.value("DO_NOT_USE|DO_NOT_USE") == 1
    assert flags.value(["DEAD", "DEAD"]) == 1024


def test_value_of_a_list_of_names():
    assert flags.value(["DEAD", "HOT", "DO_NOT_USE"]) == 3073


def test_value_of_an_integer_is_that_integer():
    assert flags.value(1024) == 1024
    assert flags.value(np.uint32(2**31)) == 2**31
    assert flags.value(2**32 - 1) == 2**32 - 1


def test_value_of_a_decimal_string():
    assert flags.value("1024") == 1024


def test_value_accepts_lower_case_names_and_spaces_around_the_bar():
    assert flags.value("dead | hot") == 3072


def test_value_accepts_historical_aliases():
    assert flags.value("UNRELIABLE_ERROR") == flags.PIXEL["RESERVED"] == 256
    assert flags.value("UNRELIABLE_RESET") == flags.PIXEL["FLUX_ESTIMATED"] == 2**28


@pytest.mark.parametrize("spec", ["DAED", "DEAD|HOTT", ["DEAD", "NOPE"]])
def test_an_unknown_name_raises_unknown_flag_error_naming_it(spec):
    with pytest.raises(UnknownFlagError, match="unknown flag '(DAED|HOTT|NOPE)'"):
        flags.value(spec)


def test_unknown_flag_error_is_a_value_error():
    with pytest.raises(ValueError, match="unknown flag 'DAED'"):
        flags.value("DAED")


@pytest.mark.parametrize("number", [-1, 2**32])
def test_an_integer_outside_32_bits_is_refused(number):
    with pytest.raises(UnknownFlagError, match=rf"flag value {number} is outside \[0, 2\*\*32\)"):
        flags.value(number)


def test_an_empty_specification_is_refused():
    with pytest.raises(UnknownFlagError, match="empty flag specification"):
        flags.value("  ")


def test_a_boolean_is_not_a_flag():
    with pytest.raises(UnknownFlagError, match="not a boolean"):
        flags.value(True)


def test_names_lists_the_set_bits_in_bit_order():
    assert flags.names(3072) == ["DEAD", "HOT"]
    assert flags.names(1025) == ["DO_NOT_USE", "DEAD"]
    assert flags.names(2**31 | 1) == ["DO_NOT_USE", "REFERENCE_PIXEL"]


def test_names_of_zero_is_good():
    assert flags.names(0) == ["GOOD"]


def test_names_inverts_value_for_every_single_flag():
    for flag in flags.FLAGS:
        assert flags.names(flag.value) == [flag.name]
        assert flags.value(flags.names(flag.value)) == flag.value


def test_flag_lookup_by_name_is_case_insensitive():
    dead = flags.flag("dead")
    assert (dead.bit, dead.value, dead.description) == (10, 1024, "Dead pixel")


def test_flag_lookup_of_an_unknown_name_raises():
    with pytest.raises(UnknownFlagError, match="unknown flag 'DAED'"):
        flags.flag("DAED")


def test_group_only_flags_are_the_per_group_conditions():
    group_only = {f.name for f in flags.FLAGS if f.group_only}
    assert group_only == {"SATURATED", "JUMP_DET", "DROPOUT", "OUTLIER", "PERSISTENCE",
                          "AD_FLOOR", "CHARGELOSS"}
    assert flags.GROUP_ONLY == 2 | 4 | 8 | 16 | 32 | 64 | 128


def test_dq_def_rows_has_the_jwst_mask_columns():
    table = flags.dq_def_rows()
    assert table.dtype.names == ("BIT", "VALUE", "NAME", "DESCRIPTION")
    assert len(table) == 32


def test_dq_def_rows_lists_every_flag_with_its_value_and_description():
    table = flags.dq_def_rows()
    assert list(table["BIT"]) == list(range(32))
    assert [int(v) for v in table["VALUE"]] == [2**bit for bit in range(32)]
    dead = table[10]
    assert (int(dead["BIT"]), int(dead["VALUE"]), dead["NAME"], dead["DESCRIPTION"]) == (
        10, 1024, b"DEAD", b"Dead pixel")
    assert int(table[31]["VALUE"]) == 2**31


def test_dq_def_mapping_reads_name_to_value():
    mapping = flags.dq_def_mapping(flags.dq_def_rows())
    assert mapping["DEAD"] == 1024
    assert mapping == {name: value for name, value in flags.PIXEL.items() if name != "GOOD"}


def _file_dq_def():
    """A JWST-MASK-style DQ_DEF that numbers DEAD as bit 1 (value 2)."""
    table = flags.dq_def_rows()[:2].copy()
    table[1] = (1, 2, b"DEAD", b"dead, as this file numbers it")
    return table


def test_a_standard_table_needs_no_translation():
    assert flags.translation_table(flags.dq_def_rows()) == {}


def test_translation_table_maps_a_file_value_to_the_standard_value_of_its_name():
    assert flags.translation_table(_file_dq_def()) == {2: 1024}


def test_translate_moves_translated_bits_and_keeps_the_others():
    dq = np.array([[0, 2, 3], [1, 2 | 2048, 4096]], dtype=np.uint32)
    translated = flags.translate(dq, {2: 1024})
    assert translated.dtype == np.uint32
    assert translated.tolist() == [[0, 1024, 1025], [1, 1024 | 2048, 4096]]


def test_translate_does_not_modify_its_input():
    dq = np.array([[2, 3]], dtype=np.uint32)
    flags.translate(dq, {2: 1024})
    assert dq.tolist() == [[2, 3]]


def test_translate_swaps_two_bits_without_mixing_them():
    dq = np.array([[1024, 2048, 1024 | 2048]], dtype=np.uint32)
    assert flags.translate(dq, {1024: 2048, 2048: 1024}).tolist() == [[2048, 1024, 3072]]


def test_translation_refuses_a_name_that_is_not_a_known_flag():
    table = flags.dq_def_rows()[:1].copy()
    table[0] = (0, 1, b"SPARKLY", b"not a JWST flag")
    with pytest.raises(UnknownFlagError, match="unknown flag 'SPARKLY'"):
        flags.translation_table(table)
