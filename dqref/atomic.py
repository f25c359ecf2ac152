"""Publish a file atomically: write to a temporary name beside it, then rename.

A crash at any point leaves either the old state or the complete new file, never a
partial file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

from dqref.errors import FileExistsRefusedError

#: The names `temporary_sibling` gives: ``.<final name>.<12 lower-case hex digits>.tmp``.
TEMPORARY_NAME = re.compile(r"\.(?P<target>.+)\.[0-9a-f]{12}\.tmp")


def temporary_sibling(path: Path) -> Path:
    """Return a unique hidden temporary name in the same directory as ``path``."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def temporary_target(name: str) -> str | None:
    """Return the final name a `temporary_sibling` name was for, or None if it is not one.

    A process killed while writing leaves such a name behind; ``dqref cache clean``
    removes them and the cache counts their serials as taken.
    """
    match = TEMPORARY_NAME.fullmatch(name)
    return match.group("target") if match else None


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success publish it as ``path``.

    Parameters
    ----------
    path : path-like
        The final name.
    overwrite : bool
        Replace an existing file. When False an existing ``path`` is never touched,
        even if another process creates it while we write (``os.link`` fails then).

    Raises
    ------
    FileExistsRefusedError
        ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsRefusedError(f"{path}: exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    try:
        yield temporary
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise FileExistsRefusedError(
                    f"{path}: exists; refusing to overwrite it"
                ) from None
    finally:
        temporary.unlink(missing_ok=True)


def publish_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    """Atomically write ``text`` to ``path`` (see `atomic_output`)."""
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_text(text)
    return Path(path)
