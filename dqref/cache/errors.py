"""Exceptions of the local CRDS cache; each is a `dqref.errors.DQRefError`.

A command line prints any of them as one line naming the file or folder concerned.
"""

from __future__ import annotations

from dqref.errors import DQRefError


class CacheError(DQRefError):
    """The cache is missing, corrupted, or refused an operation."""


class DuplicateReferenceError(CacheError):
    """The same reference content is already registered."""


class SlotTakenError(CacheError):
    """A reference already occupies this (detector, subarray, useafter) slot."""


class OutsideCacheError(CacheError):
    """A folder or file to be written resolves (through a link) outside the cache root."""


class CacheWriteError(CacheError):
    """The file system refused a write (full, read only, no permission); names the path."""


class NotARegularFileError(DQRefError):
    """A FIFO, a device or a folder was given where a file is read (it could block).

    Not a `CacheError`: any reader of user files may raise it
    (`dqref.cache.filesystem.regular_file`).
    """


class CacheLockError(CacheError):
    """The cache lock cannot be taken: a symbolic link, unreadable, or held by another process."""
