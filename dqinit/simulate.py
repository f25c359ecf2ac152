"""Simulated raw ramps for demos, tests, benchmarks and the round-trip proof.

Two layouts: the JWST ramp (`write_raw_ramp`: SCI float32 (nints, ngroups, rows, columns))
and the Liger/IRIS level-0 ramp (`write_level0_ramp`: DATA/DQ uint16 (ny, nx, ngroups,
nreads), TIMES and an ASDF tree, as that pipeline's RampModel writes it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqinit.layouts import asdf_tree
from dqinit.layouts import hdus as fitsio
from dqinit.layouts.jwst import GROUPDQ, PIXELDQ, SCI
from dqinit.layouts.level0 import DATA, DQ, TIMES
from dqref.atomic import atomic_output
from dqref.detectors import get_detector


def ramp_header(instrument: str = "IRIS", detector: str = "IRIS1", date: str = "2026-01-15",
                time: str = "03:00:00", subarray: tuple[str, int, int, int, int] | None = None
                ) -> fits.Header:
    """Return a JWST-dialect primary header; ``subarray`` is (name, xstart, ystart, xsize,
    ysize), 1-indexed."""
    header = fits.Header()
    header["TELESCOP"] = "TMT" if instrument.upper() == "IRIS" else "KECK"
    header["INSTRUME"] = instrument.upper()
    header["DETECTOR"] = detector.upper()
    header["DATE-OBS"] = date
    header["TIME-OBS"] = time
    _set_subarray(header, instrument, detector, subarray)
    return header


def level0_header(instrument: str = "IRIS", detector: str = "IMG1",
                  start: str = "20260115030000",
                  subarray: tuple[str, int, int, int, int] | None = None) -> fits.Header:
    """Return a primary header in the Liger/IRIS pipeline's dialect.

    INSTRUME is spelled as that pipeline spells it (``IRIS``, ``Liger``), the start time
    is EXPDTST (``YYYYMMDDHHMMSS``) with no DATE-OBS/TIME-OBS, and DATAMODL names the model.
    """
    header = fits.Header()
    header["INSTRUME"] = "Liger" if instrument.upper() == "LIGER" else "IRIS"
    header["DETECTOR"] = detector.upper()
    header["IMTYPE"] = "SCI"
    header["EXPDTST"] = start
    _set_subarray(header, instrument, detector, subarray)
    rows, columns = get_detector(instrument, detector).shape
    header["DETXSIZE"], header["DETYSIZE"] = columns, rows
    header["TELESCOP"] = "TMT" if instrument.upper() == "IRIS" else "Keck-I"
    header["DATAMODL"] = "RampModel"
    return header


def write_raw_ramp(path: str | os.PathLike, header: fits.Header, nints: int = 1,
                   ngroups: int = 3, with_dq: bool = False, seed: int = 0,
                   overwrite: bool = False, zeros: bool = False) -> Path:
    """Write a JWST-layout raw ramp of the header's geometry, streaming SCI group by group.

    SCI holds a noisy linear ramp (float32), or zeros left as a file hole when ``zeros``
    (free to write and to read); PIXELDQ/GROUPDQ are written (zeros) only when ``with_dq``.
    """
    rows, columns = int(header["SUBSIZE2"]), int(header["SUBSIZE1"])
    rng = np.random.default_rng(seed)
    primary = fits.PrimaryHDU(header=header.copy())
    primary.header["EXTEND"] = True
    with atomic_output(path, overwrite=overwrite) as temporary:
        with open(temporary, "wb") as sink:
            sink.write(fitsio.header_bytes(primary.header))
            sink.write(fitsio.header_bytes(fitsio.image_header(
                SCI, (nints, ngroups, rows, columns), np.float32)))
            length = 4 * nints * ngroups * rows * columns
            if zeros:
                _hole(sink, length)
            else:
                base = rng.normal(1000.0, 5.0, (rows, columns)).astype(">f4")
                for _ in range(nints):
                    for group in range(ngroups):
                        sink.write((base + np.float32(50.0 * group)).astype(">f4").tobytes())
                sink.write(fitsio.padding(length))
        if with_dq:
            with fits.open(temporary, mode="append") as hdulist:
                hdulist.append(fits.ImageHDU(np.zeros((rows, columns), np.uint32),
                                             name=PIXELDQ))
                hdulist.append(fits.ImageHDU(np.zeros((nints, ngroups, rows, columns),
                                                      np.uint8), name=GROUPDQ))
    return Path(path)


def write_level0_ramp(path: str | os.PathLike, header: fits.Header, ngroups: int = 2,
                      nreads: int = 2, dq: dict[tuple[int, int, int, int], int] | None = None,
                      overwrite: bool = False, zeros: bool = False, seed: int = 0) -> Path:
    """Write a Liger/IRIS level-0 ramp: TIMES, DATA, DQ (uint16) and an ASDF tree.

    ``dq`` sets existing per-read flags ``{(y, x, group, read): value}`` (the pipeline's
    own test ramps carry one). DATA holds counts rising by read, or is left as a file
    hole when ``zeros`` (free to write; as uint16 with BZERO, a hole reads as 32768).
    The tree is what that pipeline's RampModel stores, with a ``_fits_hash`` that
    matches the file.
    """
    ny, nx = int(header["SUBSIZE2"]), int(header["SUBSIZE1"])
    shape = (ny, nx, ngroups, nreads)
    primary = header.copy()
    primary["EXTEND"] = True
    primary = fits.PrimaryHDU(header=primary).header
    times = (np.arange(ngroups * nreads, dtype=np.float64).reshape(ngroups, nreads) * 1.5)
    times_header = fitsio.image_header(TIMES, times.shape, np.float64)
    data_header = fitsio.image_header(DATA, shape, np.uint16)
    dq_header = fitsio.image_header(DQ, shape, np.uint16)
    tree = {
        "meta": _level0_meta(header),
        "times": asdf_tree.array_node(TIMES, times.shape, np.float64),
        "data": asdf_tree.array_node(DATA, shape, np.uint16),
        "dq": asdf_tree.array_node(DQ, shape, np.uint16),
        asdf_tree.HASH_KEY: asdf_tree.fits_hash([primary, times_header, data_header,
                                                 dq_header]),
    }
    tree_header, tree_data = asdf_tree.tree_hdu(tree)
    rng = np.random.default_rng(seed)
    with atomic_output(path, overwrite=overwrite) as temporary:
        with open(temporary, "wb") as sink:
            sink.write(fitsio.header_bytes(primary))
            sink.write(fitsio.header_bytes(times_header))
            sink.write(times.astype(">f8").tobytes() + fitsio.padding(times.nbytes))
            sink.write(fitsio.header_bytes(data_header))
            length = 2 * int(np.prod(shape))
            if zeros:
                _hole(sink, length)
            else:
                for _ in range(ny):
                    ramp = 1000 + 20 * np.arange(ngroups * nreads, dtype=np.uint16)
                    row = rng.integers(0, 10, (nx, 1), dtype=np.uint16) + ramp
                    sink.write(fitsio.to_fits_bytes(row.reshape(nx, ngroups, nreads)))
                sink.write(fitsio.padding(length))
            sink.write(fitsio.header_bytes(dq_header))
            # Not a hole: uint16 is stored with BZERO = 32768, so zero bytes read as 32768.
            for y in range(ny):
                flags = np.zeros(shape[1:], np.uint16)
                for (row, *where), value in (dq or {}).items():
                    if row == y:
                        flags[tuple(where)] = value
                sink.write(fitsio.to_fits_bytes(flags))
            sink.write(fitsio.padding(length))
            sink.write(fitsio.header_bytes(tree_header))
            sink.write(tree_data + fitsio.padding(len(tree_data)))
    return Path(path)


def _set_subarray(header: fits.Header, instrument: str, detector: str, subarray) -> None:
    if subarray is None:
        rows, columns = get_detector(instrument, detector).shape
        subarray = ("FULL", 1, 1, columns, rows)
    name, xstart, ystart, xsize, ysize = subarray
    header["SUBARRAY"] = name
    header["SUBSTRT1"], header["SUBSTRT2"] = xstart, ystart
    header["SUBSIZE1"], header["SUBSIZE2"] = xsize, ysize


def _level0_meta(header: fits.Header) -> dict:
    """The pipeline's tree for the keywords its schema maps (FITS keyword -> tree)."""
    meta = {"model_type": str(header.get("DATAMODL", "RampModel")), "data_level": 0,
            "instrument": {"name": str(header["INSTRUME"]),
                           "detector": str(header["DETECTOR"])},
            "exposure": {"exposure_type": str(header.get("IMTYPE", "SCI"))},
            "subarray": {"name": str(header["SUBARRAY"])}}
    if "EXPDTST" in header:
        meta["exposure"]["datetime_start"] = str(header["EXPDTST"])
    for keyword, field in (("SUBSTRT1", "xstart"), ("SUBSTRT2", "ystart"),
                           ("SUBSIZE1", "xsize"), ("SUBSIZE2", "ysize"),
                           ("DETXSIZE", "detxsize"), ("DETYSIZE", "detysize")):
        if keyword in header:
            meta["subarray"][field] = int(header[keyword])
    if "TELESCOP" in header:
        meta["telescope"] = str(header["TELESCOP"])
    return meta


def _hole(sink, length: int) -> None:
    """Leave ``length`` zero bytes (padded to a FITS block) as a hole in the file."""
    sink.seek(length + len(fitsio.padding(length)), os.SEEK_CUR)
    sink.truncate()
