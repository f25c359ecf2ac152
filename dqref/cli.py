"""The ``dqref`` command: create, validate and inspect DQ references, manage the cache.

A thin skin: each command parses its arguments, calls one library function and prints.
Heavy modules (numpy, astropy, crds, scipy) are imported inside the commands that use
them, so ``dqref --help`` and ``dqref --version`` start in a fraction of a second.
Exit codes and ``--json`` follow `dqref.cli_conventions` (docs/conventions.md).
"""

from __future__ import annotations

from pathlib import Path

import typer

from dqref.cache.cli import app as cache_app
from dqref.cli_conventions import (
    EXIT_OK,
    EXIT_PROBLEMS,
    new_app,
    print_json,
    to_toml,
)
from dqref.console import fail, progress, user_errors
from dqref.derive.command import DeriveCommand, derive_command

#: The defaults of `create` (also dqref.model's; repeated so --help needs no numpy).
DEFAULT_USEAFTER = "2000-01-01T00:00:00"
DEFAULT_PEDIGREE = "GROUND"

app = new_app("dqref", "Create, validate, compare and publish DQ (bad-pixel) references "
                       "for IRIS and Liger.")
app.add_typer(cache_app, name="cache")
app.command("derive", cls=DeriveCommand)(derive_command)


@app.command()
@user_errors("dqref")
def create(
    output: Path = typer.Argument(..., help="The reference file to write (never overwritten)."),
    instrument: str = typer.Option(..., "--instrument", "-i", help="IRIS or LIGER."),
    detector: str = typer.Option(..., "--detector", "-d", help="e.g. IMG1, IMG, IFU."),
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
    from dqref.create import create_reference

    model = create_reference(instrument, detector, manual_flags, useafter=useafter,
                             pedigree=pedigree, description=description, author=author)
    model.write(output, overwrite=overwrite)
    counts = model.histogram()
    typer.echo(f"{output}: {model.meta.name} {model.meta.detector}, {counts.flagged} flagged "
               f"of {counts.total} pixels")


@app.command()
@user_errors("dqref")
def validate(
    files: list[Path] = typer.Argument(None, show_default=False,
                                       help="Reference files to check."),
    strict: bool = typer.Option(False, help="Treat warnings as errors."),
    roundtrip: bool = typer.Option(False, help="Also run the DQ step on a synthetic ramp and "
                                   "check every flag arrives in PIXELDQ/GROUPDQ."),
    config: Path = typer.Option(None, help="TOML overriding the packaged validation "
                                "settings (see --show-config)."),
    show_config: bool = typer.Option(False, "--show-config",
                                     help="Print the settings in effect as TOML and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON report instead of "
                                 "lines (schema: the docs, Command-line conventions)."),
) -> None:
    """Check references. Exit 0 if all are valid, 1 if any is not, 2 if one cannot be read.

    Findings (errors and warnings, one line each) go to stderr; one verdict line per file
    goes to stdout. Errors always fail; warnings fail only with --strict.
    The rules are listed in the docs (Validation).
    """
    from dqref.validation import ValidationConfig

    settings = ValidationConfig.from_toml(config)
    if show_config:
        typer.echo(_validation_settings_toml(settings), nl=False)
        raise typer.Exit(EXIT_OK)
    if not files:
        raise fail("dqref validate", "give at least one reference file (or --show-config)")
    reports = [_validate_one(path, settings, strict, roundtrip)
               for path in progress(files, "validating")]
    all_valid = all(report["valid"] for report in reports)
    if as_json:
        print_json({"valid": all_valid, "files": reports})
    else:
        for report in reports:
            for finding in report["findings"]:
                typer.echo(finding["line"], err=True)
            typer.echo(_verdict(report))
    unreadable = any(report["unreadable"] for report in reports)
    raise typer.Exit(2 if unreadable else EXIT_OK if all_valid else EXIT_PROBLEMS)


def _validate_one(path: Path, settings, strict: bool, roundtrip: bool) -> dict:
    """Return the JSON record of one file: path, valid, unreadable, errors, warnings, findings."""
    from dqref.cache.crds_adapter import reference_checks
    from dqref.errors import ReferenceFileError
    from dqref.model import DQModel
    from dqref.validation import validate as run_rules

    try:
        model = DQModel.read(path)
    except ReferenceFileError as error:
        message = " ".join(str(error).split()).removeprefix(f"{path}: ")
        return {"path": str(path), "valid": False, "unreadable": True, "errors": 1,
                "warnings": 0, "findings": [{"rule": "readable", "severity": "error",
                                             "where": "", "message": message,
                                             "line": f"{path}: error: {message}"}]}
    findings = run_rules(model, config=settings)
    if roundtrip and not [f for f in findings if f.is_error]:
        for check in reference_checks():  # the round trip, registered by dqinit
            findings += check(model, path)
    errors = sum(f.is_error for f in findings)
    return {"path": str(path), "valid": not (errors or (strict and findings)),
            "unreadable": False, "errors": errors, "warnings": len(findings) - errors,
            "findings": [{"rule": f.rule, "severity": f.severity, "where": f.where,
                          "message": f.message, "line": f.format(str(path))}
                         for f in findings]}


def _verdict(report: dict) -> str:
    """One stdout line per validated file."""
    counts = f"{report['errors']} errors, {report['warnings']} warnings"
    if report["unreadable"]:
        return f"{report['path']}: unreadable"
    if report["valid"]:
        return f"{report['path']}: valid" + (f" ({report['warnings']} warnings)"
                                              if report["warnings"] else "")
    return f"{report['path']}: invalid ({counts})"


def _validation_settings_toml(settings) -> str:
    """The validation settings in effect, in the form ``--config`` takes."""
    from dataclasses import fields

    values = {item.name: getattr(settings, item.name) for item in fields(settings)}
    return to_toml(values, comment="dqref validate: the settings in effect")


@app.command()
@user_errors("dqref")
def histogram(
    file: Path = typer.Argument(..., help="A DQ reference."),
    as_json: bool = typer.Option(False, "--json", help="Print {total, good, flags} as JSON."),
    plot: Path = typer.Option(None, "--plot", help="Also draw a bar chart (log scale) to PNG."),
) -> None:
    """Count the pixels carrying each flag (each bit counted separately)."""
    from dqref.model import DQModel

    counts = DQModel.read(file).histogram()
    if as_json:
        print_json(counts.to_dict())
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
    path: Path = typer.Option(None, "--crds-path", "--path",
                              help="Cache root (with --against-cache; default: $CRDS_PATH, "
                                   "else ~/crds_cache)."),
    list_: int = typer.Option(0, "--list", help="Print the first N changed pixels."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    png: Path = typer.Option(None, "--png", help="Write a picture of where changes are."),
) -> None:
    """What changed between two masks: per flag gained/lost/unchanged, newly bad/good."""
    from dqref.compare import diff_references
    from dqref.model import DQModel

    if old is not None and against_cache:
        raise fail("dqref", "diff: give OLD or --against-cache, not both")
    new_model = DQModel.read(new)
    if old is None:
        from dqref.cache.local_cache import LocalCache

        old = LocalCache(path).current_reference_for(new_model)
    result = diff_references(new_model, DQModel.read(old))
    if as_json:
        print_json({"new": str(new), "old": str(old), **result.to_dict(list_)})
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
    from dqref.model import DQModel
    from dqref.pictures import plot_mask

    model = DQModel.read(file)
    plot_mask(model.standard_dq(), png, max_pixels=max_pixels,
              title=f"{file.name}: {model.meta.name} {model.meta.detector}")
    typer.echo(str(png))


def main() -> None:
    """Entry point of the ``dqref`` console script."""
    app()


if __name__ == "__main__":
    main()
