"""Settings of the bad-pixel search (`dqref derive`): a frozen dataclass that checks itself.

The defaults are data: ``defaults.toml`` beside this module (documented there), read once
here. A user file with the same ``[sections]`` overrides any key (`DeriveConfig.from_toml`);
in Python, ``dataclasses.replace(config, hot_threshold=2.0)`` does the same and is checked
the same way.

Examples
--------
>>> from dqref.derive import DeriveConfig
>>> config = DeriveConfig()
>>> config.low_qe_threshold, config.do_not_use
(0.5, ('DEAD', 'HOT', 'OPEN'))
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from importlib import resources

from dqref import flags
from dqref.errors import DQRefError, UnknownFlagError

DEFAULTS_FILE = "dqref/derive/defaults.toml"
#: The ``reference_border`` value meaning "the detector table's width" (None in Python).
FROM_DETECTOR = "detector"
#: Every flag a derivation can set (and so may list in ``do_not_use``).
DERIVED_FLAGS = ("DEAD", "LOW_QE", "OPEN", "ADJ_OPEN", "UNRELIABLE_FLAT", "HOT", "WARM",
                 "UNRELIABLE_SLOPE", "UNRELIABLE_DARK", "REFERENCE_PIXEL")
SMOOTHINGS = ("box", "median")
DEAD_SEARCHES = ("threshold", "sigma")


class DeriveConfigError(DQRefError, ValueError):
    """A derive setting is unknown, of the wrong type or out of range."""


def _read_defaults() -> dict[str, dict]:
    text = resources.files("dqref.derive").joinpath("defaults.toml").read_text()
    return tomllib.loads(text)


_DEFAULTS = _read_defaults()
#: setting name -> its ``[section]`` in defaults.toml and in user files.
SECTIONS: dict[str, str] = {key: section for section, table in _DEFAULTS.items()
                            for key in table}


def _default(name: str):
    value = _DEFAULTS[SECTIONS[name]][name]
    if isinstance(value, list):
        return tuple(value)
    return None if value == FROM_DETECTOR else value


@dataclass(frozen=True)
class DeriveConfig:
    """Every setting of `dqref derive`; the defaults come from ``defaults.toml``.

    Parameters
    ----------
    clip_sigma, clip_iterations : float, int
        Sigma-clipping of the stacks and of the image statistics.
    rows_per_block : int
        Rows of every input held in memory at once while combining.
    smoothing, smoothing_size : str, int
        ``"box"`` or ``"median"`` filter (odd width in pixels) that normalises the flat.
    low_sigma : float
        Detection: a pixel is DEAD, LOW_QE or OPEN only if its normalised signal is more
        than this many sigma below the clipped mean.
    dead_search, dead_threshold : str, float
        Which detected pixels are DEAD: ``"threshold"``, those below ``dead_threshold``;
        ``"sigma"``, all of them (jwst_reffiles "sigma_rate").
    low_qe_threshold, open_adjacent_threshold : float
        Detected pixels below the first (and not DEAD) are LOW_QE, or OPEN if their 4
        nearest neighbours are all above the second.
    hot_threshold, warm_threshold : float
        Dark rate above which a pixel is HOT, WARM (in the inputs' unit).
    noisy_sigma, noisy_min_images : float, int
        UNRELIABLE_SLOPE: scatter across the darks this many sigma above the mean scatter;
        searched only with at least ``noisy_min_images`` dark images.
    do_not_use : tuple of str
        Flags that also get DO_NOT_USE (names from `DERIVED_FLAGS`).
    reference_border : int or None
        Width of the REFERENCE_PIXEL border; None (``"detector"`` in TOML) means the
        detector table's width, which `dqref.derive.derive_reference` fills in (the numpy
        core, which knows no detector, then flags no border).

    Raises
    ------
    DeriveConfigError
        Any setting of the wrong type or out of range; the message names every bad key
        with its ``[section]``.
    """

    clip_sigma: float = _default("clip_sigma")
    clip_iterations: int = _default("clip_iterations")
    rows_per_block: int = _default("rows_per_block")
    smoothing: str = _default("smoothing")
    smoothing_size: int = _default("smoothing_size")
    low_sigma: float = _default("low_sigma")
    dead_search: str = _default("dead_search")
    dead_threshold: float = _default("dead_threshold")
    low_qe_threshold: float = _default("low_qe_threshold")
    open_adjacent_threshold: float = _default("open_adjacent_threshold")
    hot_threshold: float = _default("hot_threshold")
    warm_threshold: float = _default("warm_threshold")
    noisy_sigma: float = _default("noisy_sigma")
    noisy_min_images: int = _default("noisy_min_images")
    do_not_use: tuple[str, ...] = _default("do_not_use")
    reference_border: int | None = _default("reference_border")

    def __post_init__(self):
        problems: list[str] = []

        def bad(name: str, why: str) -> None:
            problems.append(f"[{SECTIONS[name]}] {name} = {_toml(getattr(self, name))}: {why}")

        for name in ("clip_sigma", "low_sigma", "noisy_sigma"):
            if not _is_number(getattr(self, name)) or not getattr(self, name) > 0:
                bad(name, "must be a number > 0")
        for name, least in (("clip_iterations", 1), ("rows_per_block", 1),
                            ("noisy_min_images", 2)):
            if not _is_integer(getattr(self, name)) or getattr(self, name) < least:
                bad(name, f"must be an integer >= {least}")
        if self.smoothing not in SMOOTHINGS:
            bad("smoothing", f"must be one of {', '.join(map(repr, SMOOTHINGS))}")
        size = self.smoothing_size
        if not _is_integer(size) or size < 3 or size % 2 == 0:
            bad("smoothing_size", "must be an odd integer >= 3 (a window centred on the pixel)")
        if self.dead_search not in DEAD_SEARCHES:
            bad("dead_search", f"must be one of {', '.join(map(repr, DEAD_SEARCHES))}")
        if not _is_number(self.dead_threshold) or not 0 <= self.dead_threshold < 1:
            bad("dead_threshold", "must be a number in [0, 1) (normalised signal)")
        low_qe = self.low_qe_threshold
        if not _is_number(low_qe) or not 0 < low_qe <= 1:
            bad("low_qe_threshold", "must be a number in (0, 1] (normalised signal)")
        elif _is_number(self.dead_threshold) and low_qe <= self.dead_threshold:
            bad("low_qe_threshold", f"must be above dead_threshold ({self.dead_threshold})")
        if not _is_number(self.open_adjacent_threshold) or self.open_adjacent_threshold < 1:
            bad("open_adjacent_threshold",
                "must be a number >= 1 (neighbours brighter than typical)")
        if not _is_number(self.warm_threshold) or not self.warm_threshold > 0:
            bad("warm_threshold", "must be a number > 0 (a dark rate)")
        if not _is_number(self.hot_threshold) or not self.hot_threshold > 0:
            bad("hot_threshold", "must be a number > 0 (a dark rate)")
        elif _is_number(self.warm_threshold) and self.hot_threshold <= self.warm_threshold:
            bad("hot_threshold", f"must be above warm_threshold ({self.warm_threshold})")
        border = self.reference_border
        if border == FROM_DETECTOR:
            border = None
        elif border is not None and (not _is_integer(border) or border < 0):
            bad("reference_border", f"must be an integer >= 0 or {FROM_DETECTOR!r}")
        do_not_use = self._canonical_do_not_use(bad)
        if problems:
            raise DeriveConfigError("; ".join(problems))
        # Frozen: normalising the caller's spelling is the one assignment we allow ourselves.
        object.__setattr__(self, "do_not_use", do_not_use)
        object.__setattr__(self, "reference_border", border)
        for f in fields(self):
            if f.type == "float":
                object.__setattr__(self, f.name, float(getattr(self, f.name)))

    def _canonical_do_not_use(self, bad) -> tuple[str, ...]:
        names = self.do_not_use
        if isinstance(names, str) or not isinstance(names, tuple | list) \
                or not all(isinstance(n, str) for n in names):
            bad("do_not_use", "must be a list of flag names")
            return ()
        canonical = []
        for name in names:
            try:
                known = flags.flag(name).name
            except UnknownFlagError:
                bad("do_not_use", f"{name!r} is not a known flag")
                continue
            if known not in DERIVED_FLAGS:
                bad("do_not_use", f"{known} is not a flag dqref derive sets; choose from "
                                  f"{', '.join(DERIVED_FLAGS)}")
            canonical.append(known)
        return tuple(dict.fromkeys(canonical))

    @classmethod
    def from_toml(cls, path: str | os.PathLike | None = None) -> DeriveConfig:
        """Return the defaults with the keys of the TOML file ``path`` on top.

        Parameters
        ----------
        path : path-like, optional
            A file laid out like ``defaults.toml`` (same ``[sections]``), holding only
            the keys to change. None returns the defaults.

        Raises
        ------
        DeriveConfigError
            The file cannot be read or parsed, has an unknown section or key, or a value
            is of the wrong type or out of range. The message starts with the file name
            and names every bad key.
        """
        if path is None:
            return cls()
        try:
            with open(path, "rb") as stream:
                user = tomllib.load(stream)
        except OSError as error:
            raise DeriveConfigError(f"{path}: cannot read ({error.strerror})") from None
        except tomllib.TOMLDecodeError as error:
            raise DeriveConfigError(f"{path}: not valid TOML ({error})") from None
        changes, problems = {}, []
        for section, table in user.items():
            if not isinstance(table, dict):
                where = f" (it belongs in [{SECTIONS[section]}])" if section in SECTIONS else ""
                problems.append(f"unknown key {section!r} outside any section{where}")
            elif section not in _DEFAULTS:
                problems.append(f"unknown section [{section}]; known: "
                                f"{', '.join(f'[{s}]' for s in _DEFAULTS)}")
            else:
                for key, value in table.items():
                    if SECTIONS.get(key) != section:
                        where = (f"; it belongs in [{SECTIONS[key]}]" if key in SECTIONS
                                 else f"; [{section}] has {', '.join(_DEFAULTS[section])}")
                        problems.append(f"unknown key {key!r} in [{section}]{where}")
                    else:
                        changes[key] = tuple(value) if isinstance(value, list) else value
        if problems:
            raise DeriveConfigError(f"{path}: " + "; ".join(problems))
        try:
            return cls(**changes)
        except DeriveConfigError as error:
            raise DeriveConfigError(f"{path}: {error}") from None

    def settings(self) -> list[tuple[str, str, object]]:
        """Return every setting as ``(section, name, value)``, in ``defaults.toml`` order."""
        return [(SECTIONS[f.name], f.name, getattr(self, f.name)) for f in fields(self)]

    def history(self) -> list[str]:
        """Return one line per setting, ``derive setting [section] name = value`` (TOML)."""
        return [f"derive setting [{section}] {name} = {_toml(value)}"
                for section, name, value in self.settings()]

    def to_toml(self) -> str:
        """Return the settings as a TOML text that `from_toml` reads back to ``self``."""
        lines = []
        for section, name, value in self.settings():
            if f"[{section}]" not in lines:
                lines += ["", f"[{section}]"] if lines else [f"[{section}]"]
            lines.append(f"{name} = {_toml(value)}")
        return "\n".join(lines) + "\n"


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _toml(value) -> str:
    """Show a value as it is written in TOML."""
    if value is None:
        return f'"{FROM_DETECTOR}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


if set(SECTIONS) != {f.name for f in fields(DeriveConfig)}:  # a packaging mistake, not input
    raise RuntimeError(f"{DEFAULTS_FILE} and DeriveConfig list different settings: "
                       f"{sorted(set(SECTIONS) ^ {f.name for f in fields(DeriveConfig)})}")
