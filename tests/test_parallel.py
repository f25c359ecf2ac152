"""Many ramps at once: serial, a process pool and Dask give the same records and bytes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from support import cache_with, full_frame_reference, sub_ramp

from dqinit import parallel
from dqinit.parallel import (
    WORKER_DIED,
    ParallelError,
    RunSettings,
    choose_workers,
    expand_inputs,
    run_many,
    run_one,
    select_references,
    worker_step,
)
from dqinit.simulate import ramp_header, write_raw_ramp
from dqinit.step import DQInitStep
from dqref import flags
from dqref.atomic import temporary_sibling

MODES = {"serial": {"workers": 1}, "pool": {"workers": 2},
         "local cluster": {"workers": 2, "scheduler": "local"}}


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    """Two IRIS full-frame references and 13 inputs, in this order: 10 subarray ramps
    alternating IRIS2/IRIS1 (three sizes, shifted origins; r04 with existing DQ arrays),
    r10 on IRIS3 (no rule), r11 garbage bytes, r12 an instrument the context lacks."""
    folder = tmp_path_factory.mktemp("parallel")
    cache = cache_with(folder / "cache",
                       full_frame_reference(folder / "a.fits", "IRIS1", flags={
                           "DEAD|DO_NOT_USE": [(100, 200)]}),
                       full_frame_reference(folder / "b.fits", "IRIS2", flags={
                           "HOT": [(95, 195)]}))
    inputs = folder / "inputs"
    inputs.mkdir()
    paths = [sub_ramp(inputs / f"r{index:02d}_uncal.fits",
                      detector="IRIS1" if index % 2 else "IRIS2",
                      origin_xy=(190 - index, 90 + index), size=32 + 8 * (index % 3),
                      with_dq=index == 4)
             for index in range(10)]
    paths.append(sub_ramp(inputs / "r10_uncal.fits", detector="IRIS3"))
    paths.append(inputs / "r11_uncal.fits")
    paths[-1].write_bytes(b"not a FITS file " * 200)
    paths.append(write_raw_ramp(inputs / "r12_uncal.fits", ramp_header(
        "NIRCAM", "NRCA1", subarray=("SUB32", 1, 1, 32, 32)), ngroups=2))
    return cache, paths


@pytest.fixture(scope="module")
def runs(workload, tmp_path_factory, snapshot_cache):
    """Run every mode once into its own folder: {mode: (records, folder)}, and the cache
    as it was before and after."""
    pytest.importorskip("distributed")
    cache, paths = workload
    before = snapshot_cache(cache)
    results = {}
    for mode, options in MODES.items():
        folder = tmp_path_factory.mktemp(mode.replace(" ", "_"))
        arrived = []
        records = run_many(paths, RunSettings(crds_path=cache.root, output_dir=folder),
                           on_result=arrived.append, **options)
        assert sorted(r["input"] for r in arrived) == sorted(str(p) for p in paths)
        results[mode] = (records, folder)
    return results, before, snapshot_cache(cache)


def comparable(records):
    return [{k: v for k, v in r.items() if k not in ("seconds", "output")} for r in records]


def test_pool_and_local_cluster_records_match_serial(runs):
    results, _, _ = runs
    serial = comparable(results["serial"][0])
    assert comparable(results["pool"][0]) == serial
    assert comparable(results["local cluster"][0]) == serial
    assert [r["status"] for r in serial] == ["COMPLETE"] * 10 + ["SKIPPED", "FAILED", "FAILED"]
    assert [r["reference"] for r in serial[:2]] == ["crds://iris_dq_0002.fits",
                                                   "crds://iris_dq_0001.fits"]
    assert {r["context"] for r in serial[:11]} == {"ligeriri_0003.pmap"}


def test_outputs_are_byte_identical_in_every_mode(runs):
    results, _, _ = runs
    records, serial_folder = results["serial"]
    for record in records[:11]:
        name = Path(record["output"]).name
        expected = (serial_folder / name).read_bytes()
        for mode in ("pool", "local cluster"):
            assert (results[mode][1] / name).read_bytes() == expected, (mode, name)


def test_corrupt_file_is_failed_and_leaves_nothing_behind(runs):
    results, _, _ = runs
    for records, folder in results.values():
        corrupt = records[11]
        assert corrupt["status"] == "FAILED" and corrupt["output"] is None
        assert "r11_uncal.fits: cannot be read as FITS" in corrupt["error"]
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"r{index:02d}_dqinit.fits" for index in range(11)]


def test_file_without_a_matching_rule_is_skipped_with_the_reason(runs):
    results, _, _ = runs
    skipped = results["serial"][0][10]
    assert skipped["reference"] is None and skipped["error"] is None
    assert "no DQ reference matches under ligeriri_0003.pmap" in skipped["message"]
    assert "'IMG3' is not in ['IMG1', 'IMG2']" in skipped["message"]
    with fits.open(skipped["output"]) as hdulist:
        assert hdulist[0].header["S_DQINIT"] == "SKIPPED"
        assert "PIXELDQ" not in hdulist


def test_selection_error_fails_only_files_with_that_header(runs, workload):
    cache, paths = workload
    results, _, _ = runs
    unknown = results["serial"][0][12]
    with pytest.raises(Exception) as direct:  # what the step alone says about this file
        DQInitStep(crds_path=cache.root).run(paths[12], output_dir=results["serial"][1])
    assert unknown["error"] == parallel._error_line(direct.value)  # the step's own words
    assert "unknown instrument 'nircam'" in unknown["error"].lower()


def test_flags_land_per_detector_and_subarray(runs):
    records, _ = runs[0]["serial"]
    with fits.open(records[1]["output"]) as hdulist:     # IRIS1 SUB40 at 0-indexed (90, 188)
        assert [tuple(p) for p in np.argwhere(hdulist["PIXELDQ"].data)] == [(10, 12)]
        assert hdulist["PIXELDQ"].data[10, 12] == flags.value("DEAD|DO_NOT_USE")
        assert np.argwhere(hdulist["GROUPDQ"].data).tolist() == [[0, 0, 10, 12],
                                                                  [0, 1, 10, 12]]
        assert hdulist[0].header["R_DQ"] == "crds://iris_dq_0001.fits"
        assert hdulist[0].header["CRDS_CTX"] == "ligeriri_0003.pmap"
    with fits.open(records[4]["output"]) as hdulist:     # IRIS2 SUB40 at (93, 185), had DQ
        assert [tuple(p) for p in np.argwhere(hdulist["PIXELDQ"].data)] == [(2, 10)]
        assert hdulist["PIXELDQ"].data[2, 10] == flags.value("HOT")
        assert not hdulist["GROUPDQ"].data.any()


def test_workers_never_write_to_the_cache(runs):
    _, before, after = runs
    assert after == before


def test_reference_is_selected_once_per_distinct_header(workload):
    cache, paths = workload
    settings = RunSettings(crds_path=cache.root).pinned()
    selections = select_references(paths, settings)
    assert selections[0] is selections[6]                            # IRIS2 SUB32
    assert selections[1] is selections[7]                            # IRIS1 SUB40
    assert len({id(s) for s in selections[:11]}) == 7                # 2 x 3 sizes, IRIS3
    assert selections[11] is None                                    # unreadable: task says
    assert selections[0].choice.keyword_value == "crds://iris_dq_0002.fits"
    assert selections[10].choice.path is None


def test_each_reference_is_loaded_once_per_process(workload, tmp_path):
    cache, paths = workload
    settings = RunSettings(crds_path=cache.root, output_dir=tmp_path).pinned()
    run_many(paths[:10], settings, workers=1)
    assert len(worker_step(settings)._masks) == 2


def test_pinned_context_holds_after_a_new_reference_is_registered(workload, tmp_path):
    cache, paths = workload
    private = cache_with(tmp_path / "cache")
    shutil.rmtree(private.root)
    shutil.copytree(cache.root, private.root)
    settings = RunSettings(crds_path=private.root, output_dir=tmp_path / "out").pinned()
    private.add(full_frame_reference(tmp_path / "new.fits", "IRIS1", useafter="2021-01-01"))
    records = run_many(paths[:2], settings, workers=1)
    assert [r["context"] for r in records] == ["ligeriri_0003.pmap"] * 2
    assert records[1]["reference"] == "crds://iris_dq_0001.fits"
    assert private.current_context == "ligeriri_0004.pmap"


def test_two_inputs_with_one_output_file_do_not_race(workload, tmp_path):
    cache, paths = workload
    twin = tmp_path / "twin" / paths[0].name
    twin.parent.mkdir()
    shutil.copy(paths[0], twin)
    records = run_many([paths[0], twin], RunSettings(crds_path=cache.root,
                                                     output_dir=tmp_path / "out"), workers=2)
    assert [r["status"] for r in records] == ["COMPLETE", "FAILED"]
    assert records[1]["error"].endswith(f"r00_dqinit.fits is also the output of {paths[0]}; "
                                        "not run")


def die_on_r03(path, settings, selection):
    """A task that kills its worker in the middle of writing r03's output."""
    if "r03" in str(path):
        target = parallel.output_target(path, settings)
        temporary_sibling(target).write_bytes(b"half an output")
        os._exit(9)
    return run_one(path, settings, selection)


