"""Shared fixtures: DQ reference files on disk and local CRDS caches built from them.

References are written through the public API (``DQModel`` + ``flag`` + ``write``), so
every file here is one a user could have made. Full-frame references are 64 MB each:
the session-scoped ones are shared and must be treated as read-only; a test that
changes a cache takes its own (``empty_cache`` or ``registered_cache_copy``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dqref import DQModel
from dqref.cache.local_cache import LocalCache
from dqref.model import Subarray


def write_reference(path: Path, detector: str = "IRIS1", useafter: str = "2020-01-01",
                    flagged=((0, 0),), flag: str = "DEAD|DO_NOT_USE",
                    subarray: tuple[str, int, int, int] | None = None,
                    instrument: str = "IRIS", description: str | None = None) -> Path:
    """Write a valid DQ reference to ``path`` and return ``path``.

    Parameters
    ----------
    flagged : sequence of (y, x)
        0-indexed pixels that get ``flag`` (different pixels make different content).
    subarray : (name, xstart, ystart, size), optional
        Write a small square subarray reference (FITS 1-indexed origin) instead of a
        full frame.
    """
    description = description or f"test reference {Path(path).name}"
    if subarray is None:
        model = DQModel.blank(instrument, detector, useafter=useafter, description=description)
    else:
        name, xstart, ystart, size = subarray
        model = DQModel(np.zeros((size, size), np.uint32), name=instrument, detector=detector,
                        useafter=useafter, description=description)
        model.meta.subarray = Subarray(name, xstart, ystart, size, size)
    if len(flagged):
        model.flag(np.array(flagged), flag)
    model.write(path)
    return Path(path)


@pytest.fixture(scope="session")
def make_reference():
    """The `write_reference` factory: ``make_reference(path, detector=..., ...)``."""
    return write_reference


@pytest.fixture(scope="session")
def three_references(tmp_path_factory):
    """Full-frame references for two detectors and two dates (read-only).

    IRIS1 from 2020-01-01, IRIS1 from 2025-01-01 and IRIS2 from 2020-01-01, each with a
    different DEAD|DO_NOT_USE pixel, in the order they are registered.
    """
    folder = tmp_path_factory.mktemp("three_references")
    return (
        write_reference(folder / "iris1_2020.fits", "IRIS1", "2020-01-01", [(1, 1)]),
        write_reference(folder / "iris1_2025.fits", "IRIS1", "2025-01-01", [(2, 2)]),
        write_reference(folder / "iris2_2020.fits", "IRIS2", "2020-01-01", [(3, 3)]),
    )


@pytest.fixture(scope="session")
def registered_cache(tmp_path_factory, three_references):
    """A cache with ``three_references`` registered in order; returns (cache, add results).

    Contexts: ligeriri_0001.pmap (initial) ... ligeriri_0004.pmap (current). Read-only.
    """
    cache = LocalCache(tmp_path_factory.mktemp("registered") / "cache")
    cache.init()
    results = [cache.add(reference) for reference in three_references]
    return cache, results


@pytest.fixture
def registered_cache_copy(tmp_path, registered_cache):
    """A private, modifiable copy of ``registered_cache``."""
    cache, _ = registered_cache
    shutil.copytree(cache.root, tmp_path / "cache")
    return LocalCache(tmp_path / "cache")


def cache_files(cache: LocalCache) -> dict[str, tuple]:
    """Every file of a cache (but its lock) -> (size, mtime_ns, text of small files).

    Comparing two snapshots shows files created, removed or rewritten.
    """
    snapshot = {}
    for path in sorted(p for p in cache.root.rglob("*") if p.is_file()):
        if path.name == "dqref.lock":
            continue
        stat = path.stat()
        text = path.read_bytes() if stat.st_size < 1_000_000 else None
        snapshot[str(path.relative_to(cache.root))] = (stat.st_size, stat.st_mtime_ns, text)
    return snapshot


@pytest.fixture(scope="session")
def snapshot_cache():
    """The `cache_files` function: ``snapshot_cache(cache)`` -> {relative path: state}."""
    return cache_files


@pytest.fixture
def empty_cache(tmp_path):
    """A freshly initialised cache with no references (context ligeriri_0001.pmap)."""
    cache = LocalCache(tmp_path / "cache")
    cache.init()
    return cache
