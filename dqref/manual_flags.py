"""Manual flag lists in the jwst_reffiles format.

One entry per line: ``x y FLAG``, 0-indexed columns (x) and rows (y). Each coordinate is
an integer, an inclusive range ``a:b``, an open range (``a:`` or ``:b``) or ``:`` for the
whole axis. FLAG is a name (``DEAD``, any case), names joined by ``|`` or ``,``, or an
integer. ``#`` starts a comment.

The files jwst_reffiles ships (``bad_pixel_mask/*_manual_flags.txt``), which it reads with
``astropy.io.ascii.read``, are read the same way: an optional, uncommented column-header row
(`` x       y       flag``) names the columns, which may then come in any order, with extra
columns (notes) ignored; values are separated by whitespace (tabs included), or by commas
when the header row is, and may be quoted (``"350:352"``). Two deliberate differences:
an unknown flag name is an error (jwst_reffiles prints it and skips the line, so a typo would
silently drop a flag), and so is a coordinate outside the array (numpy would clip it).

Example::

    # a comment
     x       y       flag
    120      455     DEAD
    0:3      :       REFERENCE_PIXEL
    2000:2010 17     HOT|DO_NOT_USE
"""

from __future__ import annotations

import csv
import os
import re
import shlex
from dataclasses import dataclass

import numpy as np

from dqref import flags
from dqref.errors import ManualFlagsError, UnknownFlagError
from dqref.fitsfile import regular_file

#: The columns jwst_reffiles' ``manual_flags`` reads by name.
COLUMNS = ("x", "y", "flag")
# A coordinate as jwst_reffiles' ``range_format`` reads it: an integer or [a]:[b].
_COORDINATE = re.compile(r"[+-]?\d*:[+-]?\d*|[+-]?\d+")


@dataclass(frozen=True)
class ManualFlag:
    """One line: a rectangle of pixels (Python slices) and the flag value to OR in."""

    columns: slice
    rows: slice
    value: int
    line: int


def parse_manual_flags(text: str, shape: tuple[int, int],
                       source: str = "<text>") -> list[ManualFlag]:
    """Parse a manual flag list for an array of ``shape`` (rows, columns).

    Parameters
    ----------
    text : str
        The list, in the format described in this module's docstring.
    shape : tuple of int
        (rows, columns) of the array the flags are for; every entry must lie inside it.
    source : str, optional
        The name given in error messages (a file name).

    Returns
    -------
    list of ManualFlag
        One per entry, in file order (an empty list for a file with only comments or a
        column-header row).

    Raises
    ------
    ManualFlagsError
        A line is malformed, names an unknown flag, or lies outside the array, or the
        column-header row lacks x, y or flag; the message gives ``source:line``.
    """
    entries = []
    rows, columns = shape
    header: _Header | None = None
    first = True
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        if first:
            first = False
            header = _header(line, where)
            if header is not None:
                continue
        if header is None:
            fields = line.split(None, 2)
            if len(fields) != 3:
                raise ManualFlagsError(f"{where}: expected 'x y FLAG', got {raw.strip()!r}")
            x_text, y_text, flag_text = fields
        else:
            x_text, y_text, flag_text = header.cells(line, where)
        try:
            value = flags.value(int(flag_text) if flag_text.isdigit() else flag_text)
        except UnknownFlagError as error:
            raise ManualFlagsError(f"{where}: {error}") from None
        entries.append(ManualFlag(_axis(x_text, columns, "x", where),
                                  _axis(y_text, rows, "y", where), value, number))
    return entries


def read_manual_flags(path: str | os.PathLike, shape: tuple[int, int]) -> list[ManualFlag]:
    """Read and parse a manual flag file (see `parse_manual_flags`).

    Raises
    ------
    ManualFlagsError
        The file is missing or not a regular file (a FIFO, a device), cannot be read, or
        `parse_manual_flags` refuses its text.
    """
    path = regular_file(path, ManualFlagsError)  # a FIFO or device would block the read
    try:
        text = path.read_text()
    except OSError as error:
        raise ManualFlagsError(f"{path}: cannot read manual flags ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ManualFlagsError(f"{path}: cannot read manual flags (not a text file)") from None
    return parse_manual_flags(text, shape, source=str(path))


def apply_manual_flags(dq: np.ndarray, entries: list[ManualFlag]) -> np.ndarray:
    """Return a copy of ``dq`` with every entry's flag ORed into its pixels."""
    flagged = np.array(dq, dtype=np.uint32, copy=True)
    for entry in entries:
        flagged[entry.rows, entry.columns] |= np.uint32(entry.value)
    return flagged


@dataclass(frozen=True)
class _Header:
    """The column-header row: column names (lower case) and the delimiter."""

    names: tuple[str, ...]
    comma: bool

    def cells(self, line: str, where: str) -> tuple[str, str, str]:
        """Return the x, y and flag cells of a data line."""
        fields = _split(line, self.comma, where)
        if len(fields) != len(self.names):
            raise ManualFlagsError(f"{where}: expected {len(self.names)} values "
                                   f"({', '.join(self.names)}), got {line!r}")
        by_name = dict(zip(self.names, fields, strict=True))
        return by_name["x"], by_name["y"], by_name["flag"]


def _header(line: str, where: str) -> _Header | None:
    """Return the header of a first line made of names only, or None for a data line."""
    comma = "," in line
    fields = _split(line, comma, where)
    if any(_COORDINATE.fullmatch(field) for field in fields):
        return None
    names = tuple(field.lower() for field in fields)
    if not set(COLUMNS) <= set(names) or len(set(names)) != len(names):
        raise ManualFlagsError(f"{where}: the header row names columns {list(fields)}; "
                               f"it needs x, y and flag, once each")
    return _Header(names, comma)


def _split(line: str, comma: bool, where: str) -> list[str]:
    # astropy's basic/csv readers: whitespace or commas, double quotes around a value
    if comma:
        return [field.strip() for field in next(csv.reader([line], skipinitialspace=True))]
    try:
        return shlex.split(line)
    except ValueError as error:
        raise ManualFlagsError(f"{where}: {error} in {line!r}") from None


def _axis(text: str, length: int, name: str, where: str) -> slice:
    try:
        if text == ":":
            return slice(0, length)
        if ":" in text:
            first, last = text.split(":", 1)
            start = int(first) if first else 0
            stop = int(last) + 1 if last else length
        else:
            start = int(text)
            stop = start + 1
    except ValueError:
        raise ManualFlagsError(f"{where}: {name} {text!r} is not an integer, a:b range or ':'") \
            from None
    if start < 0 or stop > length or start >= stop:
        raise ManualFlagsError(f"{where}: {name} {text!r} is outside 0..{length - 1}")
    return slice(start, stop)
