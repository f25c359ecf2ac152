"""dqref: create, validate, compare and publish DQ (bad-pixel) references for IRIS and Liger."""

from dqref import flags
from dqref.errors import (
    DQRefError,
    InvalidReferenceError,
    ReferenceFileError,
    UnknownDetectorError,
    UnknownFlagError,
)
from dqref.model import DQModel

__version__ = "0.1.0"

__all__ = [
    "DQModel",
    "DQRefError",
    "InvalidReferenceError",
    "ReferenceFileError",
    "UnknownDetectorError",
    "UnknownFlagError",
    "__version__",
    "flags",
]
