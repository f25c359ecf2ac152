"""Validation of a DQ reference: named rules, each a small function returning findings.

A check collects every finding before reporting, so one run shows all the problems.
Each rule takes the model (and the validation settings) and yields `Finding` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from dqref import flags, values
from dqref.errors import UnknownDetectorError

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem: which rule found it, how serious, what and where."""

    rule: str
    severity: str
    message: str
    where: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def format(self, source: str = "") -> str:
        """Return ``source: where: severity: message [rule]`` on one line."""
        parts = [p for p in (source, self.where) if p]
        return ": ".join(parts + [f"{self.severity}: {self.message} [{self.rule}]"])


Rule = Callable[..., Iterator[Finding]]
RULES: list[tuple[str, Rule]] = []
_WARNING_RULES: set[str] = set()


def rule(name: str, warnings_only: bool = False) -> Callable[[Rule], Rule]:
    """Register a validation rule under ``name`` (rules run in registration order).

    ``warnings_only`` marks rules that never report errors, so callers that only need to
    know whether a file is usable (the DQ step) can skip them.
    """

    def register(function: Rule) -> Rule:
        RULES.append((name, function))
        if warnings_only:
            _WARNING_RULES.add(name)
        return function

    return register


@rule("dq-array")
def _dq_array(model, config) -> Iterator[Finding]:
    dq = model.dq
    if dq is None:
        yield Finding("dq-array", ERROR, "no DQ array", "DQ")
    elif dq.ndim != 2 or dq.dtype != np.uint32:
        yield Finding("dq-array", ERROR, f"DQ must be 2D uint32; got {dq.ndim}D {dq.dtype}", "DQ")


@rule("required-metadata")
def _required_metadata(model, config) -> Iterator[Finding]:
    meta = model.meta
    checks = (
        ("INSTRUME", meta.name, lambda v: values.check_name(v, "instrument")),
        ("DETECTOR", meta.detector, lambda v: values.check_name(v, "detector")),
        ("USEAFTER", meta.useafter, values.normalize_datetime),
        ("PEDIGREE", meta.pedigree, values.check_pedigree),
        ("SUBARRAY", meta.subarray.name, lambda v: values.check_name(v, "subarray")),
    )
    for keyword, value, check in checks:
        if value in (None, ""):
            yield Finding("required-metadata", ERROR, f"{keyword} is missing", keyword)
            continue
        try:
            check(value)
        except ValueError as error:
            yield Finding("required-metadata", ERROR, str(error), keyword)
    for keyword, text in (("DESCRIP", meta.description), ("AUTHOR", meta.author)):
        if text:
            try:
                values.check_header_text(text, keyword)
            except ValueError as error:
                yield Finding("required-metadata", ERROR, str(error), keyword)
    for number, line in enumerate(meta.history, start=1):
        try:
            values.check_header_text(line, "HISTORY")
        except ValueError as error:
            yield Finding("required-metadata", ERROR, str(error), f"HISTORY line {number}")
    if meta.reftype and str(meta.reftype).upper() not in ("DQ", "MASK"):
        yield Finding("required-metadata", ERROR,
                      f"REFTYPE is {meta.reftype!r}, expected 'DQ'", "REFTYPE")


@rule("known-detector")
def _known_detector(model, config) -> Iterator[Finding]:
    if model.meta.name and model.meta.detector:
        try:
            _ = model.detector_info
        except UnknownDetectorError as error:
            yield Finding("known-detector", ERROR, str(error), "INSTRUME/DETECTOR")


