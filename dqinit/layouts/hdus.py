"""A FITS file's HDU table, read without its data, and the bytes of new HDUs.

Both ramp layouts stream: they never load a science cube, they copy the input's bytes
HDU by HDU (by position, so extensions that share a name are all kept) and write their
DQ arrays in blocks. This module is the one reader that checks, before any data is read,
what each HDU is (image, tile-compressed image, table), its pixel type with its scaling,
and that the data it declares lies inside the file.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from dqinit.errors import RampFormatError
from dqref import fitsfile

BLOCK = 2880
IMAGE, COMPRESSED, TABLE = "image", "compressed", "table"
_UNSIGNED_BZERO = {8: None, 16: 32768, 32: 2147483648, 64: 9223372036854775808}
_SIGNED = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}
_FLOATS = {-32: np.float32, -64: np.float64}


@dataclass(frozen=True)
class HDU:
    """One HDU of a file: where its header and data lie, and what its data are.

    ``shape`` is in numpy order; ``dtype`` is the logical pixel type after the FITS
    unsigned-integer convention (BZERO = 2**(BITPIX-1)), or None when the HDU is not a
    plain image or its scaling turns integers into something else.
    """

    index: int
    name: str
    header: fits.Header
    header_offset: int
    data_offset: int
    data_span: int
    kind: str
    shape: tuple[int, ...] = ()
    dtype: np.dtype | None = None

    @property
    def span(self) -> int:
        """Bytes from the start of the header to the end of the padded data."""
        return self.data_offset - self.header_offset + self.data_span

    def describe(self) -> str:
        """How an error message names this HDU (``HDU 3 (DQ)``)."""
        return f"HDU {self.index} ({self.name})"


def regular_file(path: str | os.PathLike) -> Path:
    """Return ``path`` if it is an existing regular file (after links), else raise.

    A FIFO or a device would block or never end, so they are refused up front (the one
    rule of `dqref.fitsfile.regular_file`, raising RampFormatError here).
    """
    return fitsfile.regular_file(path, RampFormatError)


def scan(path: str | os.PathLike) -> list[HDU]:
    """Read every header of a FITS file and check the data each declares.

    Raises
    ------
    RampFormatError
        Not a regular file, not FITS, or an HDU whose data run past the end of the file.
    """
    path = regular_file(path)
    # every header checked by the one reader before astropy sees the file: printable cards,
    # SIMPLE/XTENSION, BITPIX, NAXIS <= 999, each HDU's declared data inside the file
    fitsfile.scan(path, RampFormatError)
    size = path.stat().st_size
    hdus = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)  # truncation: checked below
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdulist:
                for index, hdu in enumerate(hdulist):
                    info = hdulist.fileinfo(index)
                    hdus.append(_describe(index, hdu, info))
    except RampFormatError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise RampFormatError(f"{path}: cannot be read as FITS ({_one_line(error)})") from None
    for hdu in hdus:
        if hdu.data_offset + _unpadded(hdu) > size:
            raise RampFormatError(
                f"{path}: {hdu.describe()} declares {_unpadded(hdu)} bytes of data at offset "
                f"{hdu.data_offset}, past the end of the {size}-byte file (truncated?)")
    return hdus


def image_header(name: str, shape: tuple[int, ...], dtype) -> fits.Header:
    """Return the header of a new image extension (numpy ``shape``, unsigned via BZERO)."""
    dtype = np.dtype(dtype)
    bitpix = 8 * dtype.itemsize if dtype.kind in "ui" else -8 * dtype.itemsize
    cards = [("XTENSION", "IMAGE"), ("BITPIX", bitpix), ("NAXIS", len(shape))]
    cards += [(f"NAXIS{axis}", length) for axis, length in enumerate(reversed(shape), 1)]
    cards += [("PCOUNT", 0), ("GCOUNT", 1)]
    if dtype.kind == "u" and dtype.itemsize > 1:
        cards += [("BSCALE", 1), ("BZERO", _UNSIGNED_BZERO[bitpix])]
    cards.append(("EXTNAME", name))
    return fits.Header(cards)


def header_bytes(header: fits.Header) -> bytes:
    """Return a header as the 2880-byte blocks written to a file."""
    return header.tostring().encode("ascii")


def padding(length: int) -> bytes:
    """Return the zeros that pad ``length`` data bytes to a whole FITS block."""
    return b"\0" * (-length % BLOCK)


def to_fits_bytes(block: np.ndarray) -> memoryview:
    """Return an integer array as FITS data bytes (big-endian; unsigned via BZERO).

    One pass into a new big-endian array, handed out as a flat byte view (no further copy).
    """
    dtype = block.dtype
    stored = np.empty(block.shape, dtype.newbyteorder(">"))
    if dtype.kind == "u" and dtype.itemsize > 1:
        # subtracting BZERO = flipping the top bit
        np.bitwise_xor(block, np.array(1 << (8 * dtype.itemsize - 1), dtype=dtype), out=stored)
    else:
        stored[...] = block
    return memoryview(stored).cast("B")


def read_exactly(handle: int, length: int, offset: int, name: str | os.PathLike) -> bytearray:
    """Read ``length`` bytes at ``offset`` of an open file descriptor into a new buffer.

    Raises
    ------
    RampFormatError
        The file ends first.
    """
    buffer = bytearray(length)
    done = 0
    while done < length:
        count = os.preadv(handle, [memoryview(buffer)[done:]], offset + done)
        if count == 0:
            raise RampFormatError(f"{name}: truncated (expected {length} bytes at offset "
                                  f"{offset})")
        done += count
    return buffer


def read_block(path: Path, hdu: HDU, first: int, count: int) -> np.ndarray:
    """Read ``count`` leading-axis slices of an integer image from ``first`` (native dtype).

    Plain positioned reads rather than a memory map, so pages read once do not stay
    resident while the rest of a cube streams through.
    """
    per_slice = int(np.prod(hdu.shape[1:], dtype=np.int64))
    itemsize = hdu.dtype.itemsize
    raw_dtype = np.dtype(f">i{itemsize}") if hdu.dtype.kind == "u" and itemsize > 1 \
        else hdu.dtype.newbyteorder(">")
    values = np.fromfile(path, dtype=raw_dtype, count=count * per_slice,
                         offset=hdu.data_offset + first * per_slice * itemsize)
    if values.size != count * per_slice:
        raise RampFormatError(f"{path}: {hdu.describe()} is truncated")
    values = values.astype(raw_dtype.newbyteorder("="))
    if hdu.dtype.kind == "u" and itemsize > 1:
        values = values.view(hdu.dtype) ^ np.array(1 << (8 * itemsize - 1), dtype=hdu.dtype)
    return values.reshape((count, *hdu.shape[1:]))


def copy_range(source, sink, offset: int, length: int) -> None:
    """Write ``length`` bytes at ``offset`` of ``source`` at ``sink``'s position.

    The kernel copies (``os.copy_file_range``) when it can: no bytes pass through Python.
    The sink's position is passed explicitly, so it may lie past the end of the file (after
    a hole the writer left).
    """
    sink.flush()
    position = sink.tell()
    copied = 0
    if hasattr(os, "copy_file_range"):
        try:
            while copied < length:
                done = os.copy_file_range(source.fileno(), sink.fileno(), length - copied,
                                          offset + copied, position + copied)
                if done == 0:
                    break
                copied += done
        except OSError:  # another file system or kernel: fall back to plain reads
            pass
        sink.seek(position + copied)
    source.seek(offset + copied)
    remaining = length - copied
    while remaining:
        chunk = source.read(min(remaining, 16 << 20))
        if not chunk:
            raise RampFormatError(f"{source.name}: truncated (expected {length} bytes at "
                                  f"offset {offset})")
        sink.write(chunk)
        remaining -= len(chunk)


def copy_hdu(source, sink, hdu: HDU) -> None:
    """Append an HDU of ``source`` to ``sink`` byte for byte."""
    copy_range(source, sink, hdu.header_offset, hdu.span)


# -- reading headers ----------------------------------------------------------------------
def _describe(index: int, hdu, info: dict) -> HDU:
    name = "PRIMARY" if index == 0 else str(hdu.name).strip().upper()
    header = hdu.header.copy()
    if isinstance(hdu, fits.CompImageHDU):
        return HDU(index, name, header, info["hdrLoc"], info["datLoc"], info["datSpan"],
                   COMPRESSED)
    if not hdu.is_image:
        return HDU(index, name, header, info["hdrLoc"], info["datLoc"], info["datSpan"],
                   TABLE)
    naxis = _integer_card(header, "NAXIS")
    shape = tuple(_integer_card(header, f"NAXIS{axis}") for axis in range(naxis, 0, -1))
    return HDU(index, name, header, info["hdrLoc"], info["datLoc"], info["datSpan"], IMAGE,
               shape, image_dtype(header))


def image_dtype(header: fits.Header) -> np.dtype | None:
    """Return the logical pixel type of an image header, or None when it is scaled.

    Integers are integers only with BSCALE = 1 and BZERO 0 or the unsigned offset
    2**(BITPIX-1) (uint8 is BITPIX 8 without BZERO; BZERO = -128 makes int8).
    """
    bitpix = _integer_card(header, "BITPIX")
    bscale, bzero = header.get("BSCALE", 1), header.get("BZERO", 0)
    if bitpix in _FLOATS:
        return np.dtype(_FLOATS[bitpix]) if (bscale, bzero) == (1, 0) else None
    if bitpix not in _SIGNED or bscale != 1:
        return None
    if bitpix == 8:
        return np.dtype(np.uint8) if bzero == 0 else np.dtype(np.int8) if bzero == -128 \
            else None
    if bzero == 0:
        return np.dtype(_SIGNED[bitpix])
    if bzero == _UNSIGNED_BZERO[bitpix]:
        return np.dtype(f"u{bitpix // 8}")
    return None


def _integer_card(header: fits.Header, keyword: str) -> int:
    value = header.get(keyword)
    if isinstance(value, bool) or not isinstance(value, int) or value < -64:
        raise RampFormatError(f"{keyword} = {value!r} is not a valid integer")
    return value


def _unpadded(hdu: HDU) -> int:
    if hdu.kind != IMAGE or not hdu.shape:
        return 0
    bitpix = abs(_integer_card(hdu.header, "BITPIX"))
    return int(np.prod(hdu.shape, dtype=np.int64)) * bitpix // 8


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
