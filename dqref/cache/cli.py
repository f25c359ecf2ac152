"""``dqref cache ...``: the local CRDS cache from the command line (a thin skin)."""

from __future__ import annotations

from pathlib import Path

import typer

from dqref.cache import crds_adapter
from dqref.cache.local_cache import LocalCache
from dqref.console import fail, progress, user_errors

app = typer.Typer(name="cache", no_args_is_help=True, add_completion=False,
                  help="The local CRDS cache: init, add, bestref, list, verify, adopt.")

PATH_OPTION = typer.Option(None, "--path",
                           help="Cache root (default: $CRDS_PATH, else ~/crds_cache).")


@app.command()
@user_errors("dqref")
def init(path: Path = PATH_OPTION) -> None:
    """Create a cache with the initial mapping set (does nothing if it exists)."""
    cache = LocalCache(path)
    context = cache.init()
    typer.echo(f"{cache.root}: current context {context}")


@app.command()
@user_errors("dqref")
def add(
    reference: Path = typer.Argument(..., help="A valid DQ reference file."),
    path: Path = PATH_OPTION,
    replace: bool = typer.Option(False, help="Supersede the reference of an occupied slot."),
    roundtrip: bool = typer.Option(True, help="Run the registered reference checks first "
                                   "(the DQ step's round trip on a synthetic ramp)."),
) -> None:
    """Register a reference: copy it in, write new mappings, make them current."""
    cache = LocalCache(path)
    checks = crds_adapter.reference_checks() if roundtrip else ()
    result = cache.add(reference, replace=replace, checks=checks)
    typer.echo(f"{reference} -> {result.reference}\n"
               f"new mappings: {result.rmap}, {result.imap}, {result.context}\n"
               f"current context: {result.previous_context} -> {result.context}")


@app.command()
@user_errors("dqref")
def bestref(
    dataset: Path = typer.Argument(None, help="A FITS dataset whose header selects."),
    param: list[str] = typer.Option(None, "--param",
                                    help="KEY=VALUE instead of a dataset (repeatable)."),
    path: Path = PATH_OPTION,
    context: str = typer.Option(None, help="A pmap name (default: the current context)."),
) -> None:
    """Print the selected reference's path, or N/A with the reason."""
    cache = LocalCache(path)
    if dataset is None and not param:
        raise fail("dqref", "cache bestref: give a DATASET or at least one --param KEY=VALUE")
    if dataset is not None:
        answer = cache.bestref_for_file(dataset, context=context)
    else:
        header = {}
        for item in param:
            key, separator, value = item.partition("=")
            if not separator or not key:
                raise fail("dqref", f"cache bestref: --param {item!r} is not KEY=VALUE")
            header[key.strip()] = value.strip()
        answer = cache.bestref(header, context=context)
    typer.echo(str(answer.path) if answer.found else f"N/A ({answer.reason})")


@app.command("list")
@user_errors("dqref")
def list_(path: Path = PATH_OPTION,
          context: str = typer.Option(None, help="A pmap name (default: current).")) -> None:
    """Show the current context, its rules and the references on disk."""
    cache = LocalCache(path)
    shown = context or cache.current_context
    typer.echo(f"cache: {cache.root}\ncontext: {shown}"
               f"{' (current)' if shown == cache.current_context else ''}\nrules:")
    rules = cache.rules(shown)
    for rule in rules:
        subarray = "any" if rule.subarray == "N/A" else rule.subarray
        typer.echo(f"  {rule.instrument:<6} {rule.detector:<6} subarray={subarray:<8} "
                   f"useafter={rule.useafter}  {rule.reference}")
    if not rules:
        typer.echo("  (none)")
    typer.echo("references:")
    for reference in cache.references():
        typer.echo(f"  {reference}")


@app.command()
@user_errors("dqref")
def verify(path: Path = PATH_OPTION) -> None:
    """Check mappings, checksums and references; exit 1 on any problem."""
    cache = LocalCache(path)
    problems = cache.verify(progress=progress)
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{cache.root}: OK (context {cache.current_context})")


@app.command()
@user_errors("dqref")
def adopt(
    source: Path = typer.Argument(..., help="A hand-made cache root (read only)."),
    path: Path = typer.Option(None, "--path", help="The new cache to write (with --repair)."),
    repair: bool = typer.Option(False, help="Write a new, loadable context into --path "
                                "keeping every rule of SOURCE."),
) -> None:
    """Report every problem of an existing cache; with --repair, write a loadable copy.

    Exits 1 when SOURCE has problems and nothing was repaired.
    """
    from dqref.cache.adopt import adopt as adopt_cache

    report = adopt_cache(source, path, repair=repair)
    for problem in report.problems:
        typer.echo(f"problem: {problem}")
    if report.context is None:
        typer.echo(f"{source}: {len(report.problems)} problems" if report.problems
                   else f"{source}: OK")
        raise typer.Exit(1 if report.problems else 0)
    for name in report.missing_references:
        typer.echo(f"not copied (missing in {source}): {name}")
    typer.echo(f"wrote {', '.join(report.written)}\ncurrent context of "
               f"{LocalCache(path).root}: {report.context}")
