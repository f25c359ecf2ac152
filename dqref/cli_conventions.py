"""What both command lines (``dqref`` and ``dqinit``) share: version, completion, exit codes.

* ``--version`` on each program, from the installed distribution's metadata (the version is
  written once, in pyproject.toml).
* Shell completion (``--install-completion``, ``--show-completion``), typer's own.
* Usage errors (a missing argument, an unknown option, a bad value) are one line on stderr,
  ``dqref cache bestref: error: Missing argument 'DATASET'. (see 'dqref cache bestref
  --help')``, and exit 2: no rich panel. `OneLineUsageErrors` does this for the whole
  command tree, so ``CliRunner`` in the tests sees what a user sees.
* One table of exit codes, `EXIT_CODES`, followed by every command and printed in
  docs/conventions.md.

This module imports only typer: ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

import typer
from typer.core import TyperGroup

from dqref.version import DISTRIBUTION, version  # noqa: F401 (re-exported)

#: Version of the ``--json`` outputs; bumped only when a key changes meaning or goes away.
JSON_SCHEMA_VERSION = 1

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USER_ERROR = 2
#: exit status -> what it means, for every command of both programs.
EXIT_CODES = {
    EXIT_OK: "success: every file was processed (COMPLETE or SKIPPED), valid, or found",
    EXIT_PROBLEMS: "the command ran, and what it checked has problems: an invalid reference "
                   "(validate), a cache problem (verify, adopt), a ramp that FAILED in a "
                   "batch (dqinit run: the other files are still processed), no reference "
                   "found (bestref)",
    EXIT_USER_ERROR: "a user error: bad usage, a missing or unreadable input, a file that "
                     "is not what it claims, a refused overwrite, a disk that is full or "
                     "read only; one line on stderr says what and where, and no output is "
                     "written",
}


def _usage_error_class() -> type[Exception]:
    """click's UsageError, from whichever click typer uses (it may vendor its own copy)."""
    return next(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "UsageError")


def _click_exception_class() -> type[Exception]:
    return next(kind for kind in typer.BadParameter.__mro__
                if kind.__name__ == "ClickException")


class OneLineUsageErrors(TyperGroup):
    """The root group of a program: click's usage errors become one line and exit 2.

    click prints a usage block (typer: a rich panel) for a usage error; a user error here is
    one line naming what is wrong and where to look, like every other error of ours.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  **extra)
        except _usage_error_class() as error:
            typer.echo(usage_error_line(error), err=True)
            sys.exit(EXIT_USER_ERROR)
        except _click_exception_class() as error:
            typer.echo(f"{self.name}: error: {one_line(error.format_message())}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo(f"{self.name}: aborted", err=True)
            sys.exit(EXIT_PROBLEMS)
        sys.exit(status if isinstance(status, int) else EXIT_OK)


def usage_error_line(error) -> str:
    """Return ``command path: error: message (see 'command path --help')`` for a UsageError."""
    context = getattr(error, "ctx", None)
    where = context.command_path if context is not None else "usage"
    hint = f" (see '{where} --help')" if context is not None else ""
    return f"{where}: error: {one_line(error.format_message())}{hint}"


def one_line(text: str) -> str:
    """Collapse whitespace, newlines included, so a message is exactly one line."""
    return " ".join(str(text).split())


def new_app(name: str, help_text: str) -> typer.Typer:
    """Return a program's root app: one-line usage errors, ``--version``, completion.

    Parameters
    ----------
    name : str
        The program name (``dqref``, ``dqinit``).
    help_text : str
        The first lines of ``--help``.
    """
    app = typer.Typer(name=name, cls=OneLineUsageErrors, no_args_is_help=True,
                      add_completion=True, pretty_exceptions_enable=False, help=help_text,
                      # Plain click help: typer's rich help imports rich and markdown-it,
                      # 0.25 s of a 0.45 s --help (issue 15).
                      rich_markup_mode=None,
                      context_settings={"help_option_names": ["-h", "--help"]})

    def print_version(value: bool) -> None:
        if value:
            typer.echo(f"{name} {version()}")
            raise typer.Exit(EXIT_OK)

    @app.callback()
    def root(show_version: bool = typer.Option(  # noqa: B008 (typer's idiom)
            False, "--version", "-V", is_eager=True, callback=print_version,
            help="Print the version and exit.")) -> None:
        pass

    root.__doc__ = help_text
    return app


def print_json(document: Mapping) -> None:
    """Print ``document`` as the stable ``--json`` output (with its ``schema_version``)."""
    typer.echo(json.dumps({"schema_version": JSON_SCHEMA_VERSION, **document}, indent=2))


def to_toml(settings: Mapping[str, object], comment: str = "") -> str:
    """Return ``settings`` as TOML: a Mapping value is a ``[section]``, others are keys.

    Values may be str, bool, int, float or lists of those. Used by ``--show-config`` to
    print the settings in effect in the form a ``--config`` file takes.
    """
    lines = [f"# {comment}"] if comment else []
    lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()
              if not isinstance(value, Mapping)]
    for section, table in settings.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{section}]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string
