"""Exceptions raised by dqref.

Every user-facing failure is one of these, so a CLI or a pipeline can tell a bad input
(``DQRefError`` and its children) from a bug (anything else).
"""

from __future__ import annotations


class DQRefError(Exception):
    """Base class of every error dqref raises for bad input or a bad state."""


class UnknownFlagError(DQRefError, ValueError):
    """A flag name or value is not part of the flag table."""


class UnknownDetectorError(DQRefError, ValueError):
    """An instrument or detector is not listed in the detector table."""


class ReferenceFileError(DQRefError):
    """A file cannot be read as a DQ reference (missing, not FITS, wrong layout, bad checksum)."""


class ManualFlagsError(DQRefError, ValueError):
    """A manual flag list has a malformed line."""


class InvalidReferenceError(DQRefError):
    """A reference failed validation.

    Parameters
    ----------
    findings : list of dqref.validation.Finding
        Every problem found, not just the first.
    source : str
        The file or object that was validated.
    """

    def __init__(self, findings, source="reference"):
        self.findings = list(findings)
        self.source = source
        lines = "; ".join(f"{f.where}: {f.message}" for f in self.findings if f.is_error)
        super().__init__(f"{source} is not a valid DQ reference: {lines}")


class FileExistsRefusedError(DQRefError, FileExistsError):
    """Refused to overwrite an existing file."""
