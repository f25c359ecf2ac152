"""Simulated raw ramps for demos, tests and benchmarks (JWST ramp layout)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqinit import ramp
from dqref.atomic import atomic_output
from dqref.detectors import get_detector


def ramp_header(instrument: str = "IRIS", detector: str = "IRIS1", date: str = "2026-01-15",
                time: str = "03:00:00", subarray: tuple[str, int, int, int, int] | None = None
                ) -> fits.Header:
    """Return a primary header; ``subarray`` is (name, xstart, ystart, xsize, ysize), 1-indexed."""
    header = fits.Header()
    header["TELESCOP"] = "TMT" if instrument.upper() == "IRIS" else "KECK"
    header["INSTRUME"] = instrument.upper()
    header["DETECTOR"] = detector.upper()
    header["DATE-OBS"] = date
    header["TIME-OBS"] = time
    if subarray is None:
        rows, columns = get_detector(instrument, detector).shape
        subarray = ("FULL", 1, 1, columns, rows)
    name, xstart, ystart, xsize, ysize = subarray
    header["SUBARRAY"] = name
    header["SUBSTRT1"], header["SUBSTRT2"] = xstart, ystart
    header["SUBSIZE1"], header["SUBSIZE2"] = xsize, ysize
    return header


def write_raw_ramp(path: str | os.PathLike, header: fits.Header, nints: int = 1,
                   ngroups: int = 3, with_dq: bool = False, seed: int = 0,
                   overwrite: bool = False) -> Path:
    """Write a raw ramp of the header's geometry, streaming SCI group by group.

    SCI holds a noisy linear ramp (float32); PIXELDQ/GROUPDQ are written (zeros) only
    when ``with_dq``.
    """
    rows, columns = int(header["SUBSIZE2"]), int(header["SUBSIZE1"])
    rng = np.random.default_rng(seed)
    sci_header = fits.Header([("XTENSION", "IMAGE"), ("BITPIX", -32), ("NAXIS", 4),
                              ("NAXIS1", columns), ("NAXIS2", rows), ("NAXIS3", ngroups),
                              ("NAXIS4", nints), ("PCOUNT", 0), ("GCOUNT", 1),
                              ("EXTNAME", ramp.SCI)])
    primary = fits.PrimaryHDU(header=header.copy())
    primary.header["EXTEND"] = True
    with atomic_output(path, overwrite=overwrite) as temporary:
        with open(temporary, "wb") as sink:
            sink.write(primary.header.tostring().encode("ascii"))
            sink.write(sci_header.tostring().encode("ascii"))
            base = rng.normal(1000.0, 5.0, (rows, columns)).astype(">f4")
            for _ in range(nints):
                for group in range(ngroups):
                    sink.write((base + np.float32(50.0 * group)).astype(">f4").tobytes())
            ramp._pad(sink, 4 * nints * ngroups * rows * columns)
        if with_dq:
            with fits.open(temporary, mode="append") as hdulist:
                hdulist.append(fits.ImageHDU(np.zeros((rows, columns), np.uint32),
                                             name=ramp.PIXELDQ))
                hdulist.append(fits.ImageHDU(np.zeros((nints, ngroups, rows, columns),
                                                      np.uint8), name=ramp.GROUPDQ))
    return Path(path)
