"""DQModel: the seed's walkthrough, the guarded ``dq`` array, ``flag()`` and the histogram."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqref import DQModel, flags
from dqref.errors import UnknownDetectorError, UnknownFlagError
from dqref.histogram import flag_histogram

FULL_FRAME = (4096, 4096)


# -- the seed's walkthrough, typed as a user would (typos fixed) ---------------------------
@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    """The seed's steps: a model, metadata, float zeros, flags assigned in place, written."""
    model = DQModel()
    model.meta.name = "IRIS"
    model.meta.detector = "IRIS1"
    model.dq = np.zeros(FULL_FRAME)
    model.dq[100, 200] = 1024
    model.dq[10:12, 5] = 2048
    model.dq[4095, 4095] = 1024 | 1
    path = tmp_path_factory.mktemp("walkthrough") / "iris1_dq.fits"
    model.write(path)
    return model, path


def test_walkthrough_float_zeros_become_a_uint32_array(walkthrough):
    model, _ = walkthrough
    assert model.dq.dtype == np.uint32
    assert model.dq.shape == FULL_FRAME


def test_walkthrough_assignments_land_in_the_model(walkthrough):
    model, _ = walkthrough
    assert np.count_nonzero(model.dq) == 4
    assert model.dq[100, 200] == 1024
    assert model.dq[10, 5] == model.dq[11, 5] == 2048
    assert model.dq[4095, 4095] == 1025


def test_walkthrough_numpy_histogram_works_on_the_dq_array(walkthrough):
    model, _ = walkthrough
    counts, edges = np.histogram(model.dq, bins=3)
    assert counts.tolist() == [4096 * 4096 - 4, 2, 2]  # 1024 and 1025; then 2048 twice
    assert edges.tolist() == pytest.approx([0.0, 2048 / 3, 4096 / 3, 2048.0])


def test_walkthrough_file_reads_back_identical(walkthrough):
    model, path = walkthrough
    back = DQModel.read(path)
    assert back.dq.dtype == np.uint32
    assert np.array_equal(back.dq, model.dq)
    assert (back.meta.name, back.meta.detector) == ("IRIS", "IRIS1")
    assert back.meta.useafter == "2000-01-01T00:00:00"
    assert np.array_equal(back.dq_def, flags.dq_def_rows())


def test_walkthrough_file_is_a_valid_reference(walkthrough):
    _, path = walkthrough
    assert [f for f in DQModel.read(path).validate() if f.is_error] == []


def test_walkthrough_model_histogram_counts_each_flag(walkthrough):
    model, _ = walkthrough
    counts = model.histogram()
    assert counts.nonzero() == {"DO_NOT_USE": 1, "DEAD": 2, "HOT": 2}
    assert (counts.total, counts.good, counts.flagged) == (4096 * 4096, 4096 * 4096 - 4, 4)


# -- the seed's trap and the right way --------------------------------------------------------
@pytest.fixture
def random_positions():
    """Ten distinct (y, x) positions, as the seed drew them (fixed seed for repeatability)."""
    rng = np.random.default_rng(2024)
    flat = rng.choice(4096 * 4096, size=10, replace=False)
    return np.column_stack(np.unravel_index(flat, FULL_FRAME))


def test_seed_fancy_index_flags_whole_rows_not_ten_pixels(random_positions):
    model = DQModel.blank("IRIS", "IRIS1")
    model.dq[random_positions] = 1024  # the seed's line: indexes rows, not (y, x) pairs
    rows_hit = np.unique(random_positions)
    assert np.count_nonzero(model.dq) == rows_hit.size * 4096
    assert np.count_nonzero(model.dq) > 10


def test_seed_fancy_index_replaces_existing_flags():
    model = DQModel.blank("IRIS", "IRIS1")
    model.dq[7, 7] = flags.value("HOT")
    model.dq[np.array([[7, 8]])] = 1024
    assert model.dq[7, 7] == 1024  # HOT is lost: assignment replaces instead of OR


