"""The FITS layout of a science ramp (JWST RampModel layout) and a streaming writer.

Primary header: INSTRUME, DETECTOR, SUBARRAY, SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2
(1-indexed), DATE-OBS, TIME-OBS. Extensions: ``SCI`` (float32, nints x ngroups x rows x
columns), optional ``PIXELDQ`` (uint32, 2D), ``GROUPDQ`` (uint8, 4D), ``ERR`` and any
others (JWST's ``ASDF`` included), which are copied byte for byte.

The writer never loads ``SCI``: it copies the input's bytes, writes ``PIXELDQ`` from
memory and ``GROUPDQ`` one (rows x columns) plane at a time. Keyword names live here only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqinit.errors import RampFormatError
from dqref.atomic import atomic_output
from dqref.detectors import all_detectors

SCI, PIXELDQ, GROUPDQ, ERR = "SCI", "PIXELDQ", "GROUPDQ", "ERR"
#: Primary keywords that CRDS matches on.
SELECTION_KEYWORDS = ("INSTRUME", "DETECTOR", "SUBARRAY", "DATE-OBS", "TIME-OBS")
STATUS_KEYWORD = "S_DQINIT"
REFERENCE_KEYWORD = "R_DQ"
CONTEXT_KEYWORD = "CRDS_CTX"
VERSION_KEYWORD = "CAL_VER"
_BLOCK = 2880


@dataclass(frozen=True)
class Geometry:
    """Where an image plane sits on the detector: 0-indexed origin (row, column), shape."""

    subarray: str
    origin: tuple[int, int]
    shape: tuple[int, int]


@dataclass(frozen=True)
class Extension:
    """One HDU of the input file: its name and where its header and data lie."""

    name: str
    header_offset: int
    data_offset: int
    data_span: int
    shape: tuple[int, ...] = ()
    dtype: np.dtype | None = None


@dataclass
class RampLayout:
    """What a ramp file holds, read from its headers only (no data loaded)."""

    path: Path
    header: fits.Header
    extensions: list[Extension] = field(default_factory=list)

    def extension(self, name: str) -> Extension | None:
        return next((e for e in self.extensions if e.name == name), None)

    @property
    def sci_shape(self) -> tuple[int, int, int, int]:
        return self.extension(SCI).shape

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.sci_shape[-2:])


def read_layout(path: str | os.PathLike) -> RampLayout:
    """Read a ramp's headers and check its DQ arrays' shapes and dtypes.

    Raises
    ------
    RampFormatError
        Not FITS; no 4D ``SCI``; an existing ``PIXELDQ`` that is not 2D uint32 of the
        image-plane shape or a ``GROUPDQ`` that is not uint8 of the ``SCI`` shape.
    """
    path = Path(path)
    if not path.is_file():
        raise RampFormatError(f"{path}: no such file")
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=False) as hdulist:
            extensions = []
            for index, hdu in enumerate(hdulist):
                info = hdulist.fileinfo(index)
                is_image = hdu.is_image and hdu.header.get("NAXIS", 0)  # not JWST's ASDF table
                dtype = _dtype_of(hdu.header) if is_image else None
                extensions.append(Extension(
                    hdu.name if index else "PRIMARY", info["hdrLoc"], info["datLoc"],
                    info["datSpan"], tuple(hdu.shape) if dtype is not None else (), dtype))
            header = hdulist[0].header.copy()
    except (OSError, ValueError) as error:
        raise RampFormatError(f"{path}: cannot be read as FITS ({error})") from None
    layout = RampLayout(path, header, extensions)
    check_dq_arrays(layout.extension(SCI) and layout.sci_shape,
                    _shape_dtype(layout.extension(PIXELDQ)),
                    _shape_dtype(layout.extension(GROUPDQ)), str(path))
    return layout


def check_dq_arrays(sci_shape, pixeldq, groupdq, source: str) -> None:
    """Raise RampFormatError unless SCI is 4D and existing DQ arrays fit it exactly."""
    if not sci_shape or len(sci_shape) != 4:
        raise RampFormatError(f"{source}: needs a 4D {SCI} extension (nints, ngroups, rows, "
                              f"columns); found {sci_shape or 'none'}")
    if pixeldq is not None:
        shape, dtype = pixeldq
        if tuple(shape) != tuple(sci_shape[-2:]) or dtype != np.uint32:
            raise RampFormatError(
                f"{source}: existing {PIXELDQ} is {dtype} {tuple(shape)}; expected uint32 "
                f"{tuple(sci_shape[-2:])} (it is never replaced silently)")
    if groupdq is not None:
        shape, dtype = groupdq
        if tuple(shape) != tuple(sci_shape) or dtype != np.uint8:
            raise RampFormatError(
                f"{source}: existing {GROUPDQ} is {dtype} {tuple(shape)}; expected uint8 "
                f"{tuple(sci_shape)} (it is never replaced silently)")


def selection_header(header: fits.Header) -> dict[str, str]:
    """Return the keywords CRDS selects on (a missing SUBARRAY means FULL)."""
    selected = {key: str(header[key]).strip() for key in SELECTION_KEYWORDS if key in header}
    selected.setdefault("SUBARRAY", "FULL")
    return selected


def geometry(header: fits.Header, image_shape: tuple[int, int], source: str = "") -> Geometry:
    """Return where the science image plane lies on the detector.

    A missing SUBARRAY (or SUBSTRT keywords) with the detector's full-frame shape means
    FULL at (1, 1). SUBSIZE1/2, when present, must equal the image plane's shape.
    """
    rows, columns = image_shape
    name = str(header.get("SUBARRAY", "")).strip().upper()
    if "SUBSTRT1" not in header or "SUBSTRT2" not in header:
        full = _full_frame(header)
        if name in ("", "FULL") and (full is None or full == (rows, columns)):
            return Geometry("FULL", (0, 0), (rows, columns))
        raise RampFormatError(f"{source}: SUBARRAY {name or 'missing'} with a {rows} x "
                              f"{columns} image plane needs SUBSTRT1/SUBSTRT2 to be placed")
    size = (int(header.get("SUBSIZE2", rows)), int(header.get("SUBSIZE1", columns)))
    if size != (rows, columns):
        raise RampFormatError(f"{source}: SUBSIZE2 x SUBSIZE1 = {size[0]} x {size[1]} but the "
                              f"image plane is {rows} x {columns}")
    origin = (int(header["SUBSTRT2"]) - 1, int(header["SUBSTRT1"]) - 1)
    return Geometry(name or "FULL", origin, (rows, columns))


def read_pixeldq(layout: RampLayout) -> np.ndarray | None:
    """Return the existing PIXELDQ as a native uint32 array, or None."""
    extension = layout.extension(PIXELDQ)
    if extension is None:
        return None
    rows, columns = layout.image_shape
    pixeldq = np.fromfile(layout.path, dtype=">u4", count=rows * columns,
                          offset=extension.data_offset).astype(np.uint32).reshape(rows, columns)
    pixeldq ^= np.uint32(0x80000000)  # undo BZERO = 2**31, in place
    return pixeldq


def status_header(header: fits.Header, status: str, reference: str, context: str,
                  version: str) -> fits.Header:
    """Return a copy of a primary header recording the step's status and provenance."""
    updated = header.copy()
    updated[STATUS_KEYWORD] = (status, "DQ initialization")
    updated[REFERENCE_KEYWORD] = (reference, "DQ reference file used")
    updated[CONTEXT_KEYWORD] = (context, "CRDS context used")
    updated[VERSION_KEYWORD] = (version, "calibration software version")
    for keyword in ("CHECKSUM", "DATASUM"):  # the header changed; stale sums would lie
        updated.remove(keyword, ignore_missing=True)
    return updated


