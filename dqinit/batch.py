"""Many ramps at once: serially, in a local process pool, or on a Dask cluster.

The driver reads each input's primary header, asks the cache once per distinct selection
(instrument, detector, subarray, date, time) under one pinned context, and sends each file
to a worker with its reference already chosen. Workers only read the cache (the reference
files); each worker loads a given reference at most once. A failing file becomes a FAILED
record and never stops the others; outputs are written under temporary names and renamed
by the step, so a failure leaves no partial output.
"""

from __future__ import annotations

import concurrent.futures
import glob
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from dqinit import ramp
from dqinit.step import FAILED, DQInitResult, DQInitStep, ReferenceChoice
from dqref.cache.local_cache import LocalCache
from dqref.console import USER_ERRORS
from dqref.errors import DQRefError

DASK_HINT = "Dask is not installed: pip install 'ligeriri-dq[dask]'"


class BatchError(DQRefError):
    """The batch itself cannot run (no inputs, Dask missing, scheduler unreachable)."""


@dataclass(frozen=True)
class RunSettings:
    """What every task needs: the step's options and the context pinned by the driver."""

    crds_path: str | None = None
    override_dq: str | None = None
    user_dq: str | None = None
    output_dir: str | None = None
    output: str | None = None
    in_place: bool = False
    overwrite: bool = False
    context: str | None = None


class PinnedStep(DQInitStep):
    """A DQInitStep whose reference was selected by the driver (validated like CRDS's)."""

    selection: ReferenceChoice | None = None

    def select_reference(self, header) -> ReferenceChoice:
        return self.selection if self.selection is not None \
            else super().select_reference(header)


_STEPS: dict[RunSettings, PinnedStep] = {}  # one step per worker process and settings


def expand_inputs(arguments: Iterable[str | os.PathLike] = (),
                  from_list: str | os.PathLike | None = None) -> list[Path]:
    """Return the input files: paths, glob patterns and the lines of a list file.

    List files hold one path per line (blank lines and ``#`` comments skipped; relative
    paths are relative to the list file). Duplicates are dropped, order kept.

    Raises
    ------
    BatchError
        No input at all, or the list file cannot be read.
    """
    found: list[Path] = []
    for argument in arguments:
        text = str(argument)
        if not Path(text).exists() and any(c in text for c in "*?["):
            found += [Path(p) for p in sorted(glob.glob(text))]
        else:
            found.append(Path(text))
    if from_list is not None:
        list_path = Path(from_list)
        try:
            lines = list_path.read_text().splitlines()
        except OSError as error:
            raise BatchError(f"{list_path}: cannot read the input list ({error.strerror})") \
                from None
        for line in lines:
            entry = line.split("#", 1)[0].strip()
            if entry:
                path = Path(entry)
                found.append(path if path.is_absolute() else list_path.parent / path)
    unique = list(dict.fromkeys(found))
    if not unique:
        raise BatchError("no input files (give paths, a glob, or --from-list FILE)")
    return unique


def select_references(paths: list[Path],
                      settings: RunSettings) -> dict[Path, ReferenceChoice | None]:
    """Choose the reference of every input, once per distinct selection header.

    Inputs whose header cannot be read get None (their task reports the error).
    """
    if settings.override_dq:
        return dict.fromkeys(paths)
    cache = LocalCache(settings.crds_path)
    chosen: dict[tuple, ReferenceChoice] = {}
    selections: dict[Path, ReferenceChoice | None] = {}
    for path in paths:
        try:
            header = fits.getheader(path)
        except (OSError, ValueError):
            selections[path] = None
            continue
        key = tuple(sorted(ramp.selection_header(header).items()))
        if key not in chosen:
            answer = cache.bestref(dict(key), context=settings.context)
            chosen[key] = ReferenceChoice(answer.path, f"crds://{answer.reference}",
                                          answer.context) if answer.found else \
                ReferenceChoice(None, "N/A", answer.context, answer.reason)
        selections[path] = chosen[key]
    return selections