def test_flag_sets_exactly_the_given_pixels(random_positions):
    model = DQModel.blank("IRIS", "IRIS1")
    model.flag(random_positions, "DEAD")
    assert np.count_nonzero(model.dq) == 10
    assert np.all(model.dq[random_positions[:, 0], random_positions[:, 1]] == 1024)


def test_flag_ors_into_existing_bits():
    model = DQModel(np.zeros((8, 8), np.uint32))
    model.dq[2, 3] = flags.value("HOT")
    model.flag([[2, 3], [4, 5]], "DEAD")
    assert model.dq[2, 3] == 1024 | 2048
    assert model.dq[4, 5] == 1024


def test_flag_twice_at_the_same_pixel_is_not_a_sum():
    model = DQModel(np.zeros((8, 8), np.uint32))
    model.flag([[1, 1], [1, 1]], "DO_NOT_USE")
    model.flag([[1, 1]], "DO_NOT_USE")
    assert model.dq[1, 1] == 1


def test_flag_positions_are_y_then_x():
    model = DQModel(np.zeros((4, 6), np.uint32))
    model.flag([[3, 5]], "DEAD")
    assert model.dq[3, 5] == 1024 and np.count_nonzero(model.dq) == 1


def test_flag_accepts_names_joined_by_a_bar_and_integers():
    model = DQModel(np.zeros((4, 4), np.uint32))
    model.flag([[0, 0]], "DEAD|DO_NOT_USE")
    model.flag([[1, 1]], 4096)
    assert (model.dq[0, 0], model.dq[1, 1]) == (1025, 4096)


@pytest.mark.parametrize(("position", "named"), [
    ((4, 0), "(y=4, x=0)"), ((0, 4), "(y=0, x=4)"), ((-1, 0), "(y=-1, x=0)"),
])
def test_flag_outside_the_array_is_refused_naming_the_position(position, named):
    model = DQModel(np.zeros((4, 4), np.uint32))
    with pytest.raises(ValueError, match=re.escape(f"position {named} is outside the 4 x 4 "
                                                   "DQ array")):
        model.flag([[0, 0], position], "DEAD")
    assert np.count_nonzero(model.dq) == 0  # nothing flagged, not even the valid pixel


def test_flag_refuses_positions_that_are_not_n_by_2_integers():
    model = DQModel(np.zeros((4, 4), np.uint32))
    with pytest.raises(ValueError, match=r"\(N, 2\) integer array"):
        model.flag([1, 2], "DEAD")
    with pytest.raises(ValueError, match=r"\(N, 2\) integer array"):
        model.flag([[1.0, 2.0]], "DEAD")


def test_flag_with_an_unknown_name_raises_unknown_flag_error():
    model = DQModel(np.zeros((4, 4), np.uint32))
    with pytest.raises(UnknownFlagError, match="unknown flag 'DAED'"):
        model.flag([[0, 0]], "DAED")


def test_flag_before_dq_is_set_says_so():
    with pytest.raises(ValueError, match="model.dq is not set"):
        DQModel().flag([[0, 0]], "DEAD")


# -- the dq setter ----------------------------------------------------------------------------
def test_integral_floats_are_accepted_and_stored_as_uint32():
    model = DQModel()
    model.dq = np.array([[0.0, 1024.0], [2.0**32 - 1, 3.0]])
    assert model.dq.dtype == np.uint32
    assert model.dq.tolist() == [[0, 1024], [2**32 - 1, 3]]


def test_signed_integers_are_accepted_and_stored_as_uint32():
    model = DQModel(np.array([[0, 1024]], dtype=np.int64))
    assert model.dq.dtype == np.uint32 and model.dq.tolist() == [[0, 1024]]


def test_assigning_an_array_copies_it():
    source = np.zeros((3, 3), np.uint32)
    model = DQModel(source)
    model.flag([[1, 1]], "DEAD")
    source[0, 0] = 5
    assert source[1, 1] == 0
    assert model.dq[0, 0] == 0


