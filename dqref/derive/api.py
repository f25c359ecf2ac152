"""Derive a DQ reference from FITS flats and darks: the file-level API of `dqref derive`.

Opens and checks the inputs (`dqref.derive.inputs`), runs the numpy core
(`dqref.derive.core.derive_flags`), ORs in manual flags last and records the provenance in
HISTORY. The caller writes the model (``model.write(path)``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from dqref import __version__, values
from dqref.derive.config import DeriveConfig
from dqref.derive.core import derive_flags
from dqref.derive.inputs import DeriveInputError, images_of, open_slope_files
from dqref.detectors import get_detector
from dqref.histogram import FlagHistogram
from dqref.manual_flags import apply_manual_flags, read_manual_flags
from dqref.model import DQModel


@dataclass(frozen=True)
class DerivationSummary:
    """What a derivation found: pixels per rule, the measured levels and the histogram.

    Attributes
    ----------
    rule_counts : dict of str to int
        Pixels each rule found (a pixel found by two rules counts for both).
    histogram : FlagHistogram
        Pixels per flag in the final mask (manual flags included).
    levels : dict of str to float
        Levels the rules measured (see `dqref.derive.core.DerivationResult`).
    flat_images, dark_images : int
        Images combined (a 3D stack counts once per plane).
    manual_entries : int
        Lines of the manual flag list ORed in (0 without one).
    """

    rule_counts: dict[str, int]
    histogram: FlagHistogram
    levels: dict[str, float] = field(default_factory=dict)
    flat_images: int = 0
    dark_images: int = 0
    manual_entries: int = 0

    def format(self) -> str:
        """Return a plain-text report: inputs, pixels per rule, levels, the histogram."""
        lines = [f"inputs: {self.flat_images} flat images, {self.dark_images} dark images, "
                 f"{self.manual_entries} manual flag entries", "pixels found per rule:"]
        width = max([len(name) for name in self.rule_counts] + [len("rule")])
        lines += [f"  {name:<{width}}  {count:>10}" for name, count in self.rule_counts.items()]
        if self.levels:
            lines.append("levels measured:")
            width = max(len(name) for name in self.levels)
            lines += [f"  {name:<{width}}  {level:>12.6g}" for name, level in self.levels.items()]
        lines.append("flags in the reference:")
        return "\n".join(lines) + "\n" + self.histogram.format_table()


def derive_reference(instrument: str, detector: str,
                     flats: Sequence[str | os.PathLike] = (),
                     darks: Sequence[str | os.PathLike] = (),
                     manual_flags: str | os.PathLike | None = None,
                     config: DeriveConfig | str | os.PathLike | None = None, *,
                     progress: Callable[[Iterable, str], Iterable] | None = None,
                     **meta) -> tuple[DQModel, DerivationSummary]:
    """Derive a full-frame DQ reference (not written) from flat and dark slope files.

    Parameters
    ----------
    instrument, detector : str
        Names from the detector table (``dqref/detectors.toml``).
    flats, darks : sequences of path-like
        FITS slope images (``SCI`` extension or primary HDU; 2D, or 3D stacks counted once
        per plane) of the detector's full frame. At least one of the two.
    manual_flags : path-like, optional
        A jwst_reffiles-format flag list (`dqref.manual_flags`), ORed in last.
    config : DeriveConfig or path-like, optional
        Settings, or a TOML file of settings to change (`DeriveConfig.from_toml`); the
        defaults if not given. A ``reference_border`` of None takes the detector's.
    progress : callable, optional
        ``progress(items, description)`` wrapper, e.g. `dqref.console.progress`.
    **meta : str or None
        ``useafter``, ``pedigree``, ``description``, ``author`` (None: the default).

    Returns
    -------
    model : DQModel
        The reference, HISTORY filled with the software version, every input file, every
        setting and what each rule found. Write it with ``model.write(path)``.
    summary : DerivationSummary

    Raises
    ------
    DeriveInputError
        No inputs, an unreadable input or one that disagrees with the detector (every
        problem named with its file), or bad metadata.
    DeriveConfigError
        A bad configuration file or value.
    UnknownDetectorError, ManualFlagsError
        Unknown instrument/detector; a bad manual flag list.
    """
    info = get_detector(instrument, detector)
    meta = {key: value for key, value in meta.items() if value is not None}
    _check_metadata(meta)
    if not isinstance(config, DeriveConfig):
        config = DeriveConfig.from_toml(config)
    if config.reference_border is None:
        config = dataclasses.replace(config, reference_border=info.reference_border)
    if not flats and not darks:
        raise DeriveInputError("nothing to derive from: give at least one flat or dark")
    # Read the manual list before the long part, so a typo in it fails at once.
    entries = read_manual_flags(manual_flags, info.shape) if manual_flags is not None else []
    with open_slope_files(flats, darks, info, progress) as (flat_files, dark_files):
        result = derive_flags(images_of(flat_files), images_of(dark_files), config, info.shape,
                              progress=progress)
        inputs = [f"flat: {f.describe()}" for f in flat_files] + \
                 [f"dark: {f.describe()}" for f in dark_files]
    dq = apply_manual_flags(result.dq, entries) if entries else result.dq
    model = DQModel(dq, name=info.instrument, detector=info.name, **meta)
    if not model.meta.description:
        model.meta.description = (f"{info.instrument} {info.name} bad pixels from "
                                  f"{result.flat_count} flats, {result.dark_count} darks")
    history = [f"Derived by dqref {__version__} (dqref derive) from {result.flat_count} "
               f"flat and {result.dark_count} dark images", *inputs, *config.history()]
    history += [f"rule {name} found {count} pixels" for name, count in result.rule_counts.items()]
    history += [f"measured {name} = {level:.6g}" for name, level in result.levels.items()]
    if manual_flags is not None:
        history.append(f"manual flags ORed in last: {_ascii(manual_flags)} "
                       f"({len(entries)} entries)")
    model.meta.history.extend(history)
    summary = DerivationSummary(result.rule_counts, model.histogram(), result.levels,
                                result.flat_count, result.dark_count, len(entries))
    return model, summary


def _check_metadata(meta: dict) -> None:
    """Refuse bad metadata before the long part rather than when writing."""
    checks = {"useafter": values.normalize_datetime, "pedigree": values.check_pedigree,
              "description": lambda v: values.check_header_text(v, "description"),
              "author": lambda v: values.check_header_text(v, "author")}
    for key, value in meta.items():
        if key not in checks:
            raise TypeError(f"unknown metadata field {key!r}; known: {', '.join(checks)}")
        try:
            checks[key](value)
        except ValueError as error:
            raise DeriveInputError(f"{key}: {error}") from None


def _ascii(path: str | os.PathLike) -> str:
    return str(path).encode("ascii", "backslashreplace").decode("ascii")
