"""The ``dqinit`` command: run the DQ initialization step on ramps (a thin skin)."""

from __future__ import annotations

from pathlib import Path

import typer

from dqinit.step import DQInitStep
from dqref.console import USER_ERRORS, fail, progress

app = typer.Typer(name="dqinit", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="The DQ initialization step of the IRIS/Liger ramp calibration.")


@app.callback()
def _main() -> None:
    """The DQ initialization step of the IRIS/Liger ramp calibration."""


@app.command()
def run(
    inputs: list[Path] = typer.Argument(..., help="Raw ramp files."),
    output: Path = typer.Option(None, "--output", "-o", help="Output file (one input only)."),
    output_dir: Path = typer.Option(None, "--output-dir", help="Folder for the outputs."),
    override_dq: Path = typer.Option(None, "--override-dq",
                                     help="Use this DQ reference instead of CRDS."),
    user_dq: Path = typer.Option(None, "--user-dq", help="Extra 2D mask ORed in."),
    crds_path: Path = typer.Option(None, "--crds-path",
                                   help="Local CRDS cache (default: $CRDS_PATH, ~/crds_cache)."),
    in_place: bool = typer.Option(False, "--in-place", help="Update the inputs themselves."),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
) -> None:
    """Apply the CRDS-selected DQ reference to each ramp; print reference and status.

    Exit status is 1 if any file failed (the others are still processed), 2 for bad usage.
    """
    if output and len(inputs) > 1:
        raise fail("dqinit", "--output takes one input; use --output-dir for several")
    if output and in_place:
        raise fail("dqinit", "--output and --in-place exclude each other")
    step = DQInitStep(crds_path=crds_path, override_dq=override_dq, user_dq=user_dq)
    failures = 0
    for path in progress(inputs, "dqinit"):
        try:
            result = step.run(path, output=output, output_dir=output_dir, in_place=in_place,
                              overwrite=overwrite)
        except USER_ERRORS as error:
            failures += 1
            typer.echo(f"{path}: FAILED: {' '.join(str(error).split())}", err=True)
            continue
        typer.echo(f"{path}: {result.status} reference={result.reference or 'N/A'} "
                   f"context={result.context} -> {result.output}")
    if failures:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``dqinit`` console script."""
    app()


if __name__ == "__main__":
    main()