@pytest.mark.parametrize(("values", "problem", "pixel"), [
    ([[0, 0], [0, np.nan]], "a non-finite value", "(y=1, x=1)"),
    ([[0, np.inf], [0, 0]], "a non-finite value", "(y=0, x=1)"),
    ([[0, 0], [-1.0, 0]], "a negative value", "(y=1, x=0)"),
    ([[0, 0], [0, 1.5]], "a fractional value", "(y=1, x=1)"),
    ([[2.0**32, 0], [0, 0]], "a value >= 2**32", "(y=0, x=0)"),
])
def test_bad_float_values_are_refused_naming_the_problem_and_pixel(values, problem, pixel):
    model = DQModel()
    with pytest.raises(ValueError) as raised:
        model.dq = np.array(values)
    assert problem in str(raised.value)
    assert f"at pixel {pixel}" in str(raised.value)
    assert model.dq is None


@pytest.mark.parametrize(("values", "problem", "pixel"), [
    (np.array([[0, 0, -3]], dtype=np.int32), "a negative value", "(y=0, x=2)"),
    (np.array([[0], [2**32]], dtype=np.int64), "a value >= 2**32", "(y=1, x=0)"),
    (np.array([[2**40, 0]], dtype=np.uint64), "a value >= 2**32", "(y=0, x=0)"),
])
def test_bad_integer_values_are_refused_naming_the_problem_and_pixel(values, problem, pixel):
    with pytest.raises(ValueError) as raised:
        DQModel(values)
    assert problem in str(raised.value) and f"at pixel {pixel}" in str(raised.value)


def test_the_message_counts_every_offending_pixel():
    with pytest.raises(ValueError, match="3 such pixels in all"):
        DQModel(np.array([[-1.0, -2.0], [-3.0, 0.0]]))


def test_a_3d_array_is_refused_naming_its_dimensions():
    with pytest.raises(ValueError, match=r"DQ must be a 2D array .*got 3 dimensions with shape "
                                         r"\(2, 4, 4\)"):
        DQModel(np.zeros((2, 4, 4)))


def test_a_1d_array_is_refused():
    with pytest.raises(ValueError, match="got 1 dimensions"):
        DQModel(np.zeros(16))


def test_text_is_refused():
    with pytest.raises(ValueError, match="DQ must hold integers"):
        DQModel(np.array([["DEAD"]]))


# -- construction ---------------------------------------------------------------------------
def test_blank_is_an_all_good_full_frame_of_the_detector():
    model = DQModel.blank("iris", "iris2", useafter="2021-05-01")  # an alias of IMG2
    assert (model.meta.name, model.meta.detector, model.meta.useafter) == (
        "IRIS", "IMG2", "2021-05-01")
    assert model.shape == FULL_FRAME and model.dq.dtype == np.uint32
    assert not model.dq.any()


def test_blank_for_an_unknown_detector_names_the_detector_table():
    with pytest.raises(UnknownDetectorError,
                       match="dqref/detectors.toml lists IFU, IMG1, IMG2, IMG3, IMG4, IRIS1"):
        DQModel.blank("IRIS", "IRIS9")


def test_an_unknown_metadata_field_is_refused():
    with pytest.raises(TypeError, match="unknown metadata field 'colour'"):
        DQModel(colour="red")


def test_instrument_is_an_alias_of_name():
    model = DQModel(name="LIGER")
    assert model.meta.instrument == "LIGER"
    model.meta.instrument = "IRIS"
    assert model.meta.name == "IRIS"


def test_copy_is_independent_of_the_original():
    model = DQModel(np.zeros((4, 4), np.uint32), name="IRIS", detector="IRIS1")
    twin = model.copy()
    twin.flag([[0, 0]], "DEAD")
    twin.meta.detector = "IRIS2"
    assert model.dq[0, 0] == 0 and model.meta.detector == "IRIS1"


def test_filled_meta_supplies_defaults_without_changing_the_model():
    model = DQModel(np.zeros((32, 64), np.uint32), name="iris", detector="iris1")
    meta = model.filled_meta()
    assert (meta.name, meta.detector) == ("IRIS", "IRIS1")
    assert (meta.subarray.ysize, meta.subarray.xsize) == (32, 64)
    assert meta.description == "Bad pixel mask for IRIS IRIS1"
    assert meta.author
    assert model.meta.description is None and model.meta.subarray.xsize is None


