"""The ``dqinit`` command: run the DQ initialization step on ramps (a thin skin).

``dqinit run`` hands its inputs to `dqinit.parallel.run_many` (serial, a local process
pool or a Dask cluster), then prints one line per file, a summary table and, if asked,
a JSON report.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import typer

from dqref.cli_conventions import EXIT_PROBLEMS, JSON_SCHEMA_VERSION, new_app, print_json
from dqref.console import fail, user_errors

#: The step's statuses (dqinit.step's; repeated so --help imports no numpy).
COMPLETE, SKIPPED, FAILED = "COMPLETE", "SKIPPED", "FAILED"

app = new_app("dqinit", "The DQ initialization step of the IRIS/Liger ramp calibration.")


@app.command()
@user_errors("dqinit")
def run(
    inputs: list[str] = typer.Argument(None, show_default=False,
                                       help="Raw ramp files or quoted glob patterns."),
    from_list: Path = typer.Option(None, "--from-list",
                                   help="File with one input path per line."),
    output: Path = typer.Option(None, "--output", "-o", help="Output file (one input only)."),
    output_dir: Path = typer.Option(None, "--output-dir", help="Folder for the outputs."),
    override_dq: Path = typer.Option(None, "--override-dq",
                                     help="Use this DQ reference instead of CRDS ('N/A' "
                                          "skips the step)."),
    user_dq: Path = typer.Option(None, "--user-dq", help="Extra 2D mask ORed in."),
    crds_path: Path = typer.Option(None, "--crds-path", "--path",
                                   help="Local CRDS cache (default: $CRDS_PATH, ~/crds_cache)."),
    in_place: bool = typer.Option(False, "--in-place", help="Update the inputs themselves."),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
    workers: int = typer.Option(None, "--workers", "-j", min=1, show_default=False,
                                help="Processes (or Dask workers with '--scheduler local'); "
                                     "1 runs serially.  [default: serial for a few small "
                                     "inputs, else one per core]"),
    scheduler: str = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                  help="Run on a Dask cluster: a scheduler address "
                                       "(tcp://host:8786) or 'local'."),
    report: Path = typer.Option(None, "--report", help="Write the per-file records as JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print the report (the same JSON as "
                                 "--report) instead of lines."),
) -> None:
    """Apply the CRDS-selected DQ reference to each ramp; print reference and status.

    Exit status is 1 if any file failed (the others are still processed), 2 for bad usage
    or an input that does not exist (then nothing is processed).
    """
    from dqinit.parallel import RunSettings, expand_inputs, run_many
    from dqref.atomic import publish_text

    paths = expand_inputs(inputs or (), from_list)
    if output and len(paths) > 1:
        raise fail("dqinit", "--output takes one input; use --output-dir for several")
    if output and in_place:
        raise fail("dqinit", "--output and --in-place exclude each other")
    _refuse_missing_inputs(paths)
    settings = RunSettings(crds_path=crds_path, override_dq=override_dq, user_dq=user_dq,
                           output_dir=output_dir, output=output, in_place=in_place,
                           overwrite=overwrite).pinned()
    started = time.perf_counter()
    with _Progress(len(paths)) as progress:
        records = run_many(paths, settings, workers=workers,
                           scheduler=scheduler, on_result=progress.advance)
    wall = time.perf_counter() - started
    counts = Counter(record["status"] for record in records)
    document = {"context": settings.context, "summary": _summary(counts, len(records), wall),
                "files": records}
    if report is not None:
        publish_text(report, json.dumps({"schema_version": JSON_SCHEMA_VERSION, **document},
                                        indent=2) + "\n", overwrite=True)
    if as_json:
        print_json(document)
        raise typer.Exit(EXIT_PROBLEMS if counts[FAILED] else 0)
    for record in records:
        if record["status"] == FAILED:
            typer.echo(f"{record['input']}: FAILED: {record['error']}", err=True)
        elif record["status"] == SKIPPED:  # the reason, once (the step logs JWST's words)
            typer.echo(f"{record['input']}: SKIPPED ({record['message']}) context="
                       f"{record['context']} -> {record['output']}")
        else:
            typer.echo(f"{record['input']}: {record['status']} reference="
                       f"{record['reference'] or 'N/A'} context={record['context']} -> "
                       f"{record['output']}")
    if len(records) > 1:
        _print_summary(records, wall)
    if counts[FAILED]:
        raise typer.Exit(EXIT_PROBLEMS)


def _refuse_missing_inputs(paths: list[Path]) -> None:
    """A named input that does not exist is a usage error: say which, process nothing.

    Checked before the cache is opened, so the message names the input, not the cache.
    """
    missing = [path for path in paths if not path.exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise fail("dqinit", f"{missing[0]}: no such file{more}; nothing was processed")


def _summary(counts: Counter, total: int, wall: float) -> dict:
    """Files per status, the total and the wall-clock time (the report's ``summary``)."""
    return {COMPLETE: counts[COMPLETE], SKIPPED: counts[SKIPPED], FAILED: counts[FAILED],
            "total": total, "seconds": round(wall, 3)}


def _print_summary(records: list[dict], wall: float) -> None:
    """Print the files and step seconds per status and reference, then the totals."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["status"], record["reference"] or "-"), []).append(record)
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, show_footer=True)
    table.add_column("status", "total", no_wrap=True)
    table.add_column("files", str(len(records)), justify="right", no_wrap=True)
    table.add_column("reference", no_wrap=True)
    table.add_column("step seconds", f"{sum(record['seconds'] for record in records):.2f}",
                     justify="right", no_wrap=True)
    order = {COMPLETE: 0, SKIPPED: 1, FAILED: 2}
    for (status, reference), group in sorted(groups.items(),
                                             key=lambda item: (order[item[0][0]], item[0][1])):
        table.add_row(status, str(len(group)), reference,
                      f"{sum(record['seconds'] for record in group):.2f}")
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    console.print(table)
    counts = Counter(record["status"] for record in records)
    per_status = ", ".join(f"{counts[status]} {status}" for status in order if counts[status])
    rate = len(records) / max(wall, 1e-6)
    console.print(f"{len(records)} files ({per_status}) in {wall:.2f} s, {rate:.2f} files/s")


class _Progress:
    """A rich progress bar on a terminal, advanced as records arrive; silent otherwise."""

    def __init__(self, total: int):
        self.total = total
        self._bar = None
        self._task = None

    def __enter__(self) -> _Progress:
        if self.total > 1 and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("dqinit", total=self.total)
        return self

    def advance(self, record: dict) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


def main() -> None:
    """Entry point of the ``dqinit`` console script."""
    app()


if __name__ == "__main__":
    main()
