"""Exceptions raised by dqref.

Every user-facing failure is one of these, so a CLI or a pipeline can tell a bad input
(``DQRefError`` and its children) from a bug (anything else).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


class DQRefError(Exception):
    """Base class of every error dqref raises for bad input or a bad state."""


class UnknownFlagError(DQRefError, ValueError):
    """A flag name or value is not part of the flag table."""


class UnknownDetectorError(DQRefError, ValueError):
    """An instrument or detector is not listed in the detector table."""


class ReferenceFileError(DQRefError):
    """A file cannot be read as a DQ reference (missing, not FITS, wrong layout, bad checksum)."""


class DQDefError(ReferenceFileError):
    """A ``DQ_DEF`` table cannot be trusted: a VALUE is not 2**BIT, a BIT is outside 0..31,
    or a bit or a flag is defined twice. Applying it would move flags silently."""


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


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Make every OSError raised while writing ``path`` name ``path``.

    A failed ``write`` (a full disk, a file-size limit) carries no file name, a write
    through a temporary file names the temporary, and numpy's ``tofile`` (which astropy
    uses) reports a short write without an errno; the user wants to hear about ``path``
    and why. The error stays an OSError of the same errno, so
    `dqref.console.user_errors` turns it into one line. `DQRefError` passes unchanged.
    """
    try:
        yield
    except DQRefError:
        raise
    except OSError as error:
        reason = error.strerror or (f"cannot be written ({error}; the disk is full or the "
                                    "file is too large)")
        raise OSError(error.errno, reason, os.fspath(path)) from error