# -- the histogram ---------------------------------------------------------------------------
def _brute_force_counts(dq: np.ndarray) -> dict[str, int]:
    return {f.name: int(sum(1 for v in dq.ravel().tolist() if v & f.value)) for f in flags.FLAGS}


def test_a_pixel_with_two_flags_counts_under_both():
    dq = np.zeros((10, 10), np.uint32)
    dq[0, 0] = flags.value("DEAD|DO_NOT_USE")
    counts = flag_histogram(dq)
    assert counts.flags["DEAD"] == 1 and counts.flags["DO_NOT_USE"] == 1
    assert (counts.total, counts.good, counts.flagged) == (100, 99, 1)


def test_histogram_lists_all_32_flags_in_bit_order():
    counts = flag_histogram(np.zeros((2, 2), np.uint32))
    assert list(counts.flags) == [f.name for f in flags.FLAGS]
    assert set(counts.flags.values()) == {0}
    assert counts.good == 4


def test_histogram_to_dict_has_total_good_and_flags():
    dq = np.array([[0, 1024], [2048 | 1, 2**31]], dtype=np.uint32)
    as_dict = flag_histogram(dq).to_dict()
    assert set(as_dict) == {"total", "good", "flags"}
    assert (as_dict["total"], as_dict["good"]) == (4, 1)
    assert {k: v for k, v in as_dict["flags"].items() if v} == {
        "DO_NOT_USE": 1, "DEAD": 1, "HOT": 1, "REFERENCE_PIXEL": 1}


def test_histogram_nonzero_lists_only_flags_that_occur():
    dq = np.array([[0, 1024, 1024]], dtype=np.uint32)
    assert flag_histogram(dq).nonzero() == {"DEAD": 2}


def test_histogram_does_not_modify_its_input():
    dq = np.array([[0, 1024], [3, 0]], dtype=np.uint32)
    flag_histogram(dq)
    assert dq.tolist() == [[0, 1024], [3, 0]]


@pytest.mark.parametrize("flagged", [5, 6], ids=["sparse-5-percent", "dense-6-percent"])
def test_both_counting_paths_agree_with_a_per_bit_loop(flagged):
    dq = np.zeros((10, 10), np.uint32)
    values = [1, 1024 | 1, 2048, 2**31, 2**32 - 1, 4096 | 2048][:flagged]
    dq.ravel()[np.arange(flagged) * 7] = values
    counts = flag_histogram(dq)
    assert counts.flags == _brute_force_counts(dq)
    assert counts.good == 100 - flagged


@st.composite
def dq_arrays(draw):
    """Small uint32 arrays, from all-good to densely flagged, values over all 32 bits."""
    rows, columns = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    size = rows * columns
    flagged = draw(st.integers(0, size))
    positions = draw(st.lists(st.integers(0, size - 1), min_size=flagged, max_size=flagged,
                              unique=True))
    values = draw(st.lists(st.integers(1, 2**32 - 1), min_size=flagged, max_size=flagged))
    dq = np.zeros(size, np.uint32)
    dq[positions] = values
    return dq.reshape(rows, columns)


@settings(max_examples=150, deadline=None, database=None)
@given(dq_arrays())
def test_histogram_equals_a_brute_force_count_for_any_array(dq):
    counts = flag_histogram(dq)
    assert counts.flags == _brute_force_counts(dq)
    assert counts.total == dq.size
    assert counts.good == int(np.count_nonzero(dq == 0))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_histogram_of_a_densely_flagged_narrow_unsigned_array(dtype):
    dq = np.zeros((10, 10), dtype)
    dq[:5] = 3  # 50% flagged: the dense path
    counts = flag_histogram(dq)
    assert counts.nonzero() == {"DO_NOT_USE": 50, "SATURATED": 50}
