"""The file-system rules of the cache: what may be read, where we may write, how it fails.

* `regular_file`: a dataset or reference is read only when it is a regular file (after
  links); a FIFO or a device would block or never end.
* `inside`: the one rule for writing: every folder and file we write into must resolve
  (``os.path.realpath``) inside the cache root, so a folder replaced by a link to another
  place is refused before anything is written.
* `writing`: an ``OSError`` from a write (disk full, read-only file system, no permission)
  becomes one `CacheWriteError` line naming the path.
* `leftover_temporaries`: the temporary files a killed writer left (`dqref.atomic` names).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from dqref.atomic import temporary_target
from dqref.cache.errors import CacheWriteError, NotARegularFileError, OutsideCacheError
from dqref.errors import DQRefError


def regular_file(path: str | os.PathLike) -> Path:
    """Return ``path`` if it is an existing regular file (links are followed), else raise.

    The one rule of `dqref.fitsfile.regular_file`; nothing is opened.

    Raises
    ------
    NotARegularFileError
        Missing, unreadable, or a FIFO, device, socket or directory; the message says which.
    """
    from dqref import fitsfile  # numpy and astropy: only when a user's file is read

    return fitsfile.regular_file(path, NotARegularFileError)


def inside(root: Path, path: str | os.PathLike) -> Path:
    """Return ``path`` if it resolves inside ``root`` (itself resolved), else raise.

    ``path`` need not exist yet: the part that exists is resolved, links included, which
    is where a write would land.

    Raises
    ------
    OutsideCacheError
        The path, or a folder on the way to it, links outside ``root``.
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise OutsideCacheError(f"{path} resolves to {real}, outside the cache {root}; "
                                "refusing to write there")
    return path


def write_error(error: OSError, path: str | os.PathLike) -> CacheWriteError:
    """Return the one-line error for an ``OSError`` raised while writing ``path``."""
    reason = error.strerror or str(error) or type(error).__name__
    return CacheWriteError(f"cannot write {path}: {reason}")


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into a `CacheWriteError` naming ``path``.

    ``path`` is the file or folder the block writes (its final name, not a temporary
    one), so the message names what the user knows. dqref's own errors pass unchanged.
    """
    try:
        yield
    except DQRefError:
        raise
    except OSError as error:
        raise write_error(error, path) from error


def leftover_temporaries(folders: Iterable[Path]) -> list[Path]:
    """Return the temporary files of `dqref.atomic` in ``folders``, sorted.

    Only regular files with the exact temporary-name pattern count: a link or a folder so
    named, or a file of another program, is never reported (so never removed).
    """
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if temporary_target(path.name) and stat.S_ISREG(path.lstat().st_mode):
                found.append(path)
    return sorted(found)