def test_a_worker_that_dies_fails_only_the_file_that_killed_it(workload, tmp_path):
    cache, paths = workload
    settings = RunSettings(crds_path=cache.root, output_dir=tmp_path).pinned()
    tasks, _ = parallel.plan(paths[:6], settings)
    arrived = []
    records = parallel._run_pool(die_on_r03, tasks, 2, arrived.append)
    assert [records[index]["status"] for index in range(6)] == \
        ["COMPLETE"] * 3 + ["FAILED"] + ["COMPLETE"] * 2
    assert records[3]["error"] == WORKER_DIED
    assert len(arrived) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        [f"r{index:02d}_dqinit.fits" for index in (0, 1, 2, 4, 5)]


def test_a_dask_worker_that_dies_fails_only_the_file_that_killed_it(workload, tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask

    cache, paths = workload
    settings = RunSettings(crds_path=cache.root, output_dir=tmp_path).pinned()
    tasks, _ = parallel.plan(paths[:6], settings)
    # The harshest case: one worker holds every task (no scheduler-side queue), and Dask
    # gives up on every task that was on it when it died (no allowed failures). The
    # innocent ones must be run again and complete; only r03 kills a worker on its own.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": "inf"}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1,
                                     dashboard_address=None) as cluster:
        records = parallel._run_dask(die_on_r03, tasks, cluster.scheduler_address, 1,
                                     lambda record: None)
    assert [records[index]["status"] for index in range(6)] == \
        ["COMPLETE"] * 3 + ["FAILED"] + ["COMPLETE"] * 2
    assert records[3]["error"] == WORKER_DIED
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        [f"r{index:02d}_dqinit.fits" for index in (0, 1, 2, 4, 5)]


