"""Comparing masks: per-flag gains and losses, newly bad/good, listing, JSON, cache lookup."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import cache_with, full_frame_reference, subarray_reference
from typer.testing import CliRunner

from dqref import DQModel, flags
from dqref.cli import app
from dqref.compare import MaskMismatchError, compare_masks, diff_references

DEAD, HOT, DNU = (flags.PIXEL[n] for n in ("DEAD", "HOT", "DO_NOT_USE"))
runner = CliRunner()


def masks():
    old = np.zeros((8, 8), np.uint32)
    new = old.copy()
    old[0, 0] = DEAD                  # gains DO_NOT_USE: not newly bad
    new[0, 0] = DEAD | DNU
    new[1, 1] = HOT                   # newly bad
    old[2, 2] = HOT                   # newly good
    old[3, 3] = new[3, 3] = DEAD      # unchanged
    return old, new


def test_gaining_do_not_use_is_not_newly_bad():
    result = compare_masks(*masks())
    assert result.changed_pixels == 3
    assert (result.newly_bad, result.newly_good) == (1, 1)
    assert vars(result.per_flag["DO_NOT_USE"]) == {"gained": 1, "lost": 0, "unchanged": 0}
    assert vars(result.per_flag["DEAD"]) == {"gained": 0, "lost": 0, "unchanged": 2}
    assert vars(result.per_flag["HOT"]) == {"gained": 1, "lost": 1, "unchanged": 0}


def test_changes_are_listed_by_flag_name_in_row_order():
    result = compare_masks(*masks())
    assert result.changes(2) == [(0, 0, DEAD, DEAD | DNU), (1, 1, 0, HOT)]
    report = result.format_report(1)
    assert "(y=0, x=0): DEAD -> DO_NOT_USE|DEAD" in report
    assert result.to_dict(1)["changes"] == [{"y": 0, "x": 0, "old": ["DEAD"],
                                             "new": ["DO_NOT_USE", "DEAD"]}]


def test_different_shapes_or_detectors_are_refused(tmp_path):
    with pytest.raises(MaskMismatchError, match="shape"):
        compare_masks(np.zeros((2, 2), np.uint32), np.zeros((3, 3), np.uint32))
    one = DQModel.read(subarray_reference(tmp_path / "a.fits"))
    other = one.copy()
    other.meta.detector = "IRIS2"
    with pytest.raises(MaskMismatchError, match="detector=IRIS2"):
        diff_references(other, one)


def test_cli_diff_text_json_and_list(tmp_path):
    old = subarray_reference(tmp_path / "old.fits", flags={"DEAD": [(1, 1)]})
    new = subarray_reference(tmp_path / "new.fits", flags={"DEAD|DO_NOT_USE": [(1, 1)],
                                                           "HOT|DO_NOT_USE": [(2, 2)]})
    text = runner.invoke(app, ["diff", str(new), str(old), "--list", "5"])
    assert text.exit_code == 0, text.output
    assert "changed pixels: 2   newly bad: 1   newly good: 0" in text.output
    assert "(y=1, x=1): DEAD -> DO_NOT_USE|DEAD" in text.output
    data = json.loads(runner.invoke(app, ["diff", str(new), str(old), "--json"]).output)
    assert data["flags"]["DO_NOT_USE"] == {"gained": 2, "lost": 0, "unchanged": 0}
    assert data["newly_bad"] == 1 and data["old"] == str(old)


def test_cli_diff_against_cache_picks_the_reference_in_use(tmp_path):
    first = full_frame_reference(tmp_path / "a.fits", useafter="2020-01-01",
                                 flags={"DEAD": [(5, 5)]})
    second = full_frame_reference(tmp_path / "b.fits", useafter="2024-01-01",
                                  flags={"HOT": [(6, 6)]})
    cache = cache_with(tmp_path / "c", first, second)
    candidate = full_frame_reference(tmp_path / "new.fits", useafter="2022-01-01",
                                     flags={"DEAD": [(5, 5)], "WARM": [(7, 7)]})
    result = runner.invoke(app, ["diff", str(candidate), "--against-cache", "--path",
                                 str(cache.root), "--json"])
    data = json.loads(result.output)
    assert data["old"].endswith("iris_dq_0001.fits")      # in use on 2022-01-01
    assert data["changed_pixels"] == 1 and data["flags"]["WARM"]["gained"] == 1
    implicit = runner.invoke(app, ["diff", str(candidate), "--path", str(cache.root), "--json"])
    assert json.loads(implicit.output)["old"] == data["old"]   # OLD defaults to the cache
    both = runner.invoke(app, ["diff", str(candidate), str(first), "--against-cache"])
    assert both.exit_code == 2


def test_cli_diff_of_mismatched_masks_is_one_line_exit_2(tmp_path):
    small = subarray_reference(tmp_path / "s.fits", size=32)
    large = subarray_reference(tmp_path / "l.fits", size=64)
    result = runner.invoke(app, ["diff", str(small), str(large)])
    assert result.exit_code == 2 and result.output.startswith("dqref: error:")
