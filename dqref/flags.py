"""The pixel flag table (JWST convention) and name <-> value helpers.

The table itself is data (``flags.toml`` beside this module); this module loads it once
and offers conversions. Flags are bits: combine them with ``|``, never ``+``.

Examples
--------
>>> from dqref import flags
>>> flags.value("DEAD|DO_NOT_USE")
1025
>>> flags.names(3072)
['DEAD', 'HOT']
"""

from __future__ import annotations

import functools
import operator
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

import numpy as np

from dqref.errors import DQDefError, UnknownFlagError

GOOD = 0
#: numpy dtype of the ``DQ_DEF`` table, as in JWST MASK references.
DQ_DEF_DTYPE = np.dtype([("BIT", ">i4"), ("VALUE", ">u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")])


@dataclass(frozen=True)
class Flag:
    """One pixel condition: its bit number, value (``2**bit``) and meaning."""

    bit: int
    name: str
    description: str
    group_only: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def value(self) -> int:
        return 1 << self.bit


def _load_table() -> tuple[Flag, ...]:
    text = resources.files("dqref").joinpath("flags.toml").read_text()
    entries = tomllib.loads(text)["flag"]
    table = tuple(
        Flag(e["bit"], e["name"], e["description"], e.get("group_only", False),
             tuple(e.get("aliases", ()))) for e in entries
    )
    if sorted(f.bit for f in table) != list(range(32)):
        raise RuntimeError("flags.toml must define each of the 32 bits exactly once")
    return table


#: Every flag, ordered by bit.
FLAGS: tuple[Flag, ...] = _load_table()
#: name -> value, like JWST's ``dqflags.pixel`` (includes GOOD = 0).
PIXEL: dict[str, int] = {"GOOD": GOOD, **{f.name: f.value for f in FLAGS}}
#: historical name -> value, accepted on input (``flags.toml`` ``aliases``).
ALIASES: dict[str, int] = {alias: f.value for f in FLAGS for alias in f.aliases}
_BY_NAME: dict[str, Flag] = {f.name: f for f in FLAGS} | {
    alias: f for f in FLAGS for alias in f.aliases}
#: OR of every flag that belongs to a group or integration, not to a static mask.
GROUP_ONLY: int = int(np.bitwise_or.reduce([f.value for f in FLAGS if f.group_only]))
_SEPARATORS = re.compile(r"[|,+\s]+")


def value(spec: int | str | Iterable[str]) -> int:
    """Return the integer value of a flag specification.

    Parameters
    ----------
    spec : int, str or iterable of str
        An integer in [0, 2**32), a name (``"DEAD"``), names joined by ``|`` or ``,``
        (``"DEAD|DO_NOT_USE"``), a decimal string (``"1024"``), or a list of names.

    Returns
    -------
    int
        The OR of the named flags.

    Raises
    ------
    UnknownFlagError
        A name is not in the table, or an integer is out of range.
    """
    if isinstance(spec, bool):
        raise UnknownFlagError(f"flag {spec!r}: expected a name or an integer, not a boolean")
    if isinstance(spec, int | np.integer):
        number = int(spec)
        if not 0 <= number < 2**32:
            raise UnknownFlagError(f"flag value {number} is outside [0, 2**32)")
        return number
    if isinstance(spec, str):
        parts = [p for p in _SEPARATORS.split(spec.strip()) if p]
        if not parts:
            raise UnknownFlagError("empty flag specification")
    else:
        parts = list(spec)
    total = 0
    for part in parts:
        if isinstance(part, str) and part.isdigit():
            total |= value(int(part))
            continue
        key = str(part).strip().upper()
        if key not in PIXEL and key not in ALIASES:
            raise UnknownFlagError(
                f"unknown flag {part!r}; known flags: {', '.join(PIXEL)}"
            )
        total |= PIXEL.get(key, ALIASES.get(key, 0))
    return total


def names(flag_value: int) -> list[str]:
    """Return the names of the bits set in ``flag_value`` (``['GOOD']`` for 0)."""
    flag_value = value(int(flag_value))
    if flag_value == GOOD:
        return ["GOOD"]
    return [f.name for f in FLAGS if flag_value & f.value]


def flag(name: str) -> Flag:
    """Return the `Flag` called ``name`` (case-insensitive)."""
    try:
        return _BY_NAME[name.upper()]
    except KeyError:
        raise UnknownFlagError(f"unknown flag {name!r}") from None


def dq_def_rows(flag_list: Iterable[Flag] = FLAGS) -> np.ndarray:
    """Return the ``DQ_DEF`` table (BIT, VALUE, NAME, DESCRIPTION) as a structured array."""
    rows = [(f.bit, f.value, f.name, f.description) for f in flag_list]
    return np.array(rows, dtype=DQ_DEF_DTYPE)


@dataclass(frozen=True)
class DQDefProblem:
    """One reason not to trust a ``DQ_DEF`` table: its row (1-indexed), NAME and what."""

    row: int
    name: str
    message: str

    @property
    def where(self) -> str:
        return f"DQ_DEF row {self.row} ({self.name})"