def test_output_file_takes_one_input(workload, tmp_path):
    cache, paths = workload
    with pytest.raises(ParallelError, match="one output file for several inputs"):
        run_many(paths[:2], RunSettings(crds_path=cache.root, output=tmp_path / "x.fits"))
    with pytest.raises(ParallelError, match="exclude each other"):
        RunSettings(output=tmp_path / "x.fits", in_place=True)


# -- how many workers (issue 14) -------------------------------------------------------------
MB = 1 << 20


def test_few_or_small_inputs_run_serially_and_a_pool_only_where_it_pays():
    assert choose_workers([], 8) == 1
    assert choose_workers([4096 * MB], 8) == 1                # one input: nothing to share
    assert choose_workers([MB, MB], 2) == 1                   # issue 14: two small files
    assert choose_workers([84 * MB] * 10, 2) == 1             # 0.9 s of work: a pool costs more
    assert choose_workers([84 * MB] * 200, 2) == 2            # 18 s of work
    assert choose_workers([84 * MB] * 200, 1) == 1            # one core
    assert choose_workers([4096 * MB] * 3, 8) == 3            # never more workers than inputs
    assert choose_workers([0, 0, 0], 4) == 1                  # unreadable inputs: no work


def test_without_a_worker_count_two_small_inputs_run_in_this_process(workload, tmp_path):
    cache, paths = workload
    settings = RunSettings(crds_path=cache.root, output_dir=tmp_path).pinned()
    records = run_many(paths[:2], settings, workers=None)
    assert [r["status"] for r in records] == ["COMPLETE", "COMPLETE"]
    assert len(worker_step(settings)._masks) == 2             # loaded here, not in a pool


# -- inputs --------------------------------------------------------------------------------
def test_glob_patterns_expand_sorted_and_a_pattern_without_match_stays(tmp_path):
    for name in ("b_uncal.fits", "a_uncal.fits", "notes.txt"):
        (tmp_path / name).write_text("x")
    found = expand_inputs([str(tmp_path / "*_uncal.fits"), str(tmp_path / "none*.fits")])
    assert found == [tmp_path / "a_uncal.fits", tmp_path / "b_uncal.fits",
                     tmp_path / "none*.fits"]


def test_list_file_skips_comments_and_resolves_relative_paths(tmp_path):
    (tmp_path / "night").mkdir()
    listing = tmp_path / "night" / "tonight.txt"
    listing.write_text("# exposures of tonight\n\n  r1_uncal.fits  \n../r2_uncal.fits\n"
                       "/data/r3_uncal.fits\n   # indented comment\n")
    assert expand_inputs([], listing) == [tmp_path / "night" / "r1_uncal.fits",
                                          tmp_path / "r2_uncal.fits",
                                          Path("/data/r3_uncal.fits")]


def test_duplicates_are_dropped_keeping_the_first(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("b.fits\na.fits\n./b.fits\n")
    found = expand_inputs([str(tmp_path / "a.fits"), str(tmp_path / "c.fits")], listing)
    assert found == [tmp_path / "a.fits", tmp_path / "c.fits", tmp_path / "b.fits"]


def test_no_inputs_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("# nothing tonight\n")
    with pytest.raises(ParallelError, match="no input files"):
        expand_inputs([], tmp_path / "empty.txt")
    with pytest.raises(ParallelError, match="missing.txt: cannot read the input list"):
        expand_inputs(["a.fits"], tmp_path / "missing.txt")
