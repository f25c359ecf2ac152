"""The ``dqref`` command: create, validate and inspect DQ references, manage the cache.

A thin skin: each command parses its arguments, calls one library function and prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from dqref.cache.cli import app as cache_app
from dqref.console import fail, progress, user_errors
from dqref.create import create_reference
from dqref.derive.command import DeriveCommand, derive_command
from dqref.errors import ReferenceFileError
from dqref.model import DEFAULT_PEDIGREE, DEFAULT_USEAFTER, DQModel

app = typer.Typer(
    name="dqref", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Create, validate, compare and publish DQ (bad-pixel) references for IRIS and Liger.",
)

app.add_typer(cache_app, name="cache")
app.command("derive", cls=DeriveCommand)(derive_command)


@app.command()
@user_errors("dqref")
def create(
    output: Path = typer.Argument(..., help="The reference file to write (never overwritten)."),
    instrument: str = typer.Option(..., "--instrument", "-i", help="IRIS or LIGER."),
    detector: str = typer.Option(..., "--detector", "-d", help="e.g. IRIS1, IMG, IFU."),
    useafter: str = typer.Option(DEFAULT_USEAFTER, help="ISO date-time from which it applies."),
    pedigree: str = typer.Option(DEFAULT_PEDIGREE,
                                 help="GROUND, SIMULATION, DUMMY or 'INFLIGHT start end'."),
    description: str = typer.Option(None, help="One line describing the reference."),
    author: str = typer.Option(None, help="Who made it (default: your login name)."),
    manual_flags: Path = typer.Option(None, "--flags",
                                      help="Manual flag list, jwst_reffiles format (x y FLAG)."),
    overwrite: bool = typer.Option(False, help="Replace OUTPUT if it exists."),
) -> None:
    """Create a full-frame DQ reference, optionally with manual flags."""
    model = create_reference(instrument, detector, manual_flags, useafter=useafter,
                             pedigree=pedigree, description=description, author=author)
    model.write(output, overwrite=overwrite)
    counts = model.histogram()
    typer.echo(f"{output}: {model.meta.name} {model.meta.detector}, {counts.flagged} flagged "
               f"of {counts.total} pixels")


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Reference files to check."),
    strict: bool = typer.Option(False, help="Treat warnings as errors."),
    roundtrip: bool = typer.Option(False, help="Also run the DQ step on a synthetic ramp and "
                                   "check every flag arrives in PIXELDQ/GROUPDQ."),
    config: Path = typer.Option(None, help="TOML overriding dqref/validation.toml settings."),
) -> None:
    """Check references; print one line per finding. Exit 0 if all are valid, 1 otherwise.

    Errors always fail; warnings fail only with --strict. docs/validation.md lists the rules.
    """
    from dqref.cache.crds_adapter import reference_checks
    from dqref.semantics import ValidationConfig, ValidationConfigError
    from dqref.validation import validate as run_rules

    try:
        settings = ValidationConfig.from_toml(config)
    except ValidationConfigError as error:
        raise fail("dqref", str(error)) from None

    all_valid = True
    for path in progress(files, "validating"):
        try:
            model = DQModel.read(path)
        except ReferenceFileError as error:
            typer.echo(f"error: {error}")
            all_valid = False
            continue
        findings = run_rules(model, config=settings)
        if roundtrip and not [f for f in findings if f.is_error]:
            for check in reference_checks():  # the round trip, registered by dqinit
                findings += check(model, path)
        failing = [f for f in findings if f.is_error or strict]
        for finding in findings:
            typer.echo(finding.format(str(path)))
        if failing:
            all_valid = False
        else:
            warnings = len(findings)
            typer.echo(f"{path}: valid" + (f" ({warnings} warnings)" if warnings else ""))
    raise typer.Exit(0 if all_valid else 1)


@app.command()
@user_errors("dqref")
def histogram(
    file: Path = typer.Argument(..., help="A DQ reference."),
    as_json: bool = typer.Option(False, "--json", help="Print {total, good, flags} as JSON."),
    plot: Path = typer.Option(None, "--plot", help="Also draw a bar chart (log scale) to PNG."),
) -> None:
    """Count the pixels carrying each flag (each bit counted separately)."""
    counts = DQModel.read(file).histogram()
    if as_json:
        typer.echo(json.dumps(counts.to_dict(), indent=2))
    else:
        typer.echo(f"{file}\n{counts.format_table()}")
    if plot is not None:
        from dqref.pictures import plot_histogram

        plot_histogram(counts, plot, title=file.name)


@app.command()
@user_errors("dqref")
def diff(
    new: Path = typer.Argument(..., help="The new reference."),
    old: Path = typer.Argument(None, help="The reference to compare with (default: the "
                               "one the cache's current context selects for NEW's slot)."),
    against_cache: bool = typer.Option(False, "--against-cache",
                                       help="Compare with what the cache's current context "
                                            "selects for NEW's detector/subarray/useafter "
                                            "(the default when OLD is not given)."),
    path: Path = typer.Option(None, "--path", help="Cache root (with --against-cache)."),
    list_: int = typer.Option(0, "--list", help="Print the first N changed pixels."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    png: Path = typer.Option(None, "--png", help="Write a picture of where changes are."),
) -> None:
    """What changed between two masks: per flag gained/lost/unchanged, newly bad/good."""
    from dqref.compare import diff_references

    if old is not None and against_cache:
        raise fail("dqref", "diff: give OLD or --against-cache, not both")
    new_model = DQModel.read(new)
    if old is None:
        from dqref.cache.local_cache import LocalCache

        old = LocalCache(path).current_reference_for(new_model)
    result = diff_references(new_model, DQModel.read(old))
    if as_json:
        typer.echo(json.dumps({"new": str(new), "old": str(old), **result.to_dict(list_)},
                              indent=2))
    else:
        typer.echo(f"new: {new}\nold: {old}\n{result.format_report(list_)}")
    if png is not None:
        from dqref.pictures import plot_diff

        plot_diff(result, png)
        typer.echo(f"picture: {png}", err=True)


@app.command()
@user_errors("dqref")
def show(
    file: Path = typer.Argument(..., help="A DQ reference."),
    png: Path = typer.Option(..., "--png", help="The picture to write."),
    max_pixels: int = typer.Option(512, help="Blocks per side after max-pooling."),
) -> None:
    """Draw the mask, downsampled by max-pooling so isolated bad pixels stay visible."""
    from dqref.pictures import plot_mask

    model = DQModel.read(file)
    plot_mask(model.dq, png, max_pixels=max_pixels,
              title=f"{file.name}: {model.meta.name} {model.meta.detector}")
    typer.echo(str(png))


def main() -> None:
    """Entry point of the ``dqref`` console script."""
    app()


if __name__ == "__main__":
    main()
