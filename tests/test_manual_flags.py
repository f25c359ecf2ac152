"""Manual flag lists in the jwst_reffiles format: ``x y FLAG``, 0-indexed, inclusive ranges."""

from __future__ import annotations

import re

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from dqref.cli import app
from dqref.create import create_reference
from dqref.errors import ManualFlagsError
from dqref.manual_flags import apply_manual_flags, parse_manual_flags, read_manual_flags

SHAPE = (20, 30)  # rows (y), columns (x)


def flagged_by(text: str, shape=SHAPE) -> np.ndarray:
    return apply_manual_flags(np.zeros(shape, np.uint32), parse_manual_flags(text, shape))


def test_a_single_pixel_line_flags_column_x_row_y():
    dq = flagged_by("12 7 DEAD\n")
    assert dq[7, 12] == 1024
    assert np.count_nonzero(dq) == 1


def test_parse_returns_slices_value_and_line_number():
    (entry,) = parse_manual_flags("\n# header\n3 4 HOT\n", SHAPE)
    assert (entry.columns, entry.rows, entry.value, entry.line) == (
        slice(3, 4), slice(4, 5), 2048, 3)


def test_ranges_are_inclusive_at_both_ends():
    dq = flagged_by("2:4 10:11 HOT\n")
    assert np.argwhere(dq).tolist() == [[10, 2], [10, 3], [10, 4], [11, 2], [11, 3], [11, 4]]


def test_a_range_of_one_pixel():
    assert np.argwhere(flagged_by("5:5 6:6 DEAD")).tolist() == [[6, 5]]


def test_a_colon_means_the_whole_axis():
    dq = flagged_by("0 : REFERENCE_PIXEL\n")
    assert np.count_nonzero(dq[:, 0]) == SHAPE[0] and np.count_nonzero(dq) == SHAPE[0]


def test_open_ranges_run_to_the_edge():
    dq = flagged_by("27: :1 DEAD\n")
    assert np.argwhere(dq).tolist() == [[0, 27], [0, 28], [0, 29], [1, 27], [1, 28], [1, 29]]


def test_comments_and_blank_lines_are_ignored():
    dq = flagged_by("# x y flag\n\n   \n1 1 DEAD   # a dead pixel\n#2 2 HOT\n")
    assert np.argwhere(dq).tolist() == [[1, 1]]


def test_flags_can_be_joined_by_a_bar_or_given_as_an_integer():
    dq = flagged_by("0 0 DEAD|DO_NOT_USE\n1 0 4096\n2 0 hot, do_not_use\n")
    assert dq[0, :3].tolist() == [1025, 4096, 2049]


def test_overlapping_lines_or_their_flags_together():
    dq = flagged_by("0:2 0 DEAD\n1 0 DO_NOT_USE\n")
    assert dq[0, :3].tolist() == [1024, 1025, 1024]


def test_the_far_edge_pixel_is_inside():
    assert flagged_by("29 19 HOT")[19, 29] == 2048


def test_apply_returns_a_copy_and_keeps_existing_flags():
    dq = np.zeros(SHAPE, np.uint32)
    dq[0, 0] = 2048
    result = apply_manual_flags(dq, parse_manual_flags("0 0 DEAD", SHAPE))
    assert result[0, 0] == 3072
    assert dq[0, 0] == 2048


@pytest.mark.parametrize(("line", "message"), [
    ("30 0 DEAD", "x '30' is outside 0..29"),
    ("0 20 DEAD", "y '20' is outside 0..19"),
    ("-1 0 DEAD", "x '-1' is outside 0..29"),
    ("25:30 0 DEAD", "x '25:30' is outside 0..29"),
    ("5:3 0 DEAD", "x '5:3' is outside 0..29"),
])
def test_coordinates_outside_the_array_are_refused(line, message):
    with pytest.raises(ManualFlagsError, match=f"<text>:2: {message}"):
        parse_manual_flags(f"0 0 DEAD\n{line}\n", SHAPE)


def test_a_non_integer_coordinate_is_refused_naming_the_line():
    with pytest.raises(ManualFlagsError, match=r"<text>:1: y 'a' is not an integer, a:b range "
                                               r"or ':'"):
        parse_manual_flags("3 a DEAD", SHAPE)