GroupPlanes = Callable[[int, int], np.ndarray]


def write_ramp(layout: RampLayout, output: str | os.PathLike, primary: fits.Header,
               pixeldq: np.ndarray | None, groupdq_plane: GroupPlanes | None,
               overwrite: bool = False) -> Path:
    """Write a new ramp: input HDUs copied byte for byte, DQ arrays from the step.

    Parameters
    ----------
    layout : RampLayout
        The input.
    output : path-like
        Written via a temporary file and a rename; never over an existing file unless
        ``overwrite``.
    primary : astropy.io.fits.Header
        The new primary header.
    pixeldq : numpy.ndarray, uint32 (rows, columns), or None
        None copies every HDU as it is (a SKIPPED run changes only the primary header).
    groupdq_plane : callable or None
        ``groupdq_plane(integration, group)`` returns that uint8 (rows, columns) plane.
    """
    order = [e.name for e in layout.extensions]
    if pixeldq is not None:  # JWST order: SCI, PIXELDQ, GROUPDQ, then the rest as they were
        order = [name for name in order if name not in (PIXELDQ, GROUPDQ)]
        after_sci = order.index(SCI) + 1
        order[after_sci:after_sci] = [PIXELDQ, GROUPDQ]
    with atomic_output(output, overwrite=overwrite) as temporary:
        with open(layout.path, "rb") as source, open(temporary, "wb") as sink:
            for name in order:
                extension = layout.extension(name)
                if name == "PRIMARY":
                    sink.write(primary.tostring().encode("ascii"))
                    _copy_range(source, sink, extension.data_offset, extension.data_span)
                elif name == PIXELDQ and pixeldq is not None:
                    _write_pixeldq(sink, pixeldq)
                elif name == GROUPDQ and pixeldq is not None:
                    _write_groupdq(sink, layout.sci_shape, groupdq_plane)
                else:
                    _copy_range(source, sink, extension.header_offset,
                                extension.data_offset - extension.header_offset
                                + extension.data_span)
    return Path(output)


