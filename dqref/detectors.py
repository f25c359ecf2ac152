"""The detector table: which instruments and detectors exist, and their full-frame shapes.

The table is data (``detectors.toml`` beside this module), loaded here and nowhere else.
Each detector has one canonical name (the Liger/IRIS pipeline's: ``IMG1``-``IMG4``,
``IMG``, ``IFU``) and optional aliases (``IRIS1``-``IRIS4``, the names of our first
version); every lookup accepts both and answers with the canonical `Detector`.
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
    """One detector: instrument, canonical name, full-frame (rows, columns), border, aliases."""

    instrument: str
    name: str
    shape: tuple[int, int]
    reference_border: int = 0
    aliases: tuple[str, ...] = ()

    @property
    def telescope(self) -> str:
        return TELESCOPES.get(self.instrument, "UNKNOWN")

    @property
    def names(self) -> tuple[str, ...]:
        """The canonical name first, then the aliases."""
        return (self.name, *self.aliases)


@cache
def all_detectors() -> dict[tuple[str, str], Detector]:
    """Return every known detector keyed by (INSTRUMENT, DETECTOR), upper case.

    Only canonical names are keys; `get_detector` and `canonical_detector` also accept
    the aliases.
    """
    text = resources.files("dqref").joinpath("detectors.toml").read_text()
    table = {}
    for instrument, entries in tomllib.loads(text).items():
        for name, entry in entries.items():
            rows, columns = entry["shape"]
            table[(instrument.upper(), name.upper())] = Detector(
                instrument.upper(), name.upper(), (int(rows), int(columns)),
                int(entry.get("reference_border", 0)),
                tuple(str(alias).upper() for alias in entry.get("aliases", ())),
            )
    return table


@cache
def _by_any_name() -> dict[tuple[str, str], Detector]:
    return {(detector.instrument, name): detector
            for detector in all_detectors().values() for name in detector.names}


def instruments() -> list[str]:
    """Return the known instrument names (upper case)."""
    return sorted({instrument for instrument, _ in all_detectors()})


def canonical_instrument(instrument: object) -> str:
    """Return an instrument name as the table spells it (``'Liger'`` -> ``'LIGER'``)."""
    return str(instrument if instrument is not None else "").strip().upper()


def canonical_detector(instrument: object, detector: object) -> str:
    """Return the canonical name of a detector name or alias (``IRIS1`` -> ``IMG1``).

    An unknown name comes back stripped and upper-cased, so callers can pass any header
    value through this without deciding first whether it is known.
    """
    key = (canonical_instrument(instrument), canonical_instrument(detector))
    found = _by_any_name().get(key)
    return found.name if found else key[1]


def get_detector(instrument: str, detector: str) -> Detector:
    """Return the `Detector` for an instrument and detector name or alias (any case).

    Raises
    ------
    UnknownDetectorError
        The pair is not listed in ``detectors.toml``; the message names the file and
        the valid choices.
    """
    instrument_key = canonical_instrument(instrument)
    detector_key = canonical_instrument(detector)
    if instrument_key not in instruments():
        raise UnknownDetectorError(
            f"unknown instrument {instrument!r}; {TABLE_FILE} lists {', '.join(instruments())}"
        )
    try:
        return _by_any_name()[(instrument_key, detector_key)]
    except KeyError:
        known = [name for detector in all_detectors().values()
                 if detector.instrument == instrument_key for name in detector.names]
        raise UnknownDetectorError(
            f"unknown detector {detector!r} for {instrument_key}; {TABLE_FILE} lists "
            f"{', '.join(sorted(known))}"
        ) from None