def dq_def_problems(dq_def: np.ndarray) -> list[DQDefProblem]:
    """Return every reason a reader cannot trust a ``DQ_DEF`` table (empty: trusted).

    A row is trusted when its BIT is in 0..31 and its VALUE is 2**BIT, no bit is defined
    twice (two names on one bit), and no flag is defined twice, under its name or an
    alias (one name on two bits). stdatamodels reads VALUE alone and lets every row
    through; a table that breaks these would move or merge flags silently.
    """
    problems = []
    seen_bits: dict[int, int] = {}
    seen_names: dict[str, int] = {}
    seen_flags: dict[int, tuple[int, str]] = {}
    for row_number, row in enumerate(dq_def, start=1):
        bit, value = int(row["BIT"]), int(row["VALUE"])
        name = decode_name(row["NAME"]).upper()
        standard = PIXEL.get(name, ALIASES.get(name))
        messages = []
        if not 0 <= bit < 32:
            messages.append(f"BIT {bit} is outside 0..31")
        elif value != 1 << bit:
            messages.append(f"VALUE {value} != 2**BIT = {1 << bit}")
        if bit in seen_bits:
            messages.append(f"BIT {bit} is also defined in row {seen_bits[bit]}")
        if name in seen_names:
            messages.append(f"NAME {name} is also defined in row {seen_names[name]}")
        elif standard in seen_flags:
            first_row, first_name = seen_flags[standard]
            messages.append(f"NAME {name} is the flag {first_name} of row {first_row}")
        problems += [DQDefProblem(row_number, name, message) for message in messages]
        seen_bits.setdefault(bit, row_number)
        seen_names.setdefault(name, row_number)
        if standard is not None:
            seen_flags.setdefault(standard, (row_number, name))
    return problems


def check_dq_def(dq_def: np.ndarray) -> None:
    """Raise `DQDefError` listing every problem of an untrusted ``DQ_DEF`` table.

    Raises
    ------
    DQDefError
        ``DQ_DEF cannot be trusted: DQ_DEF row 3 (HOT): BIT 10 is also defined in row 2;
        ...`` (every problem, one line).
    """
    problems = dq_def_problems(dq_def)
    if problems:
        raise DQDefError("DQ_DEF cannot be trusted: "
                         + "; ".join(f"{p.where}: {p.message}" for p in problems))


def dq_def_mapping(dq_def: np.ndarray) -> dict[str, int]:
    """Return name -> VALUE from a trusted ``DQ_DEF`` structured array (names upper-cased).

    Raises
    ------
    DQDefError
        The table cannot be trusted (see `dq_def_problems`): a dict would keep one of two
        rows that share a name and drop the other.
    """
    check_dq_def(dq_def)
    return {decode_name(row["NAME"]).upper(): int(row["VALUE"]) for row in dq_def}


def translation_table(dq_def: np.ndarray) -> dict[int, int]:
    """Map each bit value of a file's ``DQ_DEF`` to the standard value of the same name.

    Parameters
    ----------
    dq_def : numpy structured array
        A ``DQ_DEF`` table with BIT, VALUE and NAME columns.

    Returns
    -------
    dict
        ``{file_value: standard_value}`` for every row whose value differs from the
        standard one. Empty when the file follows the standard table.

    Raises
    ------
    DQDefError
        The table cannot be trusted (`dq_def_problems`): a VALUE that is not 2**BIT, a
        BIT outside 0..31, two names on one bit or one flag on two bits. Every route
        that applies a reference's flags (the DQ step, ``dqref diff``) comes here.
    UnknownFlagError
        A row names a flag that is not in the standard table (it would be lost).
    """
    table = {}
    for name, file_value in dq_def_mapping(dq_def).items():
        standard = PIXEL.get(name, ALIASES.get(name))
        if standard is None:
            raise UnknownFlagError(
                f"DQ_DEF defines unknown flag {name!r} (value {file_value}); "
                "it cannot be translated"
            )
        if file_value != standard:
            table[file_value] = standard
    return table


def known_translation_table(dq_def: np.ndarray | None) -> dict[int, int]:
    """`translation_table` of the rows whose NAME is a standard flag (or an alias).

    Rows naming a flag we do not know are left out, so their bits stay where the file
    puts them (``validate`` reports them with the ``dq-def-known-names`` rule). This is
    the view a user gets from ``histogram``, ``show`` and ``validate``: the file's flags
    in the standard bits, as stdatamodels translates a mask when JWST opens it.

    Raises
    ------
    DQDefError
        The table cannot be trusted (`dq_def_problems`).
    """
    if dq_def is None or len(dq_def) == 0:
        return {}
    known = np.array([decode_name(row["NAME"]).upper() in PIXEL
                      or decode_name(row["NAME"]).upper() in ALIASES for row in dq_def], bool)
    return translation_table(np.asarray(dq_def)[known])


def translate(dq: np.ndarray, table: Mapping[int, int]) -> np.ndarray:
    """Return ``dq`` with each file bit value replaced by its standard value.

    Bits that the table does not mention are kept as they are. The input is not modified.

    Parameters
    ----------
    dq : numpy.ndarray of uint32
        Flags written with a non-standard bit assignment.
    table : mapping of int to int
        ``{file_value: standard_value}`` as returned by `translation_table`.
    """
    if not table:
        return dq
    moved = np.uint32(functools.reduce(operator.or_, table, 0))
    translated = dq & ~moved
    for file_value, standard_value in table.items():
        translated |= np.where(dq & np.uint32(file_value), np.uint32(standard_value), np.uint32(0))
    return translated.astype(np.uint32, copy=False)


def decode_name(raw) -> str:
    """Return a DQ_DEF NAME (bytes or str) as a stripped str."""
    return raw.decode("ascii", "replace").strip() if isinstance(raw, bytes) else str(raw).strip()