def update_in_place(layout: RampLayout, primary: fits.Header, pixeldq: np.ndarray,
                    groupdq_plane: GroupPlanes) -> bool:
    """Overwrite only the DQ arrays and the primary header of a ramp that has both.

    Returns False (and writes nothing) when that is impossible: a DQ array is missing or
    the new primary header needs more 2880-byte blocks than the old one.
    """
    pixel_extension, group_extension = layout.extension(PIXELDQ), layout.extension(GROUPDQ)
    primary_extension = layout.extensions[0]
    header_bytes = primary.tostring().encode("ascii")
    if pixel_extension is None or group_extension is None or primary_extension.data_span or \
            len(header_bytes) != primary_extension.data_offset:
        return False
    plane_bytes = layout.image_shape[0] * layout.image_shape[1]
    with open(layout.path, "r+b") as handle:
        handle.seek(pixel_extension.data_offset)
        for chunk in _pixeldq_chunks(pixeldq):
            handle.write(chunk)
        nints, ngroups = layout.sci_shape[:2]
        for integration in range(nints):
            for group in range(ngroups):
                plane = groupdq_plane(integration, group)
                handle.seek(group_extension.data_offset
                            + (integration * ngroups + group) * plane_bytes)
                handle.write(memoryview(np.ascontiguousarray(plane, dtype=np.uint8)))
        handle.seek(0)
        handle.write(header_bytes)  # last: a crash before this leaves the old status
    return True


def existing_groupdq_planes(layout: RampLayout) -> GroupPlanes | None:
    """Return a reader of the existing GROUPDQ, one (rows, columns) plane per call, or None.

    Plain positioned reads rather than a memory map, so pages read once do not stay
    resident while the rest of the cube streams through.
    """
    extension = layout.extension(GROUPDQ)
    if extension is None:
        return None
    rows, columns = layout.image_shape
    ngroups = layout.sci_shape[1]

    def plane(integration: int, group: int) -> np.ndarray:
        offset = extension.data_offset + (integration * ngroups + group) * rows * columns
        return np.fromfile(layout.path, dtype=np.uint8, count=rows * columns,
                           offset=offset).reshape(rows, columns)

    return plane


