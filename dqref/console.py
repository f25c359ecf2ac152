"""Terminal helpers shared by the typer apps: one-line user errors and progress bars.

User errors become one line on stderr and exit status 2; anything else is a bug and keeps
its traceback. A user error is what a user's file or disk can cause: a `DQRefError`, any
OSError (a missing file, a full or read-only disk, a link loop), a UnicodeError (text that
is not in the expected encoding) and the parse errors of the libraries that read users'
files (astropy's VerifyError, crds's CrdsError). `user_errors` is the one place that turns
them into lines; the readers make sure the line names the file.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import typer

from dqref.errors import DQRefError

#: The exception classes that are user errors (see also `is_user_error`).
USER_ERRORS = (DQRefError, OSError, UnicodeError)
#: (module, class) of outside parse errors, named so this module imports neither library.
PARSE_ERRORS = {("astropy.io.fits.verify", "VerifyError"), ("crds.core.exceptions", "CrdsError")}
USER_ERROR_EXIT = 2
T = TypeVar("T")


def fail(program: str, message: str, code: int = USER_ERROR_EXIT) -> typer.Exit:
    """Print ``program: error: message`` on stderr and return the Exit to raise."""
    typer.echo(f"{program}: error: {message}", err=True)
    return typer.Exit(code)


def user_errors(program: str) -> Callable:
    """Decorate a command so user errors print one clear line and exit non-zero."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except Exception as error:
                if not is_user_error(error):
                    raise
                raise fail(program, one_line(error)) from None

        return wrapper

    return decorate


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is a user's (bad file, full disk), not a bug (module docstring)."""
    return isinstance(error, USER_ERRORS) or any(
        (kind.__module__, kind.__name__) in PARSE_ERRORS for kind in type(error).__mro__)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Yield ``items`` with a rich progress bar on a terminal; silently otherwise."""
    items = list(items) if total is None else items
    count = total if total is not None else len(items)
    if not sys.stderr.isatty() or count < 2:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=description, total=count, transient=True,
                     console=_stderr_console())


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def one_line(error: BaseException) -> str:
    """Return the one line a user error prints (after ``program: error:``).

    An OSError reads ``file: reason`` (``a -> b: reason`` for a rename or link), a
    UnicodeError ``cannot decode text: ...``, an outside parse error ``VerifyError: ...``.
    Whitespace runs become one space; other unprintable characters are escaped.
    """
    if isinstance(error, DQRefError):
        text = str(error) or type(error).__name__
    elif isinstance(error, OSError) and error.strerror:
        names = " -> ".join(os.fsdecode(name) if isinstance(name, bytes | os.PathLike)
                            else str(name) for name in (error.filename, error.filename2)
                            if name is not None)
        text = f"{names}: {error.strerror}" if names else error.strerror
    elif isinstance(error, UnicodeError):
        verb = "encode" if isinstance(error, UnicodeEncodeError) else "decode"
        text = f"cannot {verb} text: {error}"
    elif isinstance(error, OSError):
        text = str(error) or type(error).__name__
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
