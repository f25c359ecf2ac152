"""Validation of a DQ reference: named rules, each a small function returning findings.

A check collects every finding before reporting, so one run shows all the problems.
Each rule takes the model and the validation settings (`ValidationConfig`) and yields
`Finding` objects; `validate` runs them all. docs/validation.md lists every rule.

Two kinds of rule:

* *structural* rules (``dq-array`` ... ``bits-defined``): is this a well-formed reference?
* *semantic* rules (``dq-def-known-names`` ... ``flagged-fraction``): does the mask *mean*
  what a static bad-pixel reference should? They look at the flags in the standard bit
  assignment, translating a file's own ``DQ_DEF`` by name first.

Errors are problems that make readers lose or misread flags (``model.write`` and
``cache add`` refuse them); warnings are doubts that existing JWST masks often raise on
purpose. ``ValidationConfig(strict=True)`` (``dqref validate --strict``) turns every
warning into an error.

=========================  ========  ==========================================================
semantic rule              severity  catches
=========================  ========  ==========================================================
dq-def-known-names         error     a DQ_DEF name that is not a known flag (readers drop it)
group-only-flags           error     SATURATED, JUMP_DET, ... in a static mask
dead-and-hot               warning   a pixel flagged both DEAD and HOT
adj-open-without-open      warning   ADJ_OPEN with no OPEN pixel among its 8 neighbours
reference-pixel-border     warning   REFERENCE_PIXEL off the border, or the border incomplete
do-not-use-policy          warning   DEAD/HOT/OPEN (configurable) without DO_NOT_USE
flagged-fraction           warning   more than 5% (configurable) of pixels flagged
=========================  ========  ==========================================================
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from dqref import flags, values
from dqref.errors import DQRefError, UnknownDetectorError

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


# -- settings ----------------------------------------------------------------------------
class ValidationConfigError(DQRefError, ValueError):
    """A validation setting is unknown, of the wrong type or out of range."""


@cache
def _packaged_settings() -> dict:
    return tomllib.loads(resources.files("dqref").joinpath("validation.toml").read_text())


def _default(key: str, fallback):
    return _packaged_settings().get(key, fallback)


@dataclass(frozen=True)
class ValidationConfig:
    """Settings of the semantic rules; the defaults are read from ``dqref/validation.toml``.

    Parameters
    ----------
    must_be_do_not_use : tuple of str
        Flags that must always come with DO_NOT_USE (rule ``do-not-use-policy``). Names
        are checked against the flag table and stored upper case, aliases resolved.
    max_flagged_fraction : float
        Warn when more than this fraction (0 < f <= 1) of the pixels carries a flag other
        than REFERENCE_PIXEL (rule ``flagged-fraction``).
    strict : bool
        Report every warning as an error.

    Raises
    ------
    ValidationConfigError
        A setting is of the wrong type, out of range, or names an unknown flag.
    """

    must_be_do_not_use: tuple[str, ...] = tuple(_default("must_be_do_not_use",
                                                         ("DEAD", "HOT", "OPEN")))
    max_flagged_fraction: float = _default("max_flagged_fraction", 0.05)
    strict: bool = _default("strict", False)

    def __post_init__(self):
        names = self.must_be_do_not_use
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise ValidationConfigError(
                f"must_be_do_not_use must be a list of flag names; got {names!r}")
        canonical = []
        for name in names:
            try:
                canonical.append(flags.flag(name).name)
            except DQRefError:
                raise ValidationConfigError(
                    f"must_be_do_not_use: {name!r} is not a known flag") from None
        # Frozen: normalising the caller's spelling is the one assignment we allow ourselves.
        object.__setattr__(self, "must_be_do_not_use", tuple(canonical))
        fraction = self.max_flagged_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) \
                or not 0 < fraction <= 1:
            raise ValidationConfigError(
                f"max_flagged_fraction must be a number in (0, 1]; got {fraction!r}")
        if not isinstance(self.strict, bool):
            raise ValidationConfigError(f"strict must be true or false; got {self.strict!r}")

    @classmethod
    def from_toml(cls, path: str | os.PathLike | None = None) -> ValidationConfig:
        """Return the packaged defaults, overridden by the keys of the TOML file ``path``.

        Raises
        ------
        ValidationConfigError
            The file cannot be read or parsed, has unknown keys, or a value is invalid.
        """
        if path is None:
            return cls()
        try:
            with open(path, "rb") as stream:
                user = tomllib.load(stream)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ValidationConfigError(f"{path}: {error}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(user) - known)
        if unknown:
            raise ValidationConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; "
                                        f"known: {', '.join(sorted(known))}")
        if isinstance(user.get("must_be_do_not_use"), list):
            user["must_be_do_not_use"] = tuple(user["must_be_do_not_use"])
        try:
            return cls(**user)
        except ValidationConfigError as error:
            raise ValidationConfigError(f"{path}: {error}") from None


def _settings(config) -> ValidationConfig:
    if config is None:
        return _default_config()
    if isinstance(config, ValidationConfig):
        return config
    # A settings object of the same shape (a caller's own dataclass): take the fields it has.
    given = {f.name: getattr(config, f.name) for f in dataclasses.fields(ValidationConfig)
             if hasattr(config, f.name)}
    if not given:
        raise TypeError(f"config must be a ValidationConfig or None; got {type(config).__name__}")
    if isinstance(given.get("must_be_do_not_use"), list):
        given["must_be_do_not_use"] = tuple(given["must_be_do_not_use"])
    return ValidationConfig(**given)


@cache
def _default_config() -> ValidationConfig:
    return ValidationConfig()


# -- the rule registry --------------------------------------------------------------------
Rule = Callable[..., Iterator[Finding]]
RULES: list[tuple[str, Rule]] = []
_WARNING_RULES: set[str] = set()


def rule(name: str, warnings_only: bool = False) -> Callable[[Rule], Rule]:
    """Register a validation rule under ``name`` (rules run in registration order).

    ``warnings_only`` marks rules that never report errors, so callers that only need to
    know whether a file is usable (the DQ step) can skip them.

    A name is registered once. Registering it again with a function of the same name is
    ignored (a reloaded module); with a different function it is an error.
    """

    def register(function: Rule) -> Rule:
        existing = dict(RULES).get(name)
        if existing is not None:
            if existing.__name__ == function.__name__:
                return function
            raise ValueError(f"validation rule {name!r} is already registered "
                             f"({existing.__module__}.{existing.__qualname__})")
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
    for problem in flags.dq_def_problems(table):
        yield Finding("dq-def-consistent", ERROR, problem.message, problem.where)


@rule("bits-defined")
def _bits_defined(model, config) -> Iterator[Finding]:
    if model.dq is None or model.dq.dtype != np.uint32 or model.dq_def is None:
        return  # dq-array reports a missing or non-uint32 array
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


# -- semantic rules -----------------------------------------------------------------------
_DO_NOT_USE = np.uint32(flags.PIXEL["DO_NOT_USE"])
_REFERENCE_PIXEL = np.uint32(flags.PIXEL["REFERENCE_PIXEL"])
_OPEN = np.uint32(flags.PIXEL["OPEN"])
_ADJ_OPEN = np.uint32(flags.PIXEL["ADJ_OPEN"])
_DEAD_AND_HOT = np.uint32(flags.value("DEAD|HOT"))
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


@dataclass(frozen=True)
class _FlaggedPixels:
    """The flagged pixels of a mask (masks are sparse), in the standard bit assignment."""

    shape: tuple[int, int]
    indices: np.ndarray  # flat, ascending
    values: np.ndarray  # standard flag values of those pixels

    def having(self, bits: np.uint32) -> np.ndarray:
        """Return the flat indices of the pixels carrying any of ``bits``."""
        return self.indices[(self.values & bits) != 0]


def _where(shape: tuple[int, int], indices: np.ndarray) -> str:
    """Return ``pixel (y=.., x=..)`` of the first of the flat ``indices``."""
    y, x = np.unravel_index(int(indices[0]), shape)
    return f"pixel (y={int(y)}, x={int(x)})"


# The semantic rules of one `validate` call share one scan of the array (the memo lives
# only for that call, so a model changed between calls is scanned afresh).
_SCANS: ContextVar[dict | None] = ContextVar("_SCANS", default=None)


def _memo(model, kind: str, compute):
    scans = _SCANS.get()
    key = (id(model), kind)
    if scans is not None and key in scans:
        return scans[key]
    result = compute()
    if scans is not None:
        scans[key] = result
    return result


def _usable(model) -> bool:
    """Whether the array can be read in standard bits (dq-array reports an unreadable
    array, dq-def-consistent a DQ_DEF that cannot be trusted to translate it)."""
    if model.dq is None or model.dq.ndim != 2 or model.dq.dtype != np.uint32:
        return False
    return _memo(model, "trusted", lambda: model.dq_def is None
                 or not flags.dq_def_problems(model.dq_def))


def _present(model) -> int:
    """Return which flags occur at all, in standard bits (one pass, no temporaries)."""

    def compute() -> int:
        raw = np.bitwise_or.reduce(model.dq, axis=None) if model.dq.size else 0
        # Translation moves each bit on its own, so it commutes with OR.
        table = flags.known_translation_table(model.dq_def)
        return int(flags.translate(np.array([raw], np.uint32), table)[0])

    return _memo(model, "present", compute)


def _flagged_pixels(model) -> _FlaggedPixels:
    """Return the flagged pixels of a usable ``model`` in standard bits."""

    def compute() -> _FlaggedPixels:
        indices = np.flatnonzero(model.dq)
        table = flags.known_translation_table(model.dq_def)
        standard = flags.translate(model.dq.ravel()[indices], table)
        return _FlaggedPixels(model.dq.shape, indices, standard)

    return _memo(model, "flagged", compute)


@rule("dq-def-known-names")
def _dq_def_known_names(model, config) -> Iterator[Finding]:
    if model.dq_def is None:
        return
    for row_number, row in enumerate(model.dq_def, start=1):
        name = flags.decode_name(row["NAME"]).upper()
        if name not in flags.PIXEL and name not in flags.ALIASES:
            yield Finding("dq-def-known-names", ERROR,
                          f"NAME {name!r} is not a known flag; readers would drop bit "
                          f"{int(row['BIT'])}", f"DQ_DEF row {row_number}")


@rule("group-only-flags")
def _group_only_flags(model, config) -> Iterator[Finding]:
    if not _usable(model) or not _present(model) & flags.GROUP_ONLY:
        return
    hits = _flagged_pixels(model).having(np.uint32(flags.GROUP_ONLY))
    names = ", ".join(flags.names(_present(model) & flags.GROUP_ONLY))
    yield Finding("group-only-flags", ERROR,
                  f"{names} belong to groups or integrations, not to a static mask "
                  f"({hits.size} pixels)", _where(model.dq.shape, hits))


@rule("dead-and-hot", warnings_only=True)
def _dead_and_hot(model, config) -> Iterator[Finding]:
    if not _usable(model) or (_present(model) & _DEAD_AND_HOT) != _DEAD_AND_HOT:
        return
    pixels = _flagged_pixels(model)
    both = pixels.indices[(pixels.values & _DEAD_AND_HOT) == _DEAD_AND_HOT]
    if both.size:
        yield Finding("dead-and-hot", WARNING, f"{both.size} pixels are both DEAD and HOT",
                      _where(pixels.shape, both))


@rule("adj-open-without-open", warnings_only=True)
def _adj_open_without_open(model, config) -> Iterator[Finding]:
    if not _usable(model) or not _present(model) & _ADJ_OPEN:
        return
    pixels = _flagged_pixels(model)
    adjacent = pixels.having(_ADJ_OPEN)
    open_pixels = pixels.having(_OPEN)  # ascending, so membership is a binary search
    rows, columns = pixels.shape
    y, x = np.divmod(adjacent, columns)
    has_open_neighbour = np.zeros(adjacent.size, bool)
    for dy, dx in _NEIGHBOURS if open_pixels.size else ():
        # 8 passes over the ADJ_OPEN pixels (not a loop over pixels, not a full-frame filter)
        ny, nx = y + dy, x + dx
        inside = (ny >= 0) & (ny < rows) & (nx >= 0) & (nx < columns)
        neighbour = ny * columns + nx
        slot = np.minimum(np.searchsorted(open_pixels, neighbour), open_pixels.size - 1)
        has_open_neighbour |= inside & (open_pixels[slot] == neighbour)
    orphans = adjacent[~has_open_neighbour]
    if orphans.size:
        yield Finding("adj-open-without-open", WARNING,
                      f"{orphans.size} ADJ_OPEN pixels have no OPEN neighbour",
                      _where(pixels.shape, orphans))


_TABLE_NOTE = "reference_border in dqref/detectors.toml"


@rule("reference-pixel-border", warnings_only=True)
def _reference_pixel_border(model, config) -> Iterator[Finding]:
    if not _usable(model):
        return
    try:
        detector = model.detector_info
    except (UnknownDetectorError, ValueError, AttributeError):
        return  # known-detector reports it
    width = detector.reference_border
    on_row, on_column = _border_lines(model, detector)
    marked = (_flagged_pixels(model).having(_REFERENCE_PIXEL)
              if _present(model) & _REFERENCE_PIXEL else np.empty(0, np.intp))
    y, x = np.divmod(marked, model.dq.shape[1])
    stray = marked[~(on_row[y] | on_column[x])]
    if stray.size:
        border = (f"off the {width}-pixel border of {detector.name}" if width else
                  f"but {detector.name} has no reference border")
        yield Finding("reference-pixel-border", WARNING,
                      f"{stray.size} REFERENCE_PIXEL flags lie {border} ({_TABLE_NOTE})",
                      _where(model.dq.shape, stray))
    if width:
        lacking, first = _unmarked_border(model.dq.shape, on_row, on_column, y, x)
        if lacking:
            yield Finding("reference-pixel-border", WARNING,
                          f"the {width}-pixel reference border lacks REFERENCE_PIXEL on "
                          f"{lacking} pixels", f"pixel (y={first[0]}, x={first[1]})")


def _border_lines(model, detector) -> tuple[np.ndarray, np.ndarray]:
    """Return, per row and per column of the array, whether it lies on the detector's
    reference border (a subarray sees only the part of the border inside it)."""
    rows, columns = model.dq.shape
    width = detector.reference_border
    full_rows, full_columns = detector.shape
    ystart, xstart, _, _ = model.meta.subarray.region((rows, columns))
    y = np.arange(ystart, ystart + rows)
    x = np.arange(xstart, xstart + columns)
    return (y < width) | (y >= full_rows - width), (x < width) | (x >= full_columns - width)


def _unmarked_border(shape, on_row, on_column, marked_y, marked_x):
    """Count the border pixels without REFERENCE_PIXEL; return (count, first (y, x)).

    Works on the border bands only (rows on the border x all columns, all rows x columns
    on the border), never on a full-frame temporary.
    """
    rows, columns = shape
    border_rows, border_columns = np.flatnonzero(on_row), np.flatnonzero(on_column)
    row_band = np.ones((border_rows.size, columns), bool)  # True: lacks REFERENCE_PIXEL
    column_band = np.ones((rows, border_columns.size), bool)
    in_rows, in_columns = on_row[marked_y], on_column[marked_x]
    row_rank, column_rank = np.cumsum(on_row) - 1, np.cumsum(on_column) - 1
    row_band[row_rank[marked_y[in_rows]], marked_x[in_rows]] = False
    column_band[marked_y[in_columns], column_rank[marked_x[in_columns]]] = False
    corners = np.count_nonzero(row_band[:, border_columns])  # counted in both bands
    count = np.count_nonzero(row_band) + np.count_nonzero(column_band) - corners
    candidates = []
    if row_band.any():
        i, x = np.unravel_index(np.argmax(row_band), row_band.shape)
        candidates.append((int(border_rows[i]), int(x)))
    if column_band.any():
        y, j = np.unravel_index(np.argmax(column_band), column_band.shape)
        candidates.append((int(y), int(border_columns[j])))
    return int(count), min(candidates, default=None)


@rule("do-not-use-policy", warnings_only=True)
def _do_not_use_policy(model, config) -> Iterator[Finding]:
    if not _usable(model):
        return
    names = [n for n in _settings(config).must_be_do_not_use if _present(model) & flags.value(n)]
    if not names:
        return
    pixels = _flagged_pixels(model)
    without = (pixels.values & _DO_NOT_USE) == 0
    for name in names:
        lacking = pixels.indices[without & ((pixels.values & np.uint32(flags.value(name))) != 0)]
        if lacking.size:
            yield Finding("do-not-use-policy", WARNING,
                          f"{lacking.size} {name} pixels lack DO_NOT_USE",
                          _where(pixels.shape, lacking))


@rule("flagged-fraction", warnings_only=True)
def _flagged_fraction(model, config) -> Iterator[Finding]:
    if not _usable(model) or model.dq.size == 0 or not _present(model) & ~_REFERENCE_PIXEL:
        return
    limit = _settings(config).max_flagged_fraction
    # Reference pixels are flagged by design (4 rows and columns each side): not counted.
    flagged = np.count_nonzero(_flagged_pixels(model).values & ~_REFERENCE_PIXEL)
    fraction = flagged / model.dq.size
    if fraction > limit:
        yield Finding("flagged-fraction", WARNING,
                      f"{fraction:.2%} of pixels are flagged (limit {limit:.2%}): {flagged} of "
                      f"{model.dq.size}, reference pixels not counted; was the mask built "
                      "from the right data?", "DQ")


# -- running the rules --------------------------------------------------------------------
def validate(model, config=None, errors_only: bool = False) -> list[Finding]:
    """Run every rule on ``model`` and return all findings, errors first.

    Parameters
    ----------
    model : DQModel
        The reference to check. It is not modified.
    config : ValidationConfig, optional
        Settings of the semantic rules; default: ``ValidationConfig()`` (the values of
        ``dqref/validation.toml``). With ``strict`` every warning is reported as an error.
    errors_only : bool
        Skip the rules that can only warn (for callers that just need usability); ignored
        under ``strict``, where warnings are errors.

    Returns
    -------
    list of Finding
        Every finding of every rule (an empty list means valid), errors first.
    """
    settings = _settings(config)
    skip = _WARNING_RULES if errors_only and not settings.strict else set()
    token = _SCANS.set({})
    try:
        findings = [finding for name, check in list(RULES) if name not in skip
                    for finding in check(model, settings)]
    finally:
        _SCANS.reset(token)
    if settings.strict:
        findings = [_as_error(f) for f in findings]
    return sorted(findings, key=lambda f: not f.is_error)


def _as_error(finding: Finding) -> Finding:
    if finding.is_error:
        return finding
    return dataclasses.replace(finding, severity=ERROR,
                               message=f"{finding.message} (a warning; strict makes it an error)")


def errors(findings: list[Finding]) -> list[Finding]:
    """Return only the error findings."""
    return [f for f in findings if f.is_error]
