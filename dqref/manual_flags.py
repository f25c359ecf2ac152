"""Manual flag lists in the jwst_reffiles format.

One entry per line: ``x y FLAG``, 0-indexed columns (x) and rows (y). Each coordinate is
an integer, an inclusive range ``a:b``, an open range (``a:`` or ``:b``) or ``:`` for the
whole axis. FLAG is a name (``DEAD``), names joined by ``|`` or ``,``, or an integer.
``#`` starts a comment.

Example::

    # x      y       flag
    120      455     DEAD
    0:3      :       REFERENCE_PIXEL
    2000:2010 17     HOT|DO_NOT_USE
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dqref import flags
from dqref.errors import ManualFlagsError, UnknownFlagError


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

    Raises
    ------
    ManualFlagsError
        A line is malformed, names an unknown flag, or lies outside the array; the
        message gives ``source:line``.
    """
    entries = []
    rows, columns = shape
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        fields = line.split(None, 2)
        if len(fields) != 3:
            raise ManualFlagsError(f"{where}: expected 'x y FLAG', got {raw.strip()!r}")
        x_text, y_text, flag_text = fields
        try:
            value = flags.value(int(flag_text) if flag_text.isdigit() else flag_text)
        except UnknownFlagError as error:
            raise ManualFlagsError(f"{where}: {error}") from None
        entries.append(ManualFlag(_axis(x_text, columns, "x", where),
                                  _axis(y_text, rows, "y", where), value, number))
    return entries


def read_manual_flags(path: str | os.PathLike, shape: tuple[int, int]) -> list[ManualFlag]:
    """Read and parse a manual flag file (see `parse_manual_flags`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ManualFlagsError(f"{path}: cannot read manual flags ({error.strerror})") from None
    return parse_manual_flags(text, shape, source=str(path))


def apply_manual_flags(dq: np.ndarray, entries: list[ManualFlag]) -> np.ndarray:
    """Return a copy of ``dq`` with every entry's flag ORed into its pixels."""
    flagged = np.array(dq, dtype=np.uint32, copy=True)
    for entry in entries:
        flagged[entry.rows, entry.columns] |= np.uint32(entry.value)
    return flagged


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
