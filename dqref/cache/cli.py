"""``dqref cache ...``: the local CRDS cache from the command line (a thin skin).

Exit status: 0 OK; 1 the command ran and found problems (verify), no reference (bestref)
or a reference whose file is missing (bestref); 2 a user error, one line on stderr. Every
command takes the cache as ``--crds-path`` (``--path`` is its alias). ``list``, ``bestref``,
``verify`` and ``clean`` print the JSON documents of docs/cache.md with ``--json``.

Only typer is imported here at start-up; crds, numpy and astropy are imported by the
command that needs them, so ``dqref --help`` and ``dqref cache --help`` stay fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from dqref.console import fail, progress, user_errors

app = typer.Typer(name="cache", no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None,  # plain help: importing rich costs 0.25 s (issue 15)
                  help="The local CRDS cache: init, add, bestref, list, verify, clean, adopt.")

#: Exit status when the command ran and found problems, or no reference.
EXIT_PROBLEMS = 1
PATH_OPTION = typer.Option(None, "--crds-path", "--path",
                           help="Cache root (default: $CRDS_PATH, else ~/crds_cache).")
JSON_OPTION = typer.Option(False, "--json",
                           help="Print a JSON document (schema: the docs' cache page).")


@app.command()
@user_errors("dqref")
def init(path: Path = PATH_OPTION) -> None:
    """Create a cache with the initial mapping set (does nothing if it exists).

    A folder that holds mappings but no usable server_config is recovered (the newest
    context that loads becomes current, and it says so), never reset.
    """
    from dqref.cache.local_cache import LocalCache

    cache = LocalCache(path)
    result = cache.initialise()
    if result.message:
        typer.echo(result.message)
    typer.echo(f"{cache.root}: current context {result.context}")


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
    from dqref.cache import crds_adapter
    from dqref.cache.local_cache import LocalCache

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
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the selected reference's path, or N/A with the reason (exit 1).

    An unknown instrument or detector is an error naming the known ones; a reference whose
    file is missing is an error (exit 1).
    """
    from dqref.cache import json_output
    from dqref.cache.local_cache import LocalCache

    cache = LocalCache(path)
    if dataset is None and not param:
        raise fail("dqref", "cache bestref: give a DATASET or at least one --param KEY=VALUE")
    if dataset is not None:
        answer = cache.bestref_for_file(dataset, context=context, strict=True)
    else:
        header = {}
        for item in param:
            key, separator, value = item.partition("=")
            if not separator or not key:
                raise fail("dqref", f"cache bestref: --param {item!r} is not KEY=VALUE")
            header[key.strip()] = value.strip()
        answer = cache.bestref(header, context=context, strict=True)
    if as_json:
        typer.echo(json_output.dumps(json_output.bestref(answer)))
    if answer.found and not answer.exists:
        raise fail("dqref", f"context {answer.context} selects {answer.reference} but "
                            f"{answer.path} does not exist", EXIT_PROBLEMS)
    if not as_json:
        typer.echo(str(answer.path) if answer.found else f"N/A ({answer.reason})")
    if not answer.found:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command("list")
@user_errors("dqref")
def list_(path: Path = PATH_OPTION,
          context: str = typer.Option(None, help="A pmap name (default: current)."),
          as_json: bool = JSON_OPTION) -> None:
    """Show the current context, its rules and the references on disk."""
    from dqref.cache import json_output
    from dqref.cache.local_cache import LocalCache

    cache = LocalCache(path)
    current = cache.current_context
    shown = context or current
    rules = cache.rules(shown)
    references = cache.references()
    if as_json:
        typer.echo(json_output.dumps(json_output.listing(cache.root, shown, shown == current,
                                                         rules, references)))
        return
    typer.echo(f"cache: {cache.root}\ncontext: {shown}"
               f"{' (current)' if shown == current else ''}\nrules:")
    for rule in rules:
        subarray = "any" if rule.subarray == "N/A" else rule.subarray
        typer.echo(f"  {rule.instrument:<6} {rule.detector:<6} subarray={subarray:<8} "
                   f"useafter={rule.useafter}  {rule.reference}")
    if not rules:
        typer.echo("  (none)")
    typer.echo("references:")
    for reference in references:
        typer.echo(f"  {reference}")


@app.command()
@user_errors("dqref")
def verify(path: Path = PATH_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Check mappings (crds certify included), checksums and references; exit 1 on any problem.

    Temporary files left by interrupted writes are listed as warnings ('dqref cache clean').
    """
    from dqref.cache import json_output
    from dqref.cache.local_cache import LocalCache

    cache = LocalCache(path)
    report = cache.verify_report(progress=progress)
    if as_json:
        typer.echo(json_output.dumps(json_output.verify(cache.root, report)))
    else:
        for problem in report.problems:
            typer.echo(problem)
        for warning in report.warnings:
            typer.echo(f"warning: {warning}")
        if report.ok:
            typer.echo(f"{cache.root}: OK (context {report.context})")
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


@app.command()
@user_errors("dqref")
def clean(path: Path = PATH_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Remove temporary files left by interrupted writes; print what was removed.

    Only dqref's own temporary files, only inside the cache, and only while no other
    dqref process holds the cache lock (it refuses then); published files are never touched.
    """
    from dqref.cache import json_output
    from dqref.cache.local_cache import LocalCache

    cache = LocalCache(path)
    removed = cache.clean()
    if as_json:
        typer.echo(json_output.dumps(json_output.clean(cache.root, removed)))
        return
    for item in removed:
        typer.echo(f"removed {item.path} ({item.size} bytes)")
    typer.echo(f"{cache.root}: {len(removed)} temporary "
               f"file{'' if len(removed) == 1 else 's'} removed")


@app.command()
@user_errors("dqref")
def adopt(
    source: Path = typer.Argument(..., help="A hand-made cache root (read only)."),
    path: Path = typer.Option(None, "--crds-path", "--path",
                              help="The new cache to write (with --repair)."),
    repair: bool = typer.Option(False, help="Write a new, loadable context into --crds-path "
                                "keeping every rule of SOURCE."),
) -> None:
    """Report every problem of an existing cache; with --repair, write a loadable copy.

    Exits 1 when SOURCE has problems and nothing was repaired.
    """
    from dqref.cache.adopt import adopt as adopt_cache
    from dqref.cache.local_cache import LocalCache

    report = adopt_cache(source, path, repair=repair)
    for problem in report.problems:
        typer.echo(f"problem: {problem}")
    if report.context is None:
        typer.echo(f"{source}: {len(report.problems)} problems" if report.problems
                   else f"{source}: OK")
        raise typer.Exit(EXIT_PROBLEMS if report.problems else 0)
    for name in report.missing_references:
        typer.echo(f"not copied (missing in {source}): {name}")
    typer.echo(f"wrote {', '.join(report.written)}\ncurrent context of "
               f"{LocalCache(path).root}: {report.context}")
