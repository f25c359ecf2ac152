"""Exceptions raised by dqinit (all are user errors: bad input or a bad reference)."""

from dqref.errors import DQRefError


class DQInitError(DQRefError):
    """Base class of the DQ step's errors."""


class RampFormatError(DQInitError):
    """The science file is not a usable ramp (missing SCI, wrong DQ shape or dtype, ...)."""


class SubarrayError(DQInitError, ValueError):
    """The science region does not lie inside the reference."""


class ReferenceSelectionError(DQInitError):
    """CRDS selected a reference that is missing or invalid."""


class MaskShapeError(DQInitError, ValueError):
    """A mask (reference or user DQ) does not match the science image plane."""
