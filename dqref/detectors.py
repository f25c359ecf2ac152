"""The detector table: which instruments and detectors exist, and their full-frame shapes.

The table is data (``detectors.toml`` beside this module), loaded here and nowhere else.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from dqref.errors import UnknownDetectorError

TABLE_FILE = "dqref/detectors.toml"
#: Which telescope each instrument is mounted on (TELESCOP keyword).
TELESCOPES = {"IRIS": "TMT", "LIGER": "KECK"}


@dataclass(frozen=True)
class Detector:
    """One detector: instrument, name, full-frame (rows, columns), reference-pixel border."""

    instrument: str
    name: str
    shape: tuple[int, int]
    reference_border: int = 0

    @property
    def telescope(self) -> str:
        return TELESCOPES.get(self.instrument, "UNKNOWN")


@cache
def all_detectors() -> dict[tuple[str, str], Detector]:
    """Return every known detector keyed by (INSTRUMENT, DETECTOR), upper case."""
    text = resources.files("dqref").joinpath("detectors.toml").read_text()
    table = {}
    for instrument, entries in tomllib.loads(text).items():
        for name, entry in entries.items():
            rows, columns = entry["shape"]
            table[(instrument.upper(), name.upper())] = Detector(
                instrument.upper(), name.upper(), (int(rows), int(columns)),
                int(entry.get("reference_border", 0)),
            )
    return table


def instruments() -> list[str]:
    """Return the known instrument names."""
    return sorted({instrument for instrument, _ in all_detectors()})


def get_detector(instrument: str, detector: str) -> Detector:
    """Return the `Detector` for an instrument and detector name (case-insensitive).

    Raises
    ------
    UnknownDetectorError
        The pair is not listed in ``detectors.toml``; the message names the file and
        the valid choices.
    """
    instrument_key = str(instrument or "").upper()
    detector_key = str(detector or "").upper()
    table = all_detectors()
    if instrument_key not in instruments():
        raise UnknownDetectorError(
            f"unknown instrument {instrument!r}; {TABLE_FILE} lists {', '.join(instruments())}"
        )
    try:
        return table[(instrument_key, detector_key)]
    except KeyError:
        known = sorted(name for inst, name in table if inst == instrument_key)
        raise UnknownDetectorError(
            f"unknown detector {detector!r} for {instrument_key}; {TABLE_FILE} lists "
            f"{', '.join(known)}"
        ) from None
