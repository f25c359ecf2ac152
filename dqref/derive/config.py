"""Settings of the bad-pixel search: a frozen dataclass that validates itself.

Defaults are data (``defaults.toml`` beside this module); a user TOML overrides any key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from importlib import resources

from dqref import flags
from dqref.errors import DQRefError


class DeriveConfigError(DQRefError, ValueError):
    """A derive setting is unknown or out of range."""


@dataclass(frozen=True)
class DeriveConfig:
    """Every threshold of `dqref derive` (see ``dqref/derive/defaults.toml``)."""

    clip_sigma: float
    rows_per_block: int
    smoothing: str
    smoothing_size: int
    dead_search: str
    dead_threshold: float
    dead_sigma: float
    low_qe_threshold: float
    open_threshold: float
    adj_open_threshold: float
    hot_threshold: float
    warm_threshold: float
    noisy_sigma: float
    do_not_use: tuple[str, ...]
    reference_border: int

    def __post_init__(self):
        problems = []
        for name in ("clip_sigma", "dead_sigma", "noisy_sigma", "adj_open_threshold",
                     "hot_threshold"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0")
        if self.rows_per_block < 1 or self.smoothing_size < 3:
            problems.append("rows_per_block must be >= 1 and smoothing_size >= 3")
        if self.smoothing not in ("box", "median"):
            problems.append(f"smoothing must be 'box' or 'median', not {self.smoothing!r}")
        if self.dead_search not in ("absolute", "sigma"):
            problems.append(f"dead_search must be 'absolute' or 'sigma', not "
                            f"{self.dead_search!r}")
        if not 0 <= self.dead_threshold < self.low_qe_threshold <= 1:
            problems.append("need 0 <= dead_threshold < low_qe_threshold <= 1")
        if not 0 <= self.warm_threshold < self.hot_threshold:
            problems.append("need 0 <= warm_threshold < hot_threshold")
        if self.reference_border < -1:
            problems.append("reference_border must be -1 (detector table), 0 or a width")
        for name in self.do_not_use:
            if name not in flags.PIXEL:
                problems.append(f"do_not_use: {name!r} is not a known flag")
        if problems:
            raise DeriveConfigError("; ".join(problems))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> DeriveConfig:
        """Return the defaults, with a user TOML's keys (same sections) on top."""
        sections = tomllib.loads(resources.files("dqref.derive").joinpath(
            "defaults.toml").read_text())
        values = {key: value for section in sections.values() for key, value in section.items()}
        if path is not None:
            try:
                user = tomllib.loads(open(path).read())
            except (OSError, tomllib.TOMLDecodeError) as error:
                raise DeriveConfigError(f"{path}: {error}") from None
            for section, entries in user.items():
                if section not in sections or not isinstance(entries, dict):
                    raise DeriveConfigError(f"{path}: unknown section [{section}]; known: "
                                            f"{', '.join(sections)}")
                for key, value in entries.items():
                    if key not in sections[section]:
                        raise DeriveConfigError(f"{path}: unknown key {key!r} in [{section}]")
                    values[key] = value
        values["do_not_use"] = tuple(str(n).upper() for n in values["do_not_use"])
        try:
            return cls(**{f.name: values[f.name] for f in fields(cls)})
        except DeriveConfigError as error:
            raise DeriveConfigError(f"{path or 'defaults.toml'}: {error}") from None

    def history(self) -> list[str]:
        """One HISTORY line per setting, for provenance."""
        return [f"derive setting {f.name} = {getattr(self, f.name)!r}" for f in fields(self)]
