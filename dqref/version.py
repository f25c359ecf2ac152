"""The package's version, read once from the installed distribution (pyproject.toml is its
one source). Imports nothing heavy, so the library and both programs can ask for it."""

from __future__ import annotations

from functools import cache

DISTRIBUTION = "ligeriri-dq"


@cache
def version() -> str:
    """Return the installed version of the distribution."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version(DISTRIBUTION)
    except PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"