# -- in memory -----------------------------------------------------------------------------
@dataclass
class Ramp:
    """A ramp held in memory (small data, tests, pipelines that already loaded one)."""

    header: fits.Header
    sci: np.ndarray
    pixeldq: np.ndarray | None = None
    groupdq: np.ndarray | None = None
    err: np.ndarray | None = None

    @classmethod
    def read(cls, path: str | os.PathLike) -> Ramp:
        """Load a whole ramp file into memory."""
        read_layout(path)  # shape and dtype checks with clear errors
        with fits.open(path, memmap=False) as hdulist:
            def data(name):
                return np.array(hdulist[name].data) if name in hdulist else None
            return cls(hdulist[0].header.copy(), data(SCI), data(PIXELDQ), data(GROUPDQ),
                       data(ERR))

    def check(self, source: str = "ramp") -> None:
        """Raise RampFormatError unless the arrays fit the JWST ramp layout."""
        check_dq_arrays(
            None if self.sci is None else self.sci.shape,
            None if self.pixeldq is None else (self.pixeldq.shape, self.pixeldq.dtype),
            None if self.groupdq is None else (self.groupdq.shape, self.groupdq.dtype), source)

    def to_hdulist(self) -> fits.HDUList:
        hdus = [fits.PrimaryHDU(header=self.header), fits.ImageHDU(self.sci, name=SCI)]
        for name, array in ((PIXELDQ, self.pixeldq), (GROUPDQ, self.groupdq), (ERR, self.err)):
            if array is not None:
                hdus.append(fits.ImageHDU(array, name=name))
        return fits.HDUList(hdus)

    def write(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the ramp atomically (temporary file + rename)."""
        with atomic_output(path, overwrite=overwrite) as temporary:
            self.to_hdulist().writeto(temporary)
        return Path(path)


# -- bytes ---------------------------------------------------------------------------------
def _pixeldq_chunks(pixeldq: np.ndarray, rows_per_chunk: int = 256):
    """Yield PIXELDQ as FITS bytes a block of rows at a time (no full-size temporaries).

    FITS stores uint32 as int32 with BZERO = 2**31: flipping the top bit subtracts 2**31.
    """
    for start in range(0, pixeldq.shape[0], rows_per_chunk):
        block = np.asarray(pixeldq[start:start + rows_per_chunk], dtype=np.uint32)
        yield (block ^ np.uint32(0x80000000)).astype(">u4").tobytes()


def _write_pixeldq(sink, pixeldq: np.ndarray) -> None:
    rows, columns = pixeldq.shape
    header = fits.Header([("XTENSION", "IMAGE"), ("BITPIX", 32), ("NAXIS", 2),
                          ("NAXIS1", columns), ("NAXIS2", rows), ("PCOUNT", 0), ("GCOUNT", 1),
                          ("BSCALE", 1), ("BZERO", 2147483648), ("EXTNAME", PIXELDQ)])
    sink.write(header.tostring().encode("ascii"))
    for chunk in _pixeldq_chunks(pixeldq):
        sink.write(chunk)
    _pad(sink, 4 * rows * columns)


def _write_groupdq(sink, sci_shape, groupdq_plane: GroupPlanes) -> None:
    nints, ngroups, rows, columns = sci_shape
    header = fits.Header([("XTENSION", "IMAGE"), ("BITPIX", 8), ("NAXIS", 4),
                          ("NAXIS1", columns), ("NAXIS2", rows), ("NAXIS3", ngroups),
                          ("NAXIS4", nints), ("PCOUNT", 0), ("GCOUNT", 1),
                          ("EXTNAME", GROUPDQ)])
    sink.write(header.tostring().encode("ascii"))
    for integration in range(nints):
        for group in range(ngroups):
            sink.write(memoryview(np.ascontiguousarray(groupdq_plane(integration, group),
                                                       dtype=np.uint8)))
    _pad(sink, nints * ngroups * rows * columns)


def _pad(sink, length: int) -> None:
    if length % _BLOCK:
        sink.write(b"\0" * (_BLOCK - length % _BLOCK))


def _copy_range(source, sink, offset: int, length: int) -> None:
    """Copy ``length`` bytes at ``offset`` of ``source`` to the end of ``sink``.

    The kernel copies (``os.copy_file_range``) when it can: no bytes pass through Python.
    """
    sink.flush()
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < length:
                done = os.copy_file_range(source.fileno(), sink.fileno(), length - copied,
                                          offset + copied)
                if done == 0:
                    break
                copied += done
        except OSError:  # another file system or kernel: fall back to plain reads
            pass
        sink.seek(0, os.SEEK_END)
    source.seek(offset + copied)
    remaining = length - copied
    while remaining:
        chunk = source.read(min(remaining, 16 << 20))
        if not chunk:
            raise RampFormatError(f"{source.name}: truncated (expected {length} bytes at "
                                  f"offset {offset})")
        sink.write(chunk)
        remaining -= len(chunk)


def _dtype_of(header: fits.Header) -> np.dtype:
    bitpix = int(header["BITPIX"])
    bzero = header.get("BZERO", 0)
    if bitpix == 8:
        return np.dtype(np.uint8)
    if bitpix == 16 and bzero == 32768:
        return np.dtype(np.uint16)
    if bitpix == 32 and bzero == 2147483648:
        return np.dtype(np.uint32)
    return np.dtype({16: np.int16, 32: np.int32, 64: np.int64, -32: np.float32,
                     -64: np.float64}[bitpix])


def _shape_dtype(extension: Extension | None):
    return None if extension is None else (extension.shape, extension.dtype)


def _full_frame(header: fits.Header) -> tuple[int, int] | None:
    key = (str(header.get("INSTRUME", "")).upper(), str(header.get("DETECTOR", "")).upper())
    detector = all_detectors().get(key)
    return detector.shape if detector else None
