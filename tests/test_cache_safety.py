"""Crash safety and concurrency of `cache add`, with real processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import cache_with, full_frame_reference, header

from dqref.cache.local_cache import LocalCache

ADD = "import sys; from dqref.cache.local_cache import LocalCache; " \
      "LocalCache(sys.argv[1]).add(sys.argv[2])"


def add_in_process(cache_root, reference, **environment):
    return subprocess.Popen([sys.executable, "-c", ADD, str(cache_root), str(reference)],
                            env={**os.environ, **environment}, stderr=subprocess.PIPE)


def test_two_concurrent_adds_both_land_with_distinct_serials(tmp_path):
    one = full_frame_reference(tmp_path / "one.fits", "IRIS1", flags={"DEAD": [(1, 1)]})
    two = full_frame_reference(tmp_path / "two.fits", "IRIS2", flags={"DEAD": [(2, 2)]})
    cache = cache_with(tmp_path / "c")
    processes = [add_in_process(cache.root, one), add_in_process(cache.root, two)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    fresh = LocalCache(cache.root)
    assert fresh.current_context == "ligeriri_0003.pmap"
    assert sorted(r.reference for r in fresh.rules()) == ["iris_dq_0001.fits",
                                                          "iris_dq_0002.fits"]
    assert fresh.bestref(header("IRIS1")).found and fresh.bestref(header("IRIS2")).found
    assert fresh.verify() == []


@pytest.mark.parametrize("step", ["reference", "rmap", "imap", "pmap"])
def test_a_crash_at_any_step_leaves_the_previous_context(tmp_path, step):
    first = full_frame_reference(tmp_path / "a.fits", "IRIS1", "2020-01-01")
    second = full_frame_reference(tmp_path / "b.fits", "IRIS1", "2025-01-01")
    cache = cache_with(tmp_path / "c", first)
    files_before = {p: p.read_bytes() for p in cache.mapping_dir.iterdir()}
    crashed = add_in_process(cache.root, second, DQREF_TEST_CRASH_AFTER=step)
    assert crashed.wait(timeout=120) == 97
    fresh = LocalCache(cache.root)
    assert fresh.current_context == "ligeriri_0002.pmap"
    assert fresh.bestref(header("IRIS1", "2026-01-01")).reference == "iris_dq_0001.fits"
    assert fresh.verify() == []
    assert all(path.read_bytes() == data for path, data in files_before.items())
    retried = fresh.add(second)  # the same file again: an orphan is not a registration
    assert retried.context == fresh.current_context
    assert retried.context not in {p.name for p in files_before}  # an orphan is never reused
    assert fresh.bestref(header("IRIS1", "2026-01-01")).reference == retried.reference.name
    assert not list(cache.root.rglob(".*.tmp"))
