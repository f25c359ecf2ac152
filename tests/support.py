"""Factories shared by the tests: small real references, caches and ramps on disk."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqinit.simulate import ramp_header, write_raw_ramp
from dqref import DQModel, flags
from dqref.cache.local_cache import LocalCache
from dqref.model import Subarray


def full_frame_reference(path: Path, detector: str = "IRIS1", useafter: str = "2020-01-01",
                         flags: dict | None = None, instrument: str = "IRIS") -> Path:
    """Write a full-frame reference with ``{flag: [(y, x), ...]}`` set; return its path."""
    model = DQModel.blank(instrument, detector, useafter=useafter,
                          description=f"test reference {path.name}")
    for flag, positions in (flags or {"DEAD": [(0, 0)]}).items():
        model.flag(np.array(positions), flag)
    model.write(path)
    return path


def subarray_reference(path: Path, origin_xy=(101, 201), size=64,
                       flags: dict | None = None) -> Path:
    """Write a small SUB reference at 1-indexed (SUBSTRT1, SUBSTRT2) = ``origin_xy``."""
    model = DQModel(np.zeros((size, size), np.uint32), name="IRIS", detector="IRIS1",
                    useafter="2020-01-01")
    model.meta.subarray = Subarray(f"SUB{size}", origin_xy[0], origin_xy[1], size, size)
    for flag, positions in (flags or {}).items():
        model.flag(np.array(positions), flag)
    model.write(path)
    return path


def cache_with(root: Path, *references: Path) -> LocalCache:
    """Initialise a cache at ``root`` and register ``references`` in order."""
    cache = LocalCache(root)
    cache.init()
    for reference in references:
        cache.add(reference)
    return cache


def sub_ramp(path: Path, detector: str = "IRIS1", origin_xy=(190, 90), size=64, nints=1,
             ngroups=2, date="2026-01-15", with_dq=False) -> Path:
    """Write a small raw subarray ramp (1-indexed SUBSTRT1/2 = ``origin_xy``)."""
    header = ramp_header("IRIS", detector, date=date,
                         subarray=(f"SUB{size}", origin_xy[0], origin_xy[1], size, size))
    return write_raw_ramp(path, header, nints=nints, ngroups=ngroups, with_dq=with_dq)


def header(detector="IRIS1", date="2026-01-01", time="00:00:00", subarray="FULL",
           instrument="IRIS") -> dict:
    """A FITS-keyword selection header."""
    return {"INSTRUME": instrument, "DETECTOR": detector, "SUBARRAY": subarray,
            "DATE-OBS": date, "TIME-OBS": time}


def jwst_style_mask(path: Path, shape, pixel, header: dict) -> Path:
    """Write a JWST MASK-style file (plain astropy, no checksums) whose DQ_DEF calls bit 1
    DEAD (value 2); ``pixel`` (y, x) is set to that DEAD | DO_NOT_USE."""
    table = flags.dq_def_rows()[:2].copy()
    table[1] = (1, 2, b"DEAD", b"dead, as this file numbers it")
    dq = np.zeros(shape, np.uint32)
    dq[pixel] = 2 | 1
    primary = fits.PrimaryHDU()
    primary.header.update({"REFTYPE": "MASK", "SUBARRAY": "FULL", **header})
    fits.HDUList([primary, fits.ImageHDU(dq, name="DQ"),
                  fits.BinTableHDU(table, name="DQ_DEF")]).writeto(path)
    return path


def user_namespace_with_tmpfs_works() -> bool:
    """Whether this machine lets an unprivileged user namespace mount a tmpfs (for the
    tests of full and read-only disks)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs none /mnt"],
                           capture_output=True)
    return probe.returncode == 0
