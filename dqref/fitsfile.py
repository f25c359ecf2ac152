"""What a FITS file holds, learnt from its header blocks before any data is read.

The one reader of FITS inputs: it refuses what is not a regular file (a FIFO or a device
would block or never end), reads every header block itself and checks it before astropy
sees the file, and says for each HDU what it is (image, tile-compressed image, table), how
many bytes of data it declares and whether they lie inside the file. Only then are data
read: an integer image as its raw integers (`read_integer_image`), never through floats.

Why a block reader of our own beside astropy: astropy replaces non-ASCII header bytes by
``?`` with only a warning (a corrupted DESCRIP then validates clean), fails with a bare
``KeyError: 13`` on BITPIX = 13, and allocates whatever NAXISn declare when data are
read (a 9 kB header declaring 100000 x 100000 pixels ends in MemoryError). The FITS block
structure is simple; the cards themselves are still parsed by astropy (`fits.Header`).

Every function takes the exception class to raise (``error``, default
`ReferenceFileError`), so the ramp side can share the checks with its own error type.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqref.errors import ReferenceFileError

BLOCK = 2880
CARD = 80
IMAGE, COMPRESSED, TABLE, OTHER = "image", "compressed image", "table", "unknown"
#: Far beyond any header we read (a JWST reference has a few hundred cards).
MAX_HEADER_BLOCKS = 200
MAX_HDUS = 1000
_PIXEL_TYPES = (8, 16, 32, 64, -32, -64)
_UNSIGNED_OFFSET = {16: 1 << 15, 32: 1 << 31, 64: 1 << 63}
_BYTE_NAMES = {0x00: "a NUL byte", 0x09: "a tab", 0x0A: "a newline", 0x0D: "a carriage return"}


@dataclass(frozen=True)
class HDUHeader:
    """One HDU as its header declares it: where it lies, what it is, how big its data are.

    ``shape`` is in numpy order (NAXISn reversed); ``data_bytes`` is the declared data
    length without the padding to a whole block.
    """

    index: int
    name: str
    kind: str
    header: fits.Header
    header_offset: int
    data_offset: int
    data_bytes: int
    shape: tuple[int, ...]

    @property
    def end(self) -> int:
        """Offset of the next HDU (the data padded to whole blocks)."""
        return self.data_offset + -(-self.data_bytes // BLOCK) * BLOCK

    def describe(self) -> str:
        """How messages name this HDU: ``HDU 1 (DQ)``."""
        return f"HDU {self.index} ({self.name})" if self.name else f"HDU {self.index}"


#: What a path that is not a regular file is, for the message.
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def regular_file(path: str | os.PathLike, error: type[Exception] = ReferenceFileError) -> Path:
    """Return ``path`` if it names an existing regular file (links followed), else raise.

    Nothing is opened: a FIFO would block the reader and a device would never end.

    Raises
    ------
    error
        ``path: no such file``, ``path: not a regular file (a FIFO)`` or ``path: cannot be read
        (reason)`` (a link loop, a directory not searchable, ...).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as failure:
        raise error(f"{path}: cannot be read ({failure.strerror or failure})") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise error(f"{path}: not a regular file ({kind})")
    return path


def scan(path: str | os.PathLike, error: type[Exception] = ReferenceFileError
         ) -> list[HDUHeader]:
    """Read and check every header of a FITS file; read none of its data.

    Each card must be printable ASCII and parse; BITPIX must be a FITS pixel type and the
    NAXISn, PCOUNT and GCOUNT whole numbers; the data each header declares must lie inside
    the file. Bytes after the last HDU are allowed only as zero padding.

    Raises
    ------
    error
        One line naming the file, the HDU and the card or size that is wrong.
    """
    path = regular_file(path, error)
    hdus: list[HDUHeader] = []
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            why_not = _why_not_fits(stream.read(BLOCK))
            if why_not:
                raise error(f"{path}: cannot be read as FITS ({why_not})")
            offset = 0
            while offset < size:
                if hdus and not _starts_an_extension(stream, offset):
                    _check_padding(stream, path, offset, size, error)
                    break
                if len(hdus) == MAX_HDUS:
                    raise error(f"{path}: more than {MAX_HDUS} HDUs")
                hdu = _read_header(stream, path, len(hdus), offset, error)
                check_data_inside(path, hdu, size, error)
                hdus.append(hdu)
                offset = hdu.end
    except OSError as failure:
        raise error(f"{path}: cannot be read ({failure.strerror or failure})") from None
    return hdus


def check_data_inside(path: str | os.PathLike, hdu: HDUHeader, file_size: int,
                      error: type[Exception] = ReferenceFileError) -> None:
    """Raise unless the data ``hdu`` declares end within ``file_size`` bytes.

    The check every reader makes before it allocates what a header declares.
    """
    if hdu.data_offset + hdu.data_bytes > file_size:
        raise error(f"{path}: {hdu.describe()} declares {hdu.data_bytes} bytes of data at "
                    f"offset {hdu.data_offset}, past the end of the {file_size}-byte file "
                    "(truncated?)")


