"""The primary-header keywords that both ramp layouts share, in both dialects.

JWST-style ramps say where an exposure sits with SUBARRAY/SUBSTRT/SUBSIZE and when it
started with DATE-OBS/TIME-OBS. The Liger/IRIS pipeline writes the same geometry
keywords (SUBARRAY one of FULL, CUSTOM, GENERIC, N/A, plus DETXSIZE/DETYSIZE) and its
start time as EXPDTST (``YYYYMMDDHHMMSS``) and EXPJDST (Julian date). Which dialect a
header speaks is resolved for CRDS by the observatory package's cross-strapping; this
module only hands the keywords over, places the image plane on the detector, and writes
the step's status keywords. Keyword names live here and in the layout modules only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from astropy.io import fits

from dqinit.errors import RampFormatError
from dqref.detectors import TABLE_FILE, all_detectors, canonical_detector, canonical_instrument

#: Primary keywords that CRDS selects on (either dialect; the observatory package
#: cross-straps EXPDTST/EXPJDST to the observation date and time).
SELECTION_KEYWORDS = ("INSTRUME", "DETECTOR", "SUBARRAY", "DATE-OBS", "TIME-OBS",
                      "EXPDTST", "EXPJDST")
STATUS_KEYWORD = "S_DQINIT"
REFERENCE_KEYWORD = "R_DQ"
CONTEXT_KEYWORD = "CRDS_CTX"
VERSION_KEYWORD = "CAL_VER"
#: SUBARRAY values that do not name a fixed region: the region is SUBSTRT/SUBSIZE.
PLACED_BY_KEYWORDS = ("CUSTOM", "GENERIC", "N/A")


@dataclass(frozen=True)
class Geometry:
    """Where an image plane sits on the detector: 0-indexed origin (row, column), shape."""

    subarray: str
    origin: tuple[int, int]
    shape: tuple[int, int]


@dataclass(frozen=True)
class StepStatus:
    """What the step records in a ramp: status, reference (R_DQ), context, software."""

    status: str
    reference: str
    context: str
    software: str


def selection_header(header: fits.Header) -> dict[str, str]:
    """Return the keywords CRDS selects on, as stripped strings (no SUBARRAY means FULL).

    Raises
    ------
    RampFormatError
        A selection value holds a control character (a newline or NUL in DETECTOR would
        reach crds's parser).
    """
    selected = {}
    for key in SELECTION_KEYWORDS:
        if key in header:
            value = str(header[key]).strip()
            if not value.isprintable():
                raise RampFormatError(f"{key} = {value!r} holds a control character")
            selected[key] = value
    selected.setdefault("SUBARRAY", "FULL")
    return selected


def geometry(header: fits.Header, image_shape: tuple[int, int],
             source: str = "") -> tuple[Geometry, list[str]]:
    """Place the science image plane on the detector; return it and any warnings.

    Rules (both dialects):

    - ``SUBARRAY = 'FULL'`` (or no SUBARRAY) means the whole detector at (1, 1): the
      image plane must have the detector's full-frame shape (from ``detectors.toml``, or
      DETYSIZE x DETXSIZE for a detector the table does not know);
    - any other value (``CUSTOM``, ``GENERIC``, ``N/A``, a named subarray) needs
      integer SUBSTRT1/SUBSTRT2 (1-indexed); SUBSIZE1/SUBSIZE2, when present, must equal
      the image plane's (columns, rows);
    - DETXSIZE/DETYSIZE that disagree with the detector table give a warning naming both.

    Raises
    ------
    RampFormatError
        The header and the data disagree; the message names both shapes.
    """
    rows, columns = image_shape
    where = f"{source}: " if source else ""
    warnings = []
    full, described = _full_frame(header, warnings, where)
    name = str(header.get("SUBARRAY", "FULL")).strip().upper() or "FULL"
    if name == "FULL":
        if full is not None and full != (rows, columns):
            raise RampFormatError(
                f"{where}SUBARRAY = 'FULL' but the image plane is {rows} x {columns} and "
                f"{described} is {full[0]} x {full[1]}; give SUBARRAY = 'CUSTOM' with "
                "SUBSTRT1/SUBSTRT2 for a region of the detector")
        _check_size(header, rows, columns, where)
        if "SUBSTRT1" in header or "SUBSTRT2" in header:
            origin = (_integer(header, "SUBSTRT2", where) - 1,
                      _integer(header, "SUBSTRT1", where) - 1)
            if origin != (0, 0):
                raise RampFormatError(f"{where}SUBARRAY = 'FULL' but SUBSTRT1/SUBSTRT2 = "
                                      f"{origin[1] + 1}/{origin[0] + 1} (must be 1/1)")
        return Geometry("FULL", (0, 0), (rows, columns)), warnings
    if "SUBSTRT1" not in header or "SUBSTRT2" not in header:
        raise RampFormatError(f"{where}SUBARRAY = {name!r} with a {rows} x {columns} image "
                              "plane needs SUBSTRT1/SUBSTRT2 to be placed on the detector")
    _check_size(header, rows, columns, where)
    origin = (_integer(header, "SUBSTRT2", where) - 1, _integer(header, "SUBSTRT1", where) - 1)
    if origin[0] < 0 or origin[1] < 0:
        raise RampFormatError(f"{where}SUBSTRT1/SUBSTRT2 = {origin[1] + 1}/{origin[0] + 1}; "
                              "they are 1-indexed")
    return Geometry(name, origin, (rows, columns)), warnings


def status_header(header: fits.Header, status: StepStatus) -> fits.Header:
    """Return a copy of a primary header recording the step's status and provenance."""
    updated = header.copy()
    updated[STATUS_KEYWORD] = (status.status, "DQ initialization")
    updated[REFERENCE_KEYWORD] = (status.reference, "DQ reference file used")
    updated[CONTEXT_KEYWORD] = (status.context, "CRDS context used")
    updated[VERSION_KEYWORD] = (status.software, "calibration software version")
    for keyword in ("CHECKSUM", "DATASUM"):  # the header changed; stale sums would lie
        updated.remove(keyword, ignore_missing=True)
    return updated


