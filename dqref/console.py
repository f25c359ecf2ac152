"""Terminal helpers shared by the typer apps: one-line user errors and progress bars.

User errors (bad input, missing files) become one line on stderr and exit status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import typer

from dqref.errors import DQRefError

USER_ERRORS = (DQRefError, FileNotFoundError, PermissionError, IsADirectoryError,
               NotADirectoryError)
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
            except USER_ERRORS as error:
                raise fail(program, _one_line(error)) from None

        return wrapper

    return decorate


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


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
        text = f"{error.filename}: {error.strerror or text}"
    return " ".join(text.split())