def only(hdus: list[HDUHeader], name: str, path: str | os.PathLike,
         error: type[Exception] = ReferenceFileError) -> HDUHeader | None:
    """Return the one extension called ``name`` (None if there is none); refuse several."""
    found = [hdu for hdu in hdus[1:] if hdu.name == name.upper()]
    if len(found) > 1:
        raise error(f"{path}: {len(found)} extensions are named {name}; which one is meant "
                    "is not guessed")
    return found[0] if found else None


def integer_dtype(hdu: HDUHeader, path: str | os.PathLike,
                  error: type[Exception] = ReferenceFileError, requirement: str = ""
                  ) -> np.dtype:
    """Return the exact integer type of an image's pixels, or raise if they are not integers.

    Integers are integers only with BSCALE = 1 and BZERO 0 or the unsigned offset
    2**(BITPIX-1) (BITPIX 8 is unsigned without BZERO; BZERO = -128 makes it signed).
    ``requirement`` ends the message (why the caller needs integers).
    """
    header = hdu.header
    bitpix = header["BITPIX"]
    bscale, bzero = header.get("BSCALE", 1), header.get("BZERO", 0)
    if bitpix < 0:
        reason = f"BITPIX = {bitpix} is floating point"
    else:
        if _number(bscale) and bscale == 1 and _number(bzero):
            if bitpix == 8 and bzero in (0, -128):
                return np.dtype(np.uint8 if bzero == 0 else np.int8)
            if bitpix > 8 and bzero == 0:
                return np.dtype(f"i{bitpix // 8}")
            if bitpix > 8 and bzero == _UNSIGNED_OFFSET[bitpix]:
                return np.dtype(f"u{bitpix // 8}")
        reason = f"scaled (BSCALE = {bscale!r}, BZERO = {bzero!r})"
    raise error(f"{path}: {hdu.describe()}: {reason}" + (f"; {requirement}" if requirement
                                                         else ""))


def read_integer_image(path: str | os.PathLike, hdu: HDUHeader, dtype: np.dtype,
                       error: type[Exception] = ReferenceFileError) -> np.ndarray:
    """Read an integer image's pixels as ``dtype`` (from `integer_dtype`), in native order.

    One array of the image's size is allocated and filled straight from the file; the
    offset of the unsigned convention (BZERO = 2**(BITPIX-1), or -128 for int8) is undone
    by flipping the top bit in place, so no float and no second copy is ever made. The
    result is bit-identical to astropy's reading.
    """
    count = math.prod(hdu.shape)
    values = np.empty(count, dtype=dtype.newbyteorder(">"))
    buffer = values.view(np.uint8)
    with open(path, "rb") as stream:
        stream.seek(hdu.data_offset)
        filled = 0
        while filled < buffer.size:
            got = stream.readinto(buffer[filled:])
            if not got:
                raise error(f"{path}: {hdu.describe()} is truncated ({filled} of "
                            f"{buffer.size} bytes)")
            filled += got
    offset_convention = (dtype.kind == "u" and dtype.itemsize > 1) or dtype == np.int8
    if offset_convention:
        unsigned = values.view(np.dtype(f"u{dtype.itemsize}").newbyteorder(">"))
        unsigned ^= np.array(1 << (8 * dtype.itemsize - 1), dtype=unsigned.dtype)
    if values.dtype.byteorder == ">" and np.little_endian:
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return values.reshape(hdu.shape)


# -- header blocks -------------------------------------------------------------------------
def _why_not_fits(first_block: bytes) -> str | None:
    if not first_block:
        return "the file is empty"
    if not first_block.startswith(b"SIMPLE  ="):
        return "it does not start with a SIMPLE card"
    if len(first_block) < BLOCK:
        return f"{len(first_block)} bytes, less than one {BLOCK}-byte FITS block"
    return None


def _starts_an_extension(stream, offset: int) -> bool:
    stream.seek(offset)
    return stream.read(8) == b"XTENSION"


def _check_padding(stream, path: Path, offset: int, size: int, error) -> None:
    stream.seek(offset)
    while chunk := stream.read(1 << 20):
        if chunk.strip(b"\0"):
            raise error(f"{path}: {size - offset} bytes after the last HDU (offset {offset}) "
                        "are neither an extension nor padding")


def _read_header(stream, path: Path, index: int, offset: int, error) -> HDUHeader:
    stream.seek(offset)
    cards: list[bytes] = []
    for blocks in range(1, MAX_HEADER_BLOCKS + 1):
        block = stream.read(BLOCK)
        if len(block) < BLOCK:
            raise error(f"{path}: HDU {index}: the header is truncated (no END card before "
                        "the end of the file)")
        for start in range(0, BLOCK, CARD):
            card = block[start:start + CARD]
            if card[:8] == b"END     ":
                where = _raw_name(cards, index)
                for raw in cards:
                    _check_bytes(raw, path, where, error)
                header = _parse(cards, path, where, error)
                return _describe(header, path, index, offset, offset + BLOCK * blocks, error)
            cards.append(card)
    raise error(f"{path}: HDU {index}: no END card in the first {MAX_HEADER_BLOCKS} header "
                "blocks")


