"""Semantic validation rules: does the mask *mean* what a DQ reference should?

Each rule registers itself with `dqref.validation.rule`. Errors are problems that make
readers lose or misread flags; warnings are doubts that existing masks often raise on
purpose (``dqref validate --strict`` turns them into failures).

=========================  ========  ==========================================================
rule                       severity  catches
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

import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from importlib import resources

import numpy as np

from dqref import flags
from dqref.errors import DQRefError, UnknownDetectorError
from dqref.validation import ERROR, WARNING, Finding, rule

_REFERENCE_PIXEL = np.uint32(flags.PIXEL["REFERENCE_PIXEL"])
_DO_NOT_USE = np.uint32(flags.PIXEL["DO_NOT_USE"])


class ValidationConfigError(DQRefError, ValueError):
    """A validation setting is unknown or out of range."""


@dataclass(frozen=True)
class ValidationConfig:
    """Settings of the semantic rules; defaults live in ``dqref/validation.toml``."""

    must_be_do_not_use: tuple[str, ...] = ("DEAD", "HOT", "OPEN")
    max_flagged_fraction: float = 0.05

    def __post_init__(self):
        for name in self.must_be_do_not_use:
            try:
                flags.flag(name)
            except DQRefError:
                raise ValidationConfigError(
                    f"must_be_do_not_use: {name!r} is not a known flag") from None
        if not 0 < self.max_flagged_fraction <= 1:
            raise ValidationConfigError(
                f"max_flagged_fraction must be in (0, 1]; got {self.max_flagged_fraction}")

    @classmethod
    def from_toml(cls, path: str | os.PathLike | None = None) -> ValidationConfig:
        """Return the defaults, overridden by the keys of a TOML file if given."""
        values = tomllib.loads(resources.files("dqref").joinpath("validation.toml").read_text())
        if path is not None:
            try:
                user = tomllib.loads(open(path).read())
            except (OSError, tomllib.TOMLDecodeError) as error:
                raise ValidationConfigError(f"{path}: {error}") from None
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(user) - known)
            if unknown:
                raise ValidationConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; "
                                            f"known: {', '.join(sorted(known))}")
            values.update(user)
        values["must_be_do_not_use"] = tuple(str(n).upper() for n in values["must_be_do_not_use"])
        return cls(**values)


_DEFAULT: ValidationConfig | None = None


def _settings(config) -> ValidationConfig:
    global _DEFAULT
    if isinstance(config, ValidationConfig):
        return config
    if _DEFAULT is None:
        _DEFAULT = ValidationConfig.from_toml()
    return _DEFAULT


def _first(mask: np.ndarray) -> str:
    y, x = (int(i) for i in np.argwhere(mask)[0])
    return f"pixel (y={y}, x={x})"


def _usable(model) -> bool:
    return model.dq is not None and model.dq.ndim == 2


def _present(model) -> int:
    """Return the OR of every pixel: which bits occur at all (cheap, no temporaries)."""
    return int(np.bitwise_or.reduce(model.dq, axis=None)) if model.dq.size else 0


def _flagged(model) -> tuple[np.ndarray, np.ndarray]:
    """Return (flat indices, values) of the flagged pixels; masks are sparse."""
    indices = np.flatnonzero(model.dq)
    return indices, model.dq.ravel()[indices]


def _first_index(model, indices: np.ndarray) -> str:
    y, x = np.unravel_index(int(indices[0]), model.dq.shape)
    return f"pixel (y={int(y)}, x={int(x)})"


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
    indices, values = _flagged(model)
    hits = indices[(values & np.uint32(flags.GROUP_ONLY)) != 0]
    names = flags.names(_present(model) & flags.GROUP_ONLY)
    yield Finding("group-only-flags", ERROR,
                  f"{', '.join(names)} belong to groups or integrations, not to a static "
                  f"mask ({hits.size} pixels)", _first_index(model, hits))


@rule("dead-and-hot", warnings_only=True)
def _dead_and_hot(model, config) -> Iterator[Finding]:
    both = flags.value("DEAD|HOT")
    if not _usable(model) or _present(model) & both != both:
        return
    indices, values = _flagged(model)
    clash = indices[(values & np.uint32(both)) == both]
    if clash.size:
        yield Finding("dead-and-hot", WARNING,
                      f"{clash.size} pixels are both DEAD and HOT", _first_index(model, clash))


@rule("adj-open-without-open", warnings_only=True)
def _adj_open_without_open(model, config) -> Iterator[Finding]:
    if not _usable(model) or not _present(model) & flags.PIXEL["ADJ_OPEN"]:
        return
    adjacent = (model.dq & np.uint32(flags.PIXEL["ADJ_OPEN"])) != 0
    from scipy import ndimage  # only masks with ADJ_OPEN pay for importing scipy

    open_pixels = (model.dq & np.uint32(flags.PIXEL["OPEN"])) != 0
    near_open = ndimage.binary_dilation(open_pixels, structure=np.ones((3, 3), bool))
    orphans = adjacent & ~(near_open & ~open_pixels)
    if orphans.any():
        yield Finding("adj-open-without-open", WARNING,
                      f"{int(orphans.sum())} ADJ_OPEN pixels have no OPEN neighbour",
                      _first(orphans))


@rule("reference-pixel-border", warnings_only=True)
def _reference_pixel_border(model, config) -> Iterator[Finding]:
    if not _usable(model):
        return
    try:
        detector = model.detector_info
    except (UnknownDetectorError, ValueError, AttributeError):
        return
    on_row, on_column = _border_lines(model, detector)
    if _present(model) & flags.PIXEL["REFERENCE_PIXEL"]:
        indices, values = _flagged(model)
        marked = indices[(values & _REFERENCE_PIXEL) != 0]
        y, x = np.unravel_index(marked, model.dq.shape)
        stray = marked[~(on_row[y] | on_column[x])]
        if stray.size:
            yield Finding("reference-pixel-border", WARNING,
                          f"{stray.size} REFERENCE_PIXEL flags lie off the "
                          f"{detector.reference_border}-pixel border", _first_index(model, stray))
    lacking = np.zeros(model.dq.shape, bool)
    lacking[on_row, :] = (model.dq[on_row, :] & _REFERENCE_PIXEL) == 0
    lacking[:, on_column] |= (model.dq[:, on_column] & _REFERENCE_PIXEL) == 0
    if lacking.any():
        yield Finding("reference-pixel-border", WARNING,
                      f"the {detector.reference_border}-pixel reference border lacks "
                      f"REFERENCE_PIXEL on {int(lacking.sum())} pixels", _first(lacking))


def _border_lines(model, detector) -> tuple[np.ndarray, np.ndarray]:
    """Return, per row and per column of the array, whether it lies on the detector border."""
    rows, columns = model.dq.shape
    width = detector.reference_border
    full_rows, full_columns = detector.shape
    ystart, xstart, _, _ = model.meta.subarray.region((rows, columns))
    y = np.arange(ystart, ystart + rows)
    x = np.arange(xstart, xstart + columns)
    return (y < width) | (y >= full_rows - width), (x < width) | (x >= full_columns - width)


@rule("do-not-use-policy", warnings_only=True)
def _do_not_use_policy(model, config) -> Iterator[Finding]:
    if not _usable(model):
        return
    present = _present(model)
    names = [n for n in _settings(config).must_be_do_not_use if present & flags.value(n)]
    if not names:
        return
    indices, values = _flagged(model)
    without = (values & _DO_NOT_USE) == 0
    for name in names:
        lacking = indices[without & ((values & np.uint32(flags.value(name))) != 0)]
        if lacking.size:
            yield Finding("do-not-use-policy", WARNING,
                          f"{lacking.size} {name} pixels lack DO_NOT_USE",
                          _first_index(model, lacking))


@rule("flagged-fraction", warnings_only=True)
def _flagged_fraction(model, config) -> Iterator[Finding]:
    if not _usable(model) or model.dq.size == 0:
        return
    limit = _settings(config).max_flagged_fraction
    _, values = _flagged(model)
    flagged = np.count_nonzero(values & ~_REFERENCE_PIXEL)
    fraction = flagged / model.dq.size
    if fraction > limit:
        yield Finding("flagged-fraction", WARNING,
                      f"{100 * fraction:.2f}% of pixels are flagged (limit {100 * limit:.2f}%): "
                      "was the mask built from the right data?", "DQ")
