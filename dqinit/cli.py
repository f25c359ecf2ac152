"""The ``dqinit`` command: run the DQ initialization step on ramps (a thin skin)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import typer

from dqinit.batch import RunSettings, expand_inputs, run_many
from dqref.console import fail, user_errors

app = typer.Typer(name="dqinit", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="The DQ initialization step of the IRIS/Liger ramp calibration.")


@app.callback()
def _main() -> None:
    """The DQ initialization step of the IRIS/Liger ramp calibration."""


@app.command()
@user_errors("dqinit")
def run(
    inputs: list[str] = typer.Argument(None, help="Raw ramp files or glob patterns."),
    from_list: Path = typer.Option(None, "--from-list", help="File with one input per line."),
    output: Path = typer.Option(None, "--output", "-o", help="Output file (one input only)."),
    output_dir: Path = typer.Option(None, "--output-dir", help="Folder for the outputs."),
    override_dq: Path = typer.Option(None, "--override-dq",
                                     help="Use this DQ reference instead of CRDS."),
    user_dq: Path = typer.Option(None, "--user-dq", help="Extra 2D mask ORed in."),
    crds_path: Path = typer.Option(None, "--crds-path",
                                   help="Local CRDS cache (default: $CRDS_PATH, ~/crds_cache)."),
    in_place: bool = typer.Option(False, "--in-place", help="Update the inputs themselves."),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", "-j", min=1,
                                help="Parallel processes (1: serial). Default: cores."),
    scheduler: str = typer.Option(None, "--scheduler",
                                  help="Dask scheduler address (tcp://host:8786) or 'local'."),
    report: Path = typer.Option(None, "--report", help="Write per-file records as JSON."),
) -> None:
    """Apply the CRDS-selected DQ reference to each ramp; print reference and status.

    Exit status is 1 if any file failed (the others are still processed), 2 for bad usage.
    """
    paths = expand_inputs(inputs or (), from_list)
    if output and len(paths) > 1:
        raise fail("dqinit", "--output takes one input; use --output-dir for several")
    if output and in_place:
        raise fail("dqinit", "--output and --in-place exclude each other")
    settings = RunSettings(
        crds_path=str(crds_path) if crds_path else None,
        override_dq=str(override_dq) if override_dq else None,
        user_dq=str(user_dq) if user_dq else None,
        output_dir=str(output_dir) if output_dir else None,
        output=str(output) if output else None, in_place=in_place, overwrite=overwrite)
    started = time.perf_counter()
    with _Progress(len(paths)) as progress:
        records = run_many(paths, settings, workers=min(workers, len(paths)),
                           scheduler=scheduler, on_result=progress.advance)
    for record in records:
        if record["status"] == "FAILED":
            typer.echo(f"{record['input']}: FAILED: {record['message']}", err=True)
        else:
            typer.echo(f"{record['input']}: {record['status']} reference="
                       f"{record['reference'] or 'N/A'} context={record['context']} -> "
                       f"{record['output']}")
    counts = Counter(record["status"] for record in records)
    if len(records) > 1:
        typer.echo(_summary_table(records, counts, time.perf_counter() - started))
    if report is not None:
        report.write_text(json.dumps({"summary": dict(counts), "files": records}, indent=2))
    if counts.get("FAILED"):
        raise typer.Exit(1)


def _summary_table(records: list[dict], counts: Counter, wall: float) -> str:
    """Files and step seconds per status, then the totals."""
    lines = [f"{'status':<10} {'files':>6} {'step seconds':>13}"]
    for status in ("COMPLETE", "SKIPPED", "FAILED"):
        if counts.get(status):
            seconds = sum(r["seconds"] for r in records if r["status"] == status)
            lines.append(f"{status:<10} {counts[status]:>6} {seconds:>13.2f}")
    lines.append(f"{'total':<10} {len(records):>6}   wall {wall:.2f} s, "
                 f"{len(records) / wall:.2f} files/s")
    return "\n".join(lines)


class _Progress:
    """A rich progress bar on a terminal (several files); silent otherwise."""

    def __init__(self, total: int):
        self.total = total
        self._bar = None

    def __enter__(self):
        if self.total > 1 and sys.stderr.isatty():
            from rich.progress import Progress

            self._bar = Progress(transient=True)
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