@rule("geometry")
def _geometry(model, config) -> Iterator[Finding]:
    if model.dq is None or model.dq.ndim != 2:
        return
    try:
        full_rows, full_columns = model.detector_info.shape
    except (UnknownDetectorError, ValueError, AttributeError):
        return
    sub = model.meta.subarray
    rows, columns = model.dq.shape
    name = str(sub.name or "").upper()
    if name == "FULL":
        if (rows, columns) != (full_rows, full_columns):
            yield Finding("geometry", ERROR,
                          f"DQ shape {rows} x {columns} differs from the {full_rows} x "
                          f"{full_columns} full frame of {model.meta.detector}", "DQ")
        if (sub.xstart, sub.ystart) != (1, 1):
            yield Finding("geometry", ERROR, "a FULL reference must start at (1, 1)",
                          "SUBSTRT1/SUBSTRT2")
        return
    ystart, xstart, ysize, xsize = sub.region((rows, columns))
    if (ysize, xsize) != (rows, columns):
        yield Finding("geometry", ERROR,
                      f"SUBSIZE2 x SUBSIZE1 = {ysize} x {xsize} but DQ is {rows} x {columns}",
                      "SUBSIZE1/SUBSIZE2")
    if xstart < 0 or ystart < 0 or xstart + xsize > full_columns or ystart + ysize > full_rows:
        yield Finding("geometry", ERROR,
                      f"subarray {name} (SUBSTRT1={sub.xstart}, SUBSTRT2={sub.ystart}, "
                      f"{xsize} x {ysize}) lies outside the {full_columns} x {full_rows} "
                      f"detector", "SUBSTRT1/SUBSTRT2")


@rule("dq-def-consistent")
def _dq_def_consistent(model, config) -> Iterator[Finding]:
    table = model.dq_def
    if table is None or len(table) == 0:
        yield Finding("dq-def-consistent", ERROR, "no DQ_DEF table", "DQ_DEF")
        return
    seen_bits: dict[int, int] = {}
    seen_names: dict[str, int] = {}
    for row_number, row in enumerate(table, start=1):
        bit, value = int(row["BIT"]), int(row["VALUE"])
        name = flags.decode_name(row["NAME"]).upper()
        where = f"DQ_DEF row {row_number} ({name})"
        if not 0 <= bit < 32:
            yield Finding("dq-def-consistent", ERROR, f"BIT {bit} is outside 0..31", where)
        elif value != 1 << bit:
            yield Finding("dq-def-consistent", ERROR, f"VALUE {value} != 2**BIT = {1 << bit}",
                          where)
        if bit in seen_bits:
            yield Finding("dq-def-consistent", ERROR,
                          f"BIT {bit} is also defined in row {seen_bits[bit]}", where)
        if name in seen_names:
            yield Finding("dq-def-consistent", ERROR,
                          f"NAME {name} is also defined in row {seen_names[name]}", where)
        seen_bits.setdefault(bit, row_number)
        seen_names.setdefault(name, row_number)


@rule("bits-defined")
def _bits_defined(model, config) -> Iterator[Finding]:
    if model.dq is None or model.dq_def is None:
        return
    defined = 0
    for row in model.dq_def:
        defined |= int(row["VALUE"])
    used = int(np.bitwise_or.reduce(model.dq, axis=None)) if model.dq.size else 0
    for bit in range(32):
        if used & (1 << bit) and not defined & (1 << bit):
            y, x = (int(i) for i in np.argwhere(model.dq & np.uint32(1 << bit))[0])
            yield Finding("bits-defined", ERROR,
                          f"bit {bit} (value {1 << bit}) is set but not defined in DQ_DEF",
                          f"pixel (y={y}, x={x})")


def validate(model, config=None, errors_only: bool = False) -> list[Finding]:
    """Run every rule on ``model`` and return all findings, errors first.

    Parameters
    ----------
    model : DQModel
        The reference to check.
    config : object, optional
        Settings passed to the rules that take any.
    errors_only : bool
        Skip the rules that can only warn (for callers that just need usability).
    """
    findings = [finding for name, check in RULES
                if not (errors_only and name in _WARNING_RULES)
                for finding in check(model, config)]
    return sorted(findings, key=lambda f: not f.is_error)


def errors(findings: list[Finding]) -> list[Finding]:
    """Return only the error findings."""
    return [f for f in findings if f.is_error]


# The semantic rules register themselves with `rule` on import.
from dqref import semantics  # noqa: E402, F401
