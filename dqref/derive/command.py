"""``dqref derive``: a thin skin over `dqref.derive.api.derive_reference`.

Registered on the ``dqref`` app by ``app.command("derive", cls=DeriveCommand)(derive_command)``.

``--flats`` and ``--darks`` take one or more files each: ``--flats f1.fits f2.fits`` (what
a shell glob, ``--flats flats/*.fits``, expands to) as well as ``--flats f1.fits --flats
f2.fits``. click options take a fixed number of values, so `DeriveCommand` spreads each
file list into repeated options before click parses the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer
from typer.core import TyperCommand

from dqref.cli_conventions import print_json, to_toml
from dqref.console import fail, progress, user_errors
from dqref.errors import DQRefError, FileExistsRefusedError

#: dqref.model's defaults, repeated so that building the command tree needs no numpy.
DEFAULT_USEAFTER = "2000-01-01T00:00:00"
DEFAULT_PEDIGREE = "GROUND"

#: Options whose value is a list of files running to the next option.
FILE_LIST_OPTIONS = ("--flats", "--darks")


def spread_file_lists(args: Sequence[str],
                      options: Sequence[str] = FILE_LIST_OPTIONS) -> tuple[list[str], bool]:
    """Rewrite ``--flats a b c`` as ``--flats a --flats b --flats c``.

    A list runs from its option to the next token that starts with ``-`` (an option, or
    ``--``, after which nothing is rewritten); ``--flats=a b`` counts too. Everything else
    is passed through unchanged, so values of other options are never taken as files.

    Parameters
    ----------
    args : sequence of str
        The command line after the command name.
    options : sequence of str
        The options that take file lists.

    Returns
    -------
    args : list of str
        The rewritten command line.
    spread : bool
        Whether any list of two or more files was rewritten.
    """
    rewritten: list[str] = []
    current: str | None = None  # the list option whose files we are reading
    awaiting_first = False  # its first value comes next and needs no repeated option
    spread = False
    for position, arg in enumerate(args):
        if arg == "--":
            rewritten.extend(args[position:])
            break
        name = arg.split("=", 1)[0]
        if arg.startswith("-") and arg != "-":
            current = name if name in options else None
            awaiting_first = current is not None and "=" not in arg
            rewritten.append(arg)
        elif current is not None and not awaiting_first:
            rewritten.extend([current, arg])
            spread = True
        else:
            awaiting_first = False
            rewritten.append(arg)
    return rewritten, spread


class DeriveCommand(TyperCommand):
    """The ``derive`` command: ``--flats``/``--darks`` take file lists (`spread_file_lists`)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if "--show-config" in args:  # before click asks for the required OUTPUT etc.
            _show_config(_option_value(args, "--config"))
            ctx.exit(0)
        rewritten, spread = spread_file_lists(args)
        try:
            return super().parse_args(ctx, rewritten)
        except Exception as error:
            # click's MissingParameter, matched by its ``param`` because typer >= 0.2x
            # raises the one of its vendored copy of click
            if spread and getattr(getattr(error, "param", None), "name", None) == "output":
                ctx.fail("Missing argument 'OUTPUT': give it before --flats/--darks (their file "
                         "lists run to the next option, so a trailing OUTPUT was read as an "
                         "input)")
            raise


def _option_value(args: Sequence[str], option: str) -> str | None:
    """The value of ``option`` in a raw command line (``--config F`` or ``--config=F``)."""
    for position, arg in enumerate(args):
        if arg == option and position + 1 < len(args):
            return args[position + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def _show_config(config: str | None) -> None:
    """Print the derive settings in effect (the defaults, with ``config`` on top) as TOML."""
    from dataclasses import fields

    from dqref.derive.config import FROM_DETECTOR, SECTIONS, DeriveConfig

    try:
        settings = DeriveConfig.from_toml(config)
    except DQRefError as error:
        raise fail("dqref derive", str(error)) from None
    sections: dict[str, dict] = {}
    for item in fields(settings):
        value = getattr(settings, item.name)
        sections.setdefault(SECTIONS[item.name], {})[item.name] = \
            FROM_DETECTOR if value is None else value
    typer.echo(to_toml(sections, comment="dqref derive: the settings in effect "
                                          f"({'defaults + ' + config if config else 'defaults'})"),
               nl=False)


@user_errors("dqref")
def derive_command(
    output: Path = typer.Argument(..., help="The reference file to write (never overwritten)."),
    instrument: str = typer.Option(..., "--instrument", "-i", help="IRIS or LIGER."),
    detector: str = typer.Option(..., "--detector", "-d", help="e.g. IRIS1, IMG, IFU."),
    flats: list[Path] = typer.Option(
        None, "--flats", help="Flat slope images: --flats F1 F2 ... (a glob) or repeated."),
    darks: list[Path] = typer.Option(
        None, "--darks", help="Dark slope images: --darks D1 D2 ... (a glob) or repeated."),
    manual_flags: Path = typer.Option(None, "--flags", help="Manual flags, ORed in last."),
    config: Path = typer.Option(None, "--config", help="TOML overriding the packaged "
                                "defaults (any subset of the keys --show-config prints)."),
    show_config: bool = typer.Option(False, "--show-config",
                                     help="Print the settings in effect as TOML and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON "
                                 "(see the docs, Command-line conventions)."),
    useafter: str = typer.Option(DEFAULT_USEAFTER, help="ISO date-time from which it applies."),
    pedigree: str = typer.Option(DEFAULT_PEDIGREE, help="GROUND, SIMULATION, DUMMY, INFLIGHT."),
    description: str = typer.Option(None, help="One line describing the reference."),
    author: str = typer.Option(None, help="Who made it (default: your login name)."),
    overwrite: bool = typer.Option(False, help="Replace OUTPUT if it exists."),
) -> None:
    """Derive a DQ reference from flats and darks (thresholds: see --show-config)."""
    from dqref.derive.api import derive_reference

    if output.exists() and not overwrite:  # refuse before the long part, not after it
        raise FileExistsRefusedError(f"{output}: exists; refusing to overwrite it "
                                     "(--overwrite replaces it)")
    model, summary = derive_reference(
        instrument, detector, flats or (), darks or (), manual_flags, config,
        progress=progress, useafter=useafter, pedigree=pedigree, description=description,
        author=author)
    model.write(output, overwrite=overwrite)
    if as_json:
        print_json({"output": str(output), "instrument": model.meta.name,
                    "detector": model.meta.detector, "flat_images": summary.flat_images,
                    "dark_images": summary.dark_images,
                    "manual_entries": summary.manual_entries,
                    "rule_counts": {rule: int(count)
                                    for rule, count in summary.rule_counts.items()},
                    "levels": {name: float(level) for name, level in summary.levels.items()},
                    "flags": summary.histogram.to_dict()})
        return
    typer.echo(f"{output}: {model.meta.name} {model.meta.detector}, derived from "
               f"{summary.flat_images} flat and {summary.dark_images} dark images")
    typer.echo(summary.format())
