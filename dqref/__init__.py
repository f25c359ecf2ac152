"""dqref: create, validate, compare and publish DQ (bad-pixel) references for IRIS and Liger.

The names below are loaded on first use, so that ``dqref --help`` and the light commands
do not pay for numpy and astropy.
"""

from __future__ import annotations

from dqref.errors import (
    DQRefError,
    InvalidReferenceError,
    ReferenceFileError,
    UnknownDetectorError,
    UnknownFlagError,
)
from dqref.lazy import lazy_attributes

_EXPORTS = {"DQModel": "dqref.model", "flags": "dqref.flags"}
__all__ = ["DQModel", "DQRefError", "InvalidReferenceError", "ReferenceFileError",
           "UnknownDetectorError", "UnknownFlagError", "__version__", "flags"]
_load = lazy_attributes(__name__, _EXPORTS, globals())


def __getattr__(name: str):
    if name == "__version__":  # one source: the installed distribution's metadata
        from dqref.version import version

        return version()
    return _load(name)