# -- helpers ----------------------------------------------------------------------------
def _full_frame(header: fits.Header, warnings: list[str],
                where: str) -> tuple[tuple[int, int] | None, str]:
    """Return the detector's full-frame (rows, columns) and how to name it."""
    instrument = canonical_instrument(header.get("INSTRUME"))
    detector = canonical_detector(instrument, header.get("DETECTOR"))
    known = all_detectors().get((instrument, detector))
    declared = None
    if "DETXSIZE" in header and "DETYSIZE" in header:
        declared = (_integer(header, "DETYSIZE", where), _integer(header, "DETXSIZE", where))
    if known is None:
        return declared, "DETYSIZE x DETXSIZE"
    if declared is not None and declared != known.shape:
        warnings.append(
            f"{where}DETYSIZE x DETXSIZE = {declared[0]} x {declared[1]} but {TABLE_FILE} "
            f"says {instrument} {detector} is {known.shape[0]} x {known.shape[1]}; using "
            "the table")
    return known.shape, f"{instrument} {detector}"


def _check_size(header: fits.Header, rows: int, columns: int, where: str) -> None:
    size = (_integer(header, "SUBSIZE2", where) if "SUBSIZE2" in header else rows,
            _integer(header, "SUBSIZE1", where) if "SUBSIZE1" in header else columns)
    if size != (rows, columns):
        raise RampFormatError(f"{where}SUBSIZE2 x SUBSIZE1 = {size[0]} x {size[1]} but the "
                              f"image plane is {rows} x {columns}")


def _integer(header: fits.Header, keyword: str, where: str) -> int:
    """Return a keyword that must be a whole number (1.5 is refused, not truncated)."""
    value = header[keyword]
    whole = isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) and value == int(value)
    if not whole:
        raise RampFormatError(f"{where}{keyword} = {value!r} is not a whole number")
    return int(value)
