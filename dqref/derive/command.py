"""``dqref derive``: a thin skin over `dqref.derive.api.derive_reference`.

Registered on the ``dqref`` app by ``app.command("derive")(derive_command)``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from dqref.console import progress, user_errors
from dqref.derive.api import derive_reference
from dqref.errors import FileExistsRefusedError
from dqref.model import DEFAULT_PEDIGREE, DEFAULT_USEAFTER


@user_errors("dqref")
def derive_command(
    output: Path = typer.Argument(..., help="The reference file to write (never overwritten)."),
    instrument: str = typer.Option(..., "--instrument", "-i", help="IRIS or LIGER."),
    detector: str = typer.Option(..., "--detector", "-d", help="e.g. IRIS1, IMG, IFU."),
    flats: list[Path] = typer.Option(None, "--flats", help="Flat slope images (repeatable)."),
    darks: list[Path] = typer.Option(None, "--darks", help="Dark slope images (repeatable)."),
    manual_flags: Path = typer.Option(None, "--flags", help="Manual flags, ORed in last."),
    config: Path = typer.Option(None, "--config", help="TOML overriding defaults.toml."),
    useafter: str = typer.Option(DEFAULT_USEAFTER, help="ISO date-time from which it applies."),
    pedigree: str = typer.Option(DEFAULT_PEDIGREE, help="GROUND, SIMULATION, DUMMY, INFLIGHT."),
    description: str = typer.Option(None, help="One line describing the reference."),
    author: str = typer.Option(None, help="Who made it (default: your login name)."),
    overwrite: bool = typer.Option(False, help="Replace OUTPUT if it exists."),
) -> None:
    """Derive a DQ reference from flats and darks (thresholds: dqref/derive/defaults.toml)."""
    if output.exists() and not overwrite:  # refuse before the long part, not after it
        raise FileExistsRefusedError(f"{output}: exists; refusing to overwrite it "
                                     "(--overwrite replaces it)")
    model, summary = derive_reference(
        instrument, detector, flats or (), darks or (), manual_flags, config,
        progress=progress, useafter=useafter, pedigree=pedigree, description=description,
        author=author)
    model.write(output, overwrite=overwrite)
    typer.echo(f"{output}: {model.meta.name} {model.meta.detector}, derived from "
               f"{summary.flat_images} flat and {summary.dark_images} dark images")
    typer.echo(summary.format())