def run_one(path: str | os.PathLike, settings: RunSettings,
            selection: ReferenceChoice | None) -> dict:
    """Process one file; return its record. Never raises for a bad file."""
    started = time.perf_counter()
    step = _STEPS.get(settings)
    if step is None:
        step = _STEPS[settings] = PinnedStep(
            crds_path=settings.crds_path, override_dq=settings.override_dq,
            user_dq=settings.user_dq, context=settings.context)
    step.selection = selection
    try:
        result = step.run(path, output=settings.output, output_dir=settings.output_dir,
                          in_place=settings.in_place, overwrite=settings.overwrite)
    except USER_ERRORS as error:
        result = DQInitResult(str(path), FAILED, message=" ".join(str(error).split()))
    except Exception as error:  # noqa: BLE001 - a bug on one file must not stop the others
        result = DQInitResult(str(path), FAILED, message=f"{type(error).__name__}: {error}")
    record = result.to_record()
    record["seconds"] = round(time.perf_counter() - started, 3)
    record["input"] = str(path)
    return record


def run_many(paths: list[Path], settings: RunSettings, workers: int = 1,
             scheduler: str | None = None,
             on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Process ``paths``; return their records in input order.

    Parameters
    ----------
    workers : int
        1 runs serially in this process; more uses a local process pool (or, with
        ``scheduler="local"``, that many Dask workers).
    scheduler : str, optional
        ``"local"`` for a ``distributed.LocalCluster``, or a scheduler address such as
        ``tcp://host:8786``.
    on_result : callable, optional
        Called with each record as it completes (progress bars).
    """
    if not settings.override_dq:
        settings = RunSettings(**{**vars(settings),
                                  "context": settings.context
                                  or LocalCache(settings.crds_path).current_context})
    selections = select_references(paths, settings)
    tasks = [(str(p), settings, selections[p]) for p in paths]
    notify = on_result or (lambda record: None)
    if scheduler:
        records = _run_dask(tasks, scheduler, workers, notify)
    elif workers <= 1:
        records = {}
        for task in tasks:
            records[task[0]] = run_one(*task)
            notify(records[task[0]])
    else:
        records = _run_pool(tasks, workers, notify)
    return [records[str(p)] for p in paths]


def _run_pool(tasks, workers: int, notify) -> dict[str, dict]:
    """Run tasks in a process pool; a worker that dies fails only the files it may hold."""
    records: dict[str, dict] = {}
    pending = list(tasks)
    strikes: dict[str, int] = {}
    context = multiprocessing.get_context("spawn")  # no crds/astropy state copied by fork
    while pending:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {pool.submit(run_one, *task): task for task in pending}
            broken = []
            for future in concurrent.futures.as_completed(futures):
                task = futures[future]
                try:
                    records[task[0]] = future.result()
                    notify(records[task[0]])
                except concurrent.futures.process.BrokenProcessPool:
                    broken.append(task)
        pending = []
        for task in broken:  # retry once; a file in flight at two crashes is the culprit
            strikes[task[0]] = strikes.get(task[0], 0) + 1
            if strikes[task[0]] >= 2:
                records[task[0]] = DQInitResult(task[0], FAILED,
                                                message="worker died").to_record()
                notify(records[task[0]])
            else:
                pending.append(task)
    return records


def _run_dask(tasks, scheduler: str, workers: int, notify) -> dict[str, dict]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BatchError(DASK_HINT) from None
    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="20s")
    except OSError as error:
        if cluster is not None:
            cluster.close()
        raise BatchError(f"cannot reach the Dask scheduler {scheduler}: {error}") from None
    records: dict[str, dict] = {}
    try:
        futures = {client.submit(run_one, *task, pure=False, retries=1): task
                   for task in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                records[task[0]] = future.result()
            except Exception as error:  # noqa: BLE001 - a killed worker, reported per file
                records[task[0]] = DQInitResult(task[0], FAILED,
                                                message=f"worker failed: {error}").to_record()
            notify(records[task[0]])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return records
