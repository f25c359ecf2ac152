"""The local CRDS cache: init, add, lookups by detector/subarray/date/context, refusals, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from crds.core import rmap
from typer.testing import CliRunner

import rmaps
from dqref import DQModel
from dqref.cache import crds_adapter, mappings
from dqref.cache.local_cache import (
    CacheError,
    DuplicateReferenceError,
    LocalCache,
    SlotTakenError,
    default_cache_path,
)
from dqref.cli import app
from dqref.errors import InvalidReferenceError, ReferenceFileError
from dqref.model import Subarray
from dqref.reffile import to_hdulist

runner = CliRunner()
INITIAL = ["ligeriri_0001.pmap", "ligeriri_iris_0001.imap", "ligeriri_liger_0001.imap"]


def observation(detector="IRIS1", date="2026-01-01", time="00:00:00", subarray="FULL",
                instrument="IRIS") -> dict:
    """A science header with FITS keywords."""
    return {"INSTRUME": instrument, "DETECTOR": detector, "SUBARRAY": subarray,
            "DATE-OBS": date, "TIME-OBS": time}


# -- init and location ------------------------------------------------------------------------
def test_init_creates_the_initial_mappings_and_server_config(tmp_path):
    cache = LocalCache(tmp_path / "cache")
    assert cache.init() == "ligeriri_0001.pmap"
    assert sorted(p.name for p in (tmp_path / "cache/mappings/ligeriri").iterdir()) == INITIAL
    assert (tmp_path / "cache/config/ligeriri/server_config").is_file()
    assert (tmp_path / "cache/references/ligeriri/iris").is_dir()
    assert cache.current_context == "ligeriri_0001.pmap"


def test_initial_mappings_are_copies_of_the_shipped_set(empty_cache):
    for name in INITIAL:
        assert (empty_cache.mapping_dir / name).read_text() == \
            rmaps.INITIAL.joinpath(name).read_text()


def test_init_is_idempotent(empty_cache, snapshot_cache):
    before = snapshot_cache(empty_cache)
    assert LocalCache(empty_cache.root).init() == "ligeriri_0001.pmap"
    assert snapshot_cache(empty_cache) == before


def test_init_of_a_populated_cache_keeps_its_current_context(registered_cache_copy):
    assert registered_cache_copy.init() == "ligeriri_0004.pmap"
    assert registered_cache_copy.current_context == "ligeriri_0004.pmap"


def test_a_fresh_cache_has_no_rules_and_selects_nothing(empty_cache):
    answer = empty_cache.bestref(observation())
    assert (answer.found, answer.reference, answer.path) == (False, None, None)
    assert answer.context == "ligeriri_0001.pmap"
    assert empty_cache.rules() == []


def test_an_uninitialised_cache_says_how_to_initialise_it(tmp_path):
    with pytest.raises(CacheError, match=f"not an initialised cache; run 'dqref cache init "
                                         f"--crds-path {tmp_path}'"):
        LocalCache(tmp_path).bestref(observation())


def test_an_explicit_path_wins_over_crds_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "from_env"))
    assert LocalCache(tmp_path / "explicit").root == (tmp_path / "explicit").resolve()


def test_the_default_path_is_crds_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "from_env"))
    assert default_cache_path() == tmp_path / "from_env"
    assert LocalCache().root == (tmp_path / "from_env").resolve()


def test_without_crds_path_the_default_is_crds_cache_in_home(tmp_path, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "crds_cache"
    assert LocalCache().root == (tmp_path / "crds_cache").resolve()


# -- names and layout -------------------------------------------------------------------------
def test_the_first_reference_gets_the_first_serials(registered_cache):
    cache, (first, _, _) = registered_cache
    assert first.reference == cache.root / "references/ligeriri/iris/iris_dq_0001.fits"
    assert (first.rmap, first.imap, first.context, first.previous_context) == (
        "ligeriri_iris_dq_0001.rmap", "ligeriri_iris_0002.imap", "ligeriri_0002.pmap",
        "ligeriri_0001.pmap")


def test_each_add_makes_a_new_rmap_imap_and_context(registered_cache):
    cache, results = registered_cache
    assert [(r.reference.name, r.rmap, r.imap, r.context) for r in results] == [
        ("iris_dq_0001.fits", "ligeriri_iris_dq_0001.rmap", "ligeriri_iris_0002.imap",
         "ligeriri_0002.pmap"),
        ("iris_dq_0002.fits", "ligeriri_iris_dq_0002.rmap", "ligeriri_iris_0003.imap",
         "ligeriri_0003.pmap"),
        ("iris_dq_0003.fits", "ligeriri_iris_dq_0003.rmap", "ligeriri_iris_0004.imap",
         "ligeriri_0004.pmap"),
    ]
    assert cache.current_context == "ligeriri_0004.pmap"


def test_old_mappings_stay_on_disk(registered_cache):
    cache, _ = registered_cache
    assert sorted(p.name for p in cache.mapping_dir.iterdir()) == sorted(
        [f"ligeriri_{n:04d}.pmap" for n in range(1, 5)]
        + [f"ligeriri_iris_{n:04d}.imap" for n in range(1, 5)]
        + [f"ligeriri_iris_dq_{n:04d}.rmap" for n in range(1, 4)]
        + ["ligeriri_liger_0001.imap"])
    assert cache.contexts() == [f"ligeriri_{n:04d}.pmap" for n in range(1, 5)]


def test_the_registered_copy_is_byte_identical_to_the_source(registered_cache, three_references):
    cache, results = registered_cache
    for source, result in zip(three_references, results, strict=True):
        assert result.reference.read_bytes() == source.read_bytes()
    assert cache.references() == [r.reference for r in results]


def test_rules_list_every_slot_of_the_current_context(registered_cache):
    cache, _ = registered_cache
    assert [(r.instrument, r.detector, r.subarray, r.useafter, r.reference)
            for r in cache.rules()] == [
        ("IRIS", "IMG1", "N/A", "2020-01-01 00:00:00", "iris_dq_0001.fits"),
        ("IRIS", "IMG1", "N/A", "2025-01-01 00:00:00", "iris_dq_0002.fits"),
        ("IRIS", "IMG2", "N/A", "2020-01-01 00:00:00", "iris_dq_0003.fits"),
    ]


def test_rules_of_an_earlier_context(registered_cache):
    cache, (first, _, _) = registered_cache
    assert [r.reference for r in cache.rules(first.context)] == ["iris_dq_0001.fits"]
    assert cache.rules(first.previous_context) == []


# -- lookups ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("detector", "date", "time", "expected"), [
    ("IRIS1", "2019-12-31", "23:59:59", None),
    ("IRIS1", "2020-01-01", "00:00:00", "iris_dq_0001.fits"),
    ("IRIS1", "2022-06-15", "12:00:00", "iris_dq_0001.fits"),
    ("IRIS1", "2024-12-31", "23:59:59", "iris_dq_0001.fits"),
    ("IRIS1", "2025-01-01", "00:00:00", "iris_dq_0002.fits"),
    ("IRIS1", "2030-01-01", "00:00:00", "iris_dq_0002.fits"),
    ("IRIS2", "2019-06-01", "00:00:00", None),
    ("IRIS2", "2030-01-01", "00:00:00", "iris_dq_0003.fits"),
], ids=["iris1-before", "iris1-at-first", "iris1-between", "iris1-just-before-second",
        "iris1-at-second", "iris1-after", "iris2-before", "iris2-after"])
def test_bestref_before_between_and_after_the_useafter_dates(registered_cache, detector, date,
                                                             time, expected):
    cache, _ = registered_cache
    answer = cache.bestref(observation(detector, date, time))
    assert answer.reference == expected
    assert answer.context == "ligeriri_0004.pmap"
    if expected is None:
        assert answer.path is None and answer.reason == "No match found."
    else:
        assert answer.path == cache.root / "references/ligeriri/iris" / expected
        assert answer.path.is_file() and answer.reason == ""


def test_bestref_for_a_detector_without_rules_gives_crds_reason(registered_cache):
    cache, _ = registered_cache
    answer = cache.bestref(observation("IRIS3"))
    assert not answer.found
    assert answer.reason == ("parameter='META.INSTRUMENT.DETECTOR' value='IMG3' is not in "
                             "['IMG1', 'IMG2']")


def test_bestref_for_an_instrument_without_rules_is_not_found(registered_cache):
    cache, _ = registered_cache
    answer = cache.bestref(observation("IMG", instrument="LIGER"))
    assert not answer.found and answer.reason


def test_stpipe_keys_select_like_fits_keywords(registered_cache):
    cache, _ = registered_cache
    stpipe = {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IRIS1",
              "META.SUBARRAY.NAME": "FULL", "META.OBSERVATION.DATE": "2022-06-15",
              "META.OBSERVATION.TIME": "12:00:00"}
    assert cache.bestref(stpipe).reference == "iris_dq_0001.fits"
    stpipe["META.OBSERVATION.DATE"] = "2026-01-01"
    assert cache.bestref(stpipe).reference == "iris_dq_0002.fits"


def test_a_missing_subarray_means_full(registered_cache):
    cache, _ = registered_cache
    header = observation("IRIS1", "2022-06-15")
    del header["SUBARRAY"]
    assert cache.bestref(header).reference == "iris_dq_0001.fits"
    stpipe = {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IRIS2",
              "META.OBSERVATION.DATE": "2026-01-01", "META.OBSERVATION.TIME": "00:00:00"}
    assert cache.bestref(stpipe).reference == "iris_dq_0003.fits"


def test_bestref_does_not_change_the_callers_header(registered_cache):
    cache, _ = registered_cache
    header = {"INSTRUME": "IRIS", "DETECTOR": "IRIS1", "DATE-OBS": "2026-01-01",
              "TIME-OBS": "00:00:00"}
    cache.bestref(header)
    assert "SUBARRAY" not in header


def test_a_subarray_observation_selects_the_full_frame_reference(registered_cache):
    cache, _ = registered_cache
    assert cache.bestref(observation("IRIS1", "2026-01-01", subarray="SUB256")).reference == \
        "iris_dq_0002.fits"
    assert cache.bestref(observation("IRIS2", "2026-01-01", subarray="SUB64")).reference == \
        "iris_dq_0003.fits"


@pytest.fixture
def with_sub256(registered_cache_copy, make_reference, tmp_path):
    """The registered cache plus an IRIS1 SUB256 reference from 2022-01-01."""
    reference = make_reference(tmp_path / "sub256.fits", "IRIS1", "2022-01-01", [(3, 3)],
                               subarray=("SUB256", 1025, 2049, 256))
    result = registered_cache_copy.add(reference)
    return registered_cache_copy, result


def test_a_subarray_reference_gets_the_next_serials(with_sub256):
    cache, result = with_sub256
    assert (result.reference.name, result.rmap, result.context) == (
        "iris_dq_0004.fits", "ligeriri_iris_dq_0004.rmap", "ligeriri_0005.pmap")
    assert ("IMG1", "SUB256", "2022-01-01 00:00:00", "iris_dq_0004.fits") in [
        (r.detector, r.subarray, r.useafter, r.reference) for r in cache.rules()]


def test_a_subarray_specific_reference_wins_for_its_subarray_after_its_useafter(with_sub256):
    cache, _ = with_sub256
    assert cache.bestref(observation("IRIS1", "2023-01-01", subarray="SUB256")).reference == \
        "iris_dq_0004.fits"


def test_before_its_useafter_the_full_frame_serves_that_subarray(with_sub256):
    cache, _ = with_sub256
    assert cache.bestref(observation("IRIS1", "2021-01-01", subarray="SUB256")).reference == \
        "iris_dq_0001.fits"


def test_a_subarray_reference_does_not_serve_other_subarrays_or_full_frame(with_sub256):
    cache, _ = with_sub256
    assert cache.bestref(observation("IRIS1", "2023-01-01", subarray="SUB64")).reference == \
        "iris_dq_0001.fits"
    assert cache.bestref(observation("IRIS1", "2023-01-01")).reference == "iris_dq_0001.fits"


def test_an_earlier_context_still_gives_the_earlier_answer(registered_cache):
    cache, (first, second, third) = registered_cache
    after = observation("IRIS1", "2026-01-01")
    assert cache.bestref(after).reference == "iris_dq_0002.fits"
    assert cache.bestref(after, context=second.previous_context).reference == "iris_dq_0001.fits"
    assert cache.bestref(after, context=first.previous_context).reference is None
    assert cache.bestref(observation("IRIS2"), context=third.previous_context).reference is None


def test_bestref_with_an_unknown_context_names_it(registered_cache):
    cache, _ = registered_cache
    with pytest.raises(CacheError, match="context ligeriri_0099.pmap does not exist"):
        cache.bestref(observation(), context="ligeriri_0099.pmap")


def test_crds_getrecommendations_agrees_with_bestref(registered_cache):
    cache, _ = registered_cache
    for header in (observation("IRIS1", "2022-06-15"), observation("IRIS1", "2026-01-01"),
                   observation("IRIS2", "2026-01-01"),
                   observation("IRIS1", "2026-01-01", subarray="SUB256")):
        assert crds_adapter.getrecommendations(cache.root, header) == \
            cache.bestref(header).reference


def test_crds_getrecommendations_with_an_earlier_context_agrees(registered_cache):
    cache, (_, second, _) = registered_cache
    header = observation("IRIS1", "2026-01-01")
    assert crds_adapter.getrecommendations(cache.root, header,
                                           context=second.previous_context) == \
        cache.bestref(header, context=second.previous_context).reference == "iris_dq_0001.fits"


def test_bestref_of_a_dataset_reads_its_primary_header(registered_cache, tmp_path):
    cache, _ = registered_cache
    primary = fits.PrimaryHDU()
    primary.header.update(observation("IRIS2", "2026-03-01", "04:05:06", subarray="SUB64"))
    primary.writeto(tmp_path / "science.fits")
    assert cache.bestref_for_file(tmp_path / "science.fits").reference == "iris_dq_0003.fits"


def test_bestref_of_a_file_that_is_not_fits_is_a_cache_error(registered_cache, tmp_path):
    cache, _ = registered_cache
    (tmp_path / "notes.fits").write_text("hello")
    with pytest.raises(CacheError, match="notes.fits: cannot read its FITS header"):
        cache.bestref_for_file(tmp_path / "notes.fits")


def test_current_reference_for_a_model_finds_what_serves_its_slot(registered_cache):
    cache, _ = registered_cache
    model = DQModel.blank("IRIS", "IRIS1", useafter="2025-06-01")
    assert cache.current_reference_for(model) == cache.reference_path("iris_dq_0002.fits")


# -- mappings are real crds mappings -----------------------------------------------------------
def test_every_published_mapping_loads_with_crds_and_correct_checksums(registered_cache,
                                                                       monkeypatch):
    monkeypatch.delenv("CRDS_IGNORE_MAPPING_CHECKSUM", raising=False)
    cache, _ = registered_cache
    for path in sorted(cache.mapping_dir.glob("*.?map")):
        loaded = rmap.load_mapping(path.name, path=str(cache.mapping_dir))
        assert crds_adapter.with_checksum(path.read_text(), path.name) == path.read_text()
        assert loaded.header["sha1sum"] in path.read_text()
        assert loaded.name == path.name


def test_every_context_names_only_existing_files(registered_cache):
    cache, _ = registered_cache
    for context in cache.contexts():
        loaded = cache.context(context)
        for name in crds_adapter.mapping_names(loaded):
            assert (cache.mapping_dir / name).is_file()
        for name in crds_adapter.reference_names(loaded):
            assert cache.reference_path(name).is_file()


def test_a_healthy_cache_verifies_clean(registered_cache):
    cache, _ = registered_cache
    assert cache.verify() == []


def test_the_shipped_initial_mappings_equal_what_the_templates_render():
    why = "initial mapping set of dqref (no references yet)"
    assert rmaps.INITIAL.joinpath("ligeriri_0001.pmap").read_text() == mappings.render_pmap(
        "ligeriri_0001.pmap", {"IRIS": "ligeriri_iris_0001.imap",
                               "LIGER": "ligeriri_liger_0001.imap"}, why)
    for instrument in ("IRIS", "LIGER"):
        name = f"ligeriri_{instrument.lower()}_0001.imap"
        assert rmaps.INITIAL.joinpath(name).read_text() == \
            mappings.render_imap(name, instrument, mappings.NOT_APPLICABLE, why)


def test_the_shipped_initial_set_is_exactly_one_pmap_and_two_imaps():
    assert sorted(p.name for p in rmaps.INITIAL.iterdir() if p.name.endswith("map")) == INITIAL


# -- refusals -------------------------------------------------------------------------------
def test_the_same_file_twice_is_refused_naming_the_existing_entry(registered_cache_copy,
                                                                  three_references,
                                                                  snapshot_cache):
    before = snapshot_cache(registered_cache_copy)
    with pytest.raises(DuplicateReferenceError,
                       match="the same content is already registered as iris_dq_0002.fits"):
        registered_cache_copy.add(three_references[1])
    assert snapshot_cache(registered_cache_copy) == before


def test_a_copy_of_a_registered_file_is_a_duplicate(registered_cache_copy, three_references,
                                                    tmp_path):
    copy = tmp_path / "renamed.fits"
    copy.write_bytes(three_references[2].read_bytes())
    with pytest.raises(DuplicateReferenceError, match="iris_dq_0003.fits"):
        registered_cache_copy.add(copy)


def test_an_occupied_slot_is_refused_mentioning_replace(registered_cache_copy, make_reference,
                                                        tmp_path, snapshot_cache):
    newer = make_reference(tmp_path / "fix.fits", "IRIS1", "2020-01-01", [(9, 9)])
    before = snapshot_cache(registered_cache_copy)
    with pytest.raises(SlotTakenError) as raised:
        registered_cache_copy.add(newer)
    assert str(raised.value) == ("iris_dq_0001.fits already serves IRIS IMG1 subarray FULL "
                                 "from 2020-01-01 00:00:00; use --replace to supersede it")
    assert snapshot_cache(registered_cache_copy) == before


def test_replace_makes_a_new_context_and_keeps_the_old_answer_in_the_old_one(
        registered_cache_copy, make_reference, tmp_path):
    newer = make_reference(tmp_path / "fix.fits", "IRIS1", "2020-01-01", [(9, 9)])
    result = registered_cache_copy.add(newer, replace=True)
    assert (result.reference.name, result.context, result.previous_context) == (
        "iris_dq_0004.fits", "ligeriri_0005.pmap", "ligeriri_0004.pmap")
    between = observation("IRIS1", "2022-06-15")
    assert registered_cache_copy.bestref(between).reference == "iris_dq_0004.fits"
    assert registered_cache_copy.bestref(between, context="ligeriri_0004.pmap").reference == \
        "iris_dq_0001.fits"
    assert registered_cache_copy.reference_path("iris_dq_0001.fits").is_file()
    assert "iris_dq_0001.fits" not in [r.reference for r in registered_cache_copy.rules()]


def test_replace_into_an_empty_slot_is_an_ordinary_add(registered_cache_copy, make_reference,
                                                       tmp_path):
    other = make_reference(tmp_path / "iris4.fits", "IRIS4", "2021-01-01", [(5, 5)])
    assert registered_cache_copy.add(other, replace=True).reference.name == "iris_dq_0004.fits"
    assert registered_cache_copy.bestref(observation("IRIS4")).reference == "iris_dq_0004.fits"


def test_an_invalid_reference_is_refused_and_the_cache_unchanged(registered_cache_copy, tmp_path,
                                                                 snapshot_cache):
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IRIS9")
    model.meta.subarray = Subarray("SUB64", 1, 1, 64, 64)
    to_hdulist(model).writeto(tmp_path / "iris9.fits", checksum=True)
    before = snapshot_cache(registered_cache_copy)
    with pytest.raises(InvalidReferenceError, match="unknown detector 'IRIS9'"):
        registered_cache_copy.add(tmp_path / "iris9.fits")
    assert snapshot_cache(registered_cache_copy) == before


def test_a_file_that_is_not_a_reference_is_refused(empty_cache, tmp_path, snapshot_cache):
    (tmp_path / "notes.fits").write_text("hello")
    before = snapshot_cache(empty_cache)
    with pytest.raises(ReferenceFileError, match="notes.fits: cannot be read as FITS"):
        empty_cache.add(tmp_path / "notes.fits")
    assert snapshot_cache(empty_cache) == before


def _moved_flag_copy(source, target):
    """Copy ``source`` with the pixel (1, 1) swapped for (1, 0) in the DQ data, bytes only.

    FITS checksums are sums of 32-bit words, so swapping two words keeps every CHECKSUM
    and DATASUM valid: the copy is a readable reference with different content.
    """
    data = bytearray(source.read_bytes())
    with fits.open(source) as hdulist:
        start = hdulist.fileinfo(1)["datLoc"]
    first, second = start + 4 * 4096, start + 4 * 4097
    data[first:first + 4], data[second:second + 4] = data[second:second + 4], \
        data[first:first + 4]
    target.write_bytes(bytes(data))
    return target


def test_a_reference_with_a_moved_flag_is_not_a_duplicate(registered_cache_copy,
                                                          three_references, tmp_path):
    moved = _moved_flag_copy(three_references[0], tmp_path / "moved.fits")
    assert np.argwhere(DQModel.read(moved).dq).tolist() == [[1, 0]]  # valid, different content
    result = registered_cache_copy.add(moved, replace=True)
    assert result.reference.name == "iris_dq_0004.fits"


# -- the command line -------------------------------------------------------------------------
def assert_one_line_user_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dqref: error: "), result.stderr
    for word in words:
        assert word in lines[0]


def test_cli_init_then_add_then_list(tmp_path, make_reference):
    reference = make_reference(tmp_path / "sub64.fits", "IRIS1", "2021-01-01", [(2, 2)],
                               subarray=("SUB64", 1, 1, 64))
    path = str(tmp_path / "cache")
    init = runner.invoke(app, ["cache", "init", "--path", path])
    assert init.exit_code == 0, init.output
    assert init.stdout == f"{tmp_path / 'cache'}: current context ligeriri_0001.pmap\n"
    added = runner.invoke(app, ["cache", "add", str(reference), "--path", path])
    assert added.exit_code == 0, added.output
    stored = tmp_path / "cache/references/ligeriri/iris/iris_dq_0001.fits"
    assert added.stdout.splitlines() == [
        f"{reference} -> {stored}",
        "new mappings: ligeriri_iris_dq_0001.rmap, ligeriri_iris_0002.imap, ligeriri_0002.pmap",
        "current context: ligeriri_0001.pmap -> ligeriri_0002.pmap"]
    listed = runner.invoke(app, ["cache", "list", "--path", path])
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[:3] == [f"cache: {tmp_path / 'cache'}",
                                              "context: ligeriri_0002.pmap (current)", "rules:"]
    assert "IMG1" in listed.stdout and "subarray=SUB64" in listed.stdout
    assert "useafter=2021-01-01 00:00:00  iris_dq_0001.fits" in listed.stdout
    assert f"  {stored}" in listed.stdout.splitlines()


def test_cli_list_shows_full_frame_rules_as_any_subarray(registered_cache):
    cache, _ = registered_cache
    listed = runner.invoke(app, ["cache", "list", "--path", str(cache.root)])
    rules = [line.split() for line in listed.stdout.splitlines() if line.startswith("  IRIS ")]
    assert rules == [
        ["IRIS", "IMG1", "subarray=any", "useafter=2020-01-01", "00:00:00", "iris_dq_0001.fits"],
        ["IRIS", "IMG1", "subarray=any", "useafter=2025-01-01", "00:00:00", "iris_dq_0002.fits"],
        ["IRIS", "IMG2", "subarray=any", "useafter=2020-01-01", "00:00:00", "iris_dq_0003.fits"]]


def test_cli_list_of_an_earlier_context(registered_cache):
    cache, _ = registered_cache
    listed = runner.invoke(app, ["cache", "list", "--path", str(cache.root),
                                 "--context", "ligeriri_0001.pmap"])
    assert listed.exit_code == 0
    assert "context: ligeriri_0001.pmap\n" in listed.stdout
    assert "rules:\n  (none)\n" in listed.stdout


def test_cli_bestref_of_a_dataset_prints_the_reference_path(registered_cache, tmp_path):
    cache, _ = registered_cache
    primary = fits.PrimaryHDU()
    primary.header.update(observation("IRIS1", "2022-02-02"))
    primary.writeto(tmp_path / "science.fits")
    result = runner.invoke(app, ["cache", "bestref", str(tmp_path / "science.fits"),
                                 "--path", str(cache.root)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{cache.reference_path('iris_dq_0001.fits')}\n"


def test_cli_bestref_with_params_prints_the_reference_path(registered_cache):
    cache, _ = registered_cache
    result = runner.invoke(app, ["cache", "bestref", "--path", str(cache.root),
                                 "--param", "INSTRUME=IRIS", "--param", "DETECTOR=IRIS1",
                                 "--param", "DATE-OBS=2026-01-01", "--param", "TIME-OBS=00:00:00"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{cache.reference_path('iris_dq_0002.fits')}\n"


def test_cli_bestref_with_an_earlier_context(registered_cache):
    cache, _ = registered_cache
    result = runner.invoke(app, ["cache", "bestref", "--path", str(cache.root),
                                 "--context", "ligeriri_0002.pmap",
                                 "--param", "META.INSTRUMENT.NAME=IRIS",
                                 "--param", "META.INSTRUMENT.DETECTOR=IRIS1",
                                 "--param", "META.OBSERVATION.DATE=2026-01-01",
                                 "--param", "META.OBSERVATION.TIME=00:00:00"])
    assert result.stdout == f"{cache.reference_path('iris_dq_0001.fits')}\n"


def test_cli_bestref_without_a_match_prints_na_and_the_reason(registered_cache):
    cache, _ = registered_cache
    result = runner.invoke(app, ["cache", "bestref", "--path", str(cache.root),
                                 "--param", "INSTRUME=IRIS", "--param", "DETECTOR=IRIS1",
                                 "--param", "DATE-OBS=2019-01-01", "--param", "TIME-OBS=00:00:00"])
    assert result.exit_code == 1  # "not found" (docs/cache.md, exit status)
    assert result.stdout == "N/A (No match found.)\n"


def test_cli_verify_of_a_healthy_cache_exits_0(registered_cache):
    cache, _ = registered_cache
    result = runner.invoke(app, ["cache", "verify", "--path", str(cache.root)])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == f"{cache.root}: OK (context ligeriri_0004.pmap)"


def test_cli_add_of_a_duplicate_is_a_one_line_user_error(registered_cache_copy, three_references):
    result = runner.invoke(app, ["cache", "add", str(three_references[0]),
                                 "--path", str(registered_cache_copy.root)])
    assert_one_line_user_error(result, "already registered as iris_dq_0001.fits")


def test_cli_add_into_an_occupied_slot_suggests_replace(registered_cache_copy, make_reference,
                                                        tmp_path):
    newer = make_reference(tmp_path / "fix.fits", "IRIS2", "2020-01-01", [(8, 8)])
    result = runner.invoke(app, ["cache", "add", str(newer),
                                 "--path", str(registered_cache_copy.root)])
    assert_one_line_user_error(result, "iris_dq_0003.fits already serves", "--replace")
    replaced = runner.invoke(app, ["cache", "add", str(newer), "--replace",
                                   "--path", str(registered_cache_copy.root)])
    assert replaced.exit_code == 0, replaced.output
    assert "ligeriri_0004.pmap -> ligeriri_0005.pmap" in replaced.stdout


def test_cli_add_of_a_missing_file_is_a_one_line_user_error(empty_cache, tmp_path):
    result = runner.invoke(app, ["cache", "add", str(tmp_path / "absent.fits"),
                                 "--path", str(empty_cache.root)])
    assert_one_line_user_error(result, "absent.fits: no such file")


def test_cli_on_an_uninitialised_cache_is_a_one_line_user_error(tmp_path):
    for command in (["list"], ["bestref", "--param", "INSTRUME=IRIS"]):
        result = runner.invoke(app, ["cache", *command, "--path", str(tmp_path / "none")])
        assert_one_line_user_error(result, "not an initialised cache", "dqref cache init")


def test_cli_verify_of_an_uninitialised_cache_reports_it_and_exits_1(tmp_path):
    result = runner.invoke(app, ["cache", "verify", "--path", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.stdout == (f"{tmp_path / 'none'} is not an initialised cache; run 'dqref cache "
                             f"init --crds-path {tmp_path / 'none'}'\n")


def test_cli_bestref_with_a_malformed_param_is_a_one_line_user_error(registered_cache):
    cache, _ = registered_cache
    result = runner.invoke(app, ["cache", "bestref", "--path", str(cache.root),
                                 "--param", "INSTRUME"])
    assert_one_line_user_error(result, "--param 'INSTRUME' is not KEY=VALUE")