def test_a_line_with_two_fields_is_refused_naming_the_line():
    with pytest.raises(ManualFlagsError, match=r"<text>:3: expected 'x y FLAG', got '3 4'"):
        parse_manual_flags("# c\n1 1 DEAD\n3 4\n", SHAPE)


def test_an_unknown_flag_is_refused_naming_the_line_and_flag():
    with pytest.raises(ManualFlagsError, match=r"<text>:1: unknown flag 'DAED'"):
        parse_manual_flags("1 1 DAED", SHAPE)


def test_errors_in_a_file_name_the_file_and_line(tmp_path):
    path = tmp_path / "flags.txt"
    path.write_text("# x y flag\n1 1 DEAD\n100 1 HOT\n")
    with pytest.raises(ManualFlagsError, match=re.escape(f"{path}:3: x '100' is outside 0..29")):
        read_manual_flags(path, SHAPE)


def test_read_manual_flags_parses_a_file(tmp_path):
    path = tmp_path / "flags.txt"
    path.write_text("1 2 DEAD\n0:1 0 HOT\n")
    entries = read_manual_flags(path, SHAPE)
    assert [(e.columns, e.rows, e.value, e.line) for e in entries] == [
        (slice(1, 2), slice(2, 3), 1024, 1), (slice(0, 2), slice(0, 1), 2048, 2)]


def test_a_missing_flag_file_is_a_manual_flags_error(tmp_path):
    with pytest.raises(ManualFlagsError, match="absent.txt: no such file"):
        read_manual_flags(tmp_path / "absent.txt", SHAPE)


def test_manual_flags_error_is_a_value_error():
    assert issubclass(ManualFlagsError, ValueError)


# -- jwst_reffiles files as shipped -----------------------------------------------------------
# Verbatim copy of jwst_reffiles 1.0.1, jwst_reffiles/bad_pixel_mask/miri_mirimage_manual_flags.txt
# (BSD-3-Clause, Space Telescope Science Institute): its comment block, the uncommented
# column-header row and its one entry.
JWST_REFFILES_MIRIMAGE = """\
# This file contains a list of pixels to be added to the bad pixel mask. This
# list can be used as a catch-all to be sure that known bad pixels which may
# not be found using the bad pixel search algorithms are still flagged.
#
# Note that entries in the x and y columns can be single numbers, or a range
# of pixels (e.g. 350:352). When a range is given in this way, the values are
# assumed to be INCLUSIVE, so 350:352 means that rows 350, 351 AND 352 will be
# flagged. This is slightly different from python's convention of stopping
# one short of the second index in a range. The code also supports python-like
# behavior where the starting or ending value can be omitted, and the code
# will then extend the range to 0 or the maximum index number, respectively.
# e.g.  2030:   will flag all rows from 2030 to the end
#       :10     will flag all rows from 0 to 10 (inclusive)
#        :      will flag all rows
#
# Note that coordinates are assumed to be in a 0-indexed coordinate system.
#
# Flag values must be strings that match those in the jwst calibration
# pipeline's list of bad pixel types. Values are not case sensitive.
#
# This is a list of bad pixels for the MIRI imaging detector
#
 x       y       flag
384:385  :      UNRELIABLE_SLOPE
"""
UNRELIABLE_SLOPE = 16777216


def test_a_shipped_jwst_reffiles_file_with_its_column_header_row_is_read():
    (entry,) = parse_manual_flags(JWST_REFFILES_MIRIMAGE, (1024, 1032))
    assert (entry.columns, entry.rows, entry.value, entry.line) == (
        slice(384, 386), slice(0, 1024), UNRELIABLE_SLOPE, 24)


def test_a_shipped_file_with_only_its_header_row_flags_nothing():
    header_only = JWST_REFFILES_MIRIMAGE.rsplit("384:385", 1)[0]
    assert parse_manual_flags(header_only, SHAPE) == []


def test_the_shipped_file_through_read_manual_flags(tmp_path):
    path = tmp_path / "miri_mirimage_manual_flags.txt"
    path.write_text(JWST_REFFILES_MIRIMAGE)
    entries = read_manual_flags(path, (1024, 1032))
    dq = apply_manual_flags(np.zeros((1024, 1032), np.uint32), entries)
    assert np.count_nonzero(dq) == 2 * 1024
    assert set(np.unique(dq[:, 384:386])) == {UNRELIABLE_SLOPE}