def _raw_name(cards: list[bytes], index: int) -> str:
    """``HDU 1 (DQ)``, from the raw EXTNAME card, for messages about bytes astropy refuses."""
    if index == 0:
        return "HDU 0 (PRIMARY)"
    card = next((c for c in cards if c.startswith(b"EXTNAME = '")), None)
    if card is None:
        return f"HDU {index}"
    name = _shown(card[11:].split(b"'")[0]).strip().upper()
    return f"HDU {index} ({name})" if name else f"HDU {index}"


def _check_bytes(card: bytes, path: Path, where: str, error) -> None:
    bad = next((column for column, byte in enumerate(card) if not 0x20 <= byte <= 0x7E), None)
    if bad is None:
        return
    keyword = _shown(card[:8]).strip() or "(blank)"
    byte = card[bad]
    what = _BYTE_NAMES.get(byte, "a non-ASCII byte" if byte > 0x7E else "a control byte")
    raise error(f"{path}: {where}: card {keyword} holds {what} (0x{byte:02x}) at column "
                f"{bad + 1}; FITS headers are printable ASCII")


def _shown(raw: bytes) -> str:
    """Header bytes as message text: unprintable bytes as ``\\x..``, so a message stays
    one line whatever the bytes."""
    return "".join(chr(byte) if 0x20 <= byte <= 0x7E else f"\\x{byte:02x}" for byte in raw)


def _parse(cards: list[bytes], path: Path, where: str, error) -> fits.Header:
    text = b"".join(cards).decode("ascii")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns about what it can fix; we check below
        try:
            header = fits.Header.fromstring(text)
        except (ValueError, fits.VerifyError) as failure:
            raise error(f"{path}: {where}: the header cannot be parsed ({_first_line(failure)})"
                        ) from None
        for card in header.cards:
            try:
                card.value  # noqa: B018 - parsing the value is the check
            except (ValueError, fits.VerifyError):
                raise error(f"{path}: {where}: card {card.keyword or '(blank)'} cannot be "
                            f"parsed: {card.image.rstrip()!r}") from None
    return header


def _describe(header: fits.Header, path: Path, index: int, header_offset: int,
              data_offset: int, error) -> HDUHeader:
    first = "SIMPLE" if index == 0 else "XTENSION"
    keyword = next(iter(header.keys()), "")
    if keyword != first:
        raise error(f"{path}: HDU {index}: the header starts with {keyword or 'nothing'!r}, "
                    f"not {first}" + ("; not a FITS file" if index == 0 else ""))
    if index == 0 and header["SIMPLE"] is not True:
        raise error(f"{path}: SIMPLE = {header['SIMPLE']!r}: the file says it does not "
                    "conform to FITS")
    extension = str(header[first]).strip().upper() if index else "IMAGE"
    name = "PRIMARY" if index == 0 else \
        header["EXTNAME"].strip().upper() if isinstance(header.get("EXTNAME"), str) else ""
    where = f"HDU {index} ({name})" if name else f"HDU {index}"
    bitpix = header.get("BITPIX")
    if not whole(bitpix) or bitpix not in _PIXEL_TYPES:
        raise error(f"{path}: {where}: BITPIX = {bitpix!r} is not a FITS pixel type "
                    "(8, 16, 32, 64, -32 or -64)")
    naxis = _count(header, "NAXIS", path, where, error, at_most=999)
    axes = [_count(header, f"NAXIS{axis}", path, where, error) for axis in range(1, naxis + 1)]
    pcount = _count(header, "PCOUNT", path, where, error) if index else 0
    gcount = _count(header, "GCOUNT", path, where, error, at_least=1) if index else 1
    if index == 0 and header.get("GROUPS") is True and axes and axes[0] == 0:
        axes = axes[1:]  # random groups: NAXIS1 = 0 is not a data axis
    data_bytes = abs(bitpix) // 8 * gcount * (pcount + math.prod(axes)) if naxis else 0
    if extension == "IMAGE":
        kind = IMAGE
    elif extension == "BINTABLE":
        kind = COMPRESSED if header.get("ZIMAGE") is True else TABLE
    elif extension == "TABLE":
        kind = TABLE
    else:
        kind = OTHER
    return HDUHeader(index, name, kind, header, header_offset, data_offset, data_bytes,
                     tuple(reversed(axes)))


def _count(header: fits.Header, keyword: str, path: Path, where: str, error,
           at_least: int = 0, at_most: int | None = None) -> int:
    value = header.get(keyword, 0 if keyword == "PCOUNT" else 1 if keyword == "GCOUNT"
                       else None)
    if not whole(value) or value < at_least or (at_most is not None and value > at_most):
        raise error(f"{path}: {where}: {keyword} = {value!r} is not a valid count")
    return int(value)


def whole(value) -> bool:
    """Whether a header value is an integer (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _first_line(failure: BaseException) -> str:
    lines = str(failure).strip().splitlines()
    return lines[0] if lines else type(failure).__name__