def test_flag_names_are_case_insensitive_as_in_jwst_reffiles():
    # the entries of jwst_reffiles' fgs_guider1_manual_flags.txt are lower case
    dq = flagged_by("  x       y       flag\n1023 10      dead\n0      0:19     low_qe\n",
                    (20, 1030))
    assert dq[10, 1023] == 1024
    assert set(np.unique(dq[:, 0])) == {8192}


def test_header_columns_may_come_in_any_order_and_any_case():
    dq = flagged_by("FLAG Y X\nHOT 7 12\n")
    assert np.argwhere(dq).tolist() == [[7, 12]] and dq[7, 12] == 2048


def test_extra_header_columns_are_ignored_as_jwst_reffiles_does():
    dq = flagged_by('x y flag note\n12 7 DEAD "found by eye"\n3 4 HOT checked\n')
    assert dq[7, 12] == 1024 and dq[4, 3] == 2048 and np.count_nonzero(dq) == 2


def test_tab_separated_columns_and_quoted_values_are_read():
    dq = flagged_by('x\ty\tflag\n"2:3"\t"5"\t"DEAD"\n')
    assert np.argwhere(dq).tolist() == [[5, 2], [5, 3]]


def test_comma_separated_columns_are_read_when_the_header_is():
    dq = flagged_by("x,y,flag\n2:3, 5, DEAD\n1,1,hot\n")
    assert np.argwhere(dq).tolist() == [[1, 1], [5, 2], [5, 3]]


def test_a_header_row_without_a_flag_column_is_refused_naming_the_line():
    with pytest.raises(ManualFlagsError,
                       match=r"<text>:2: the header row names columns \['x', 'y', 'flags'\]; "
                             r"it needs x, y and flag, once each"):
        parse_manual_flags("# c\nx y flags\n1 1 DEAD\n", SHAPE)


def test_a_row_with_fewer_values_than_the_header_is_refused_naming_the_line():
    with pytest.raises(ManualFlagsError,
                       match=r"<text>:3: expected 4 values \(x, y, flag, note\), got '3 4 DEAD'"):
        parse_manual_flags("x y flag note\n1 1 DEAD a\n3 4 DEAD\n", SHAPE)


def test_an_unknown_flag_in_a_headed_file_is_refused_not_skipped():
    # jwst_reffiles prints and skips it (fgs_guider1 ships a 'wonky' entry); a typo would
    # silently drop a flag from the reference, so we refuse it.
    with pytest.raises(ManualFlagsError, match=r"<text>:2: unknown flag 'wonky'"):
        parse_manual_flags("x y flag\n1 1 wonky\n", SHAPE)


def test_dqref_create_loads_the_shipped_file(tmp_path):
    flag_file = tmp_path / "miri_mirimage_manual_flags.txt"
    flag_file.write_text(JWST_REFFILES_MIRIMAGE)
    output = tmp_path / "mask.fits"
    result = CliRunner().invoke(app, ["create", str(output), "-i", "IRIS", "-d", "IRIS1",
                                      "--flags", str(flag_file)])
    assert result.exit_code == 0, result.output
    dq = fits.getdata(output, "DQ")
    assert np.count_nonzero(dq) == 2 * dq.shape[0]
    assert set(np.unique(dq[:, 384:386])) == {UNRELIABLE_SLOPE}


def test_create_reference_loads_the_shipped_file(tmp_path):
    flag_file = tmp_path / "miri_mirimage_manual_flags.txt"
    flag_file.write_text(JWST_REFFILES_MIRIMAGE)
    model = create_reference("LIGER", "IMG", flag_file)
    assert np.count_nonzero(model.dq) == 2 * model.shape[0]
    assert set(np.unique(model.dq[:, 384:386])) == {UNRELIABLE_SLOPE}


def test_a_fifo_as_flag_list_is_refused_without_blocking(tmp_path):
    import os
    import subprocess
    import sys

    fifo = tmp_path / "flags.txt"
    os.mkfifo(fifo)
    completed = subprocess.run(
        [sys.executable, "-m", "dqref.cli", "create", str(tmp_path / "out.fits"), "-i", "IRIS",
         "-d", "IMG1", "--flags", str(fifo)], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert completed.stderr == f"dqref: error: {fifo}: not a regular file (a FIFO)\n"
    assert not (tmp_path / "out.fits").exists()

